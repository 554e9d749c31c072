using System.Text.RegularExpressions;

namespace Skiff.Server.Agents;

/// <summary>
/// Where a location may run: on how many agents (<c>--replicas</c>), and the labels each of them must have
/// (<c>--on gpu=h200</c>). Kept with each deployment, so a rollback or failover places the location as it
/// was deployed. A pool deployed with <c>--replicas MIN..MAX</c> has <see cref="MinReplicas"/>, and
/// <see cref="Replicas"/> is its most: the server places it on as many agents as its work asks, between the two
/// (<see cref="Tasks.PoolScaler"/>).
/// </summary>
internal sealed partial record Placement(int Replicas, IReadOnlyDictionary<string, string> Constraints)
{
    /// <summary>The most replicas of one location; more is almost surely a typo.</summary>
    public const int MaxReplicas = 100;

    /// <summary>The fewest replicas of a pool that scales with its work (0 allowed); null for a fixed <see cref="Replicas"/>.</summary>
    public int? MinReplicas { get; init; }

    /// <summary>As deployed and shown: <c>3</c>, or <c>0..8</c> for a pool that scales.</summary>
    public string Range => MinReplicas is { } min ? $"{min}..{Replicas}" : Replicas.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>On how many agents it is to be placed now: the fixed number, or for a pool that scales <paramref name="scaled"/> kept between its fewest and most.</summary>
    public Placement Sized(int scaled) => MinReplicas is { } min ? this with { Replicas = Math.Clamp(scaled, min, Replicas) } : this;

    /// <summary>One agent, any labels: what a location gets when its deploy says nothing.</summary>
    public static Placement Default { get; } = new(1, new Dictionary<string, string>(StringComparer.Ordinal));

    /// <summary>Constraints as stored and shown: <c>key=value</c> pairs in key order, comma-separated; null for none.</summary>
    public string? Canonical => Constraints.Count == 0 ? null : string.Join(",", Constraints.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));

    /// <summary>For messages: "gpu=h200" or "any agent".</summary>
    public string Describe() => Canonical ?? "any agent";

    public bool Admits(IReadOnlyDictionary<string, string> labels) =>
        Constraints.All(c => labels.TryGetValue(c.Key, out var value) && value == c.Value);

    /// <summary>What an agent's labels lack for this placement, for a refusal: "gpu=a100, not h200", "no zone".</summary>
    public string Mismatch(IReadOnlyDictionary<string, string> labels) => string.Join(
        ", ",
        Constraints.Where(c => !(labels.TryGetValue(c.Key, out var value) && value == c.Value))
            .Select(c => labels.TryGetValue(c.Key, out var value) ? $"{c.Key}={value}, not {c.Value}" : $"no {c.Key}"));

    /// <summary>A deployment's stored placement (both null for one recorded before fleets: the default).</summary>
    public static Placement FromStored(int? replicas, string? constraints, int? minReplicas = null) =>
        new(replicas ?? 1, ParseLabels(constraints?.Split(',') ?? [], "constraint")) { MinReplicas = minReplicas };

    /// <summary>
    /// <c>--replicas</c> as given: <c>N</c> (a fixed number, 1 to <see cref="MaxReplicas"/>) or <c>MIN..MAX</c> (a pool that
    /// scales with its work; 0 ≤ MIN ≤ MAX, 1 ≤ MAX ≤ <see cref="MaxReplicas"/>). Returns (MIN or null, MAX or N).
    /// </summary>
    /// <exception cref="ArgumentException">It is neither; the message says what to write.</exception>
    public static (int? Min, int Max) ParseReplicas(string text)
    {
        var parts = text.Trim().Split("..");
        var numbers = parts.Select(p => int.TryParse(p, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : (int?)null).ToList();
        var usage = $"write a whole number from 1 to {MaxReplicas} (a fixed number), or MIN..MAX for a pool that scales with its work (such as 0..8; 0 <= MIN <= MAX, 1 <= MAX <= {MaxReplicas})";
        if (parts.Length is < 1 or > 2 || numbers.Any(n => n is null))
        {
            throw new ArgumentException($"'{text}' is not a number of replicas: {usage}.");
        }

        if (parts.Length == 1)
        {
            return numbers[0] is >= 1 and <= MaxReplicas ? (null, numbers[0]!.Value) : throw new ArgumentException($"'{text}' is out of range: {usage}.");
        }

        var (min, max) = (numbers[0]!.Value, numbers[1]!.Value);
        if (min > max)
        {
            throw new ArgumentException($"'{text}' has its fewest above its most; write MIN..MAX with MIN <= MAX, such as {max}..{min}.");
        }

        return max is >= 1 and <= MaxReplicas ? (min, max) : throw new ArgumentException($"'{text}' is out of range: {usage}.");
    }

    /// <summary>
    /// Labels or constraints given as <c>key=value</c> (each may itself hold several, comma-separated). Keys and
    /// values are what Kubernetes allows in labels, so node labels can be passed through.
    /// </summary>
    /// <exception cref="ArgumentException">One is malformed or a key is given twice; the message says which.</exception>
    public static Dictionary<string, string> ParseLabels(IEnumerable<string> given, string what)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in given.SelectMany(g => g.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                // "gpu" alone reads as "has a gpu label", which is not what a match on key and value would do.
                throw new ArgumentException($"'{item}' has no value: write {item}=VALUE, for example {item}=h200 ({item}= for an empty value).");
            }

            var (key, value) = (item[..equals], item[(equals + 1)..]);
            if (!Key().IsMatch(key) || !Value().IsMatch(value))
            {
                throw new ArgumentException($"'{item}' is not a {what}: write key=value, where the key is letters, digits, '.', '-', '_' or '/' (up to 63 characters, starting with a letter or digit) and the value the same without '/' (may be empty), for example gpu=h200.");
            }

            if (!labels.TryAdd(key, value) && labels[key] != value)
            {
                throw new ArgumentException($"{what} '{key}' is given twice, as {labels[key]} and {value}; give it once.");
            }
        }

        return labels;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")]
    private static partial Regex Key();

    [GeneratedRegex("^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?$")]
    private static partial Regex Value();
}
