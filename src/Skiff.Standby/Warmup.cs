using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

/// <summary>
/// First uses, while nothing waits: the framework code every Skiff code server runs on its way to hello and its
/// first answers (JSON documents and nodes, the serializer, channels, concurrent dictionaries, linked
/// cancellation). Their one-time costs (type loading, ReadyToRun fixups, the serializer's caches) are then paid
/// before the release arrives. Only framework types the SDK itself uses are touched, so the release sees no
/// assembly loaded that it would not load anyway, and no user or package code runs.
/// </summary>
internal static class Warmup
{
    public static void Run()
    {
        var node = JsonNode.Parse("""{"type":"hello","protocol":1,"jobs":[{"name":"a","ops":[{"name":"b","depends_on":[]}]}],"ok":true,"n":1.5}""")!.AsObject();
        node["id"] = 1L;
        node["params"] = new JsonObject { ["rows"] = 3, ["name"] = "x" };
        var text = node.ToJsonString();
        using (var document = JsonDocument.Parse(text))
        {
            _ = document.RootElement.GetProperty("jobs").EnumerateArray().Count();
        }

        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        _ = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?> { ["a"] = 1, ["b"] = "c", ["d"] = null }, options);
        _ = JsonSerializer.SerializeToNode(new Dictionary<string, object?> { ["a"] = 1.5 }, options);
        _ = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(text, options);

        var channel = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        channel.Writer.TryWrite(text);
        channel.Reader.TryRead(out _);

        var dictionary = new ConcurrentDictionary<string, object>(StringComparer.Ordinal);
        dictionary["a"] = text;
        dictionary.TryRemove("a", out _);
        var pending = new ConcurrentDictionary<long, TaskCompletionSource<JsonObject>>();
        pending[1] = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        pending.TryRemove(1, out _);

        using var outer = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(outer.Token);
        linked.CancelAfter(TimeSpan.FromDays(1));
    }
}
