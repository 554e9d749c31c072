using System.Globalization;
using System.Text.Json;

namespace Skiff.Sdk.Definitions;

/// <summary>A declared job parameter: its name, type, default (null when required) and description.</summary>
internal sealed record ParameterDefinition(string Name, ParameterType Type, object? Default, bool Required, string? Description)
{
    /// <summary>Declared as <c>int</c>: integers outside its range are refused before the run, not mid-run by Get&lt;int&gt;.</summary>
    public bool Is32Bit { get; init; }

    public static ParameterType TypeOf<T>() =>
        typeof(T) == typeof(string) ? ParameterType.String
        : typeof(T) == typeof(int) || typeof(T) == typeof(long) ? ParameterType.Integer
        : typeof(T) == typeof(double) ? ParameterType.Number
        : typeof(T) == typeof(bool) ? ParameterType.Boolean
        : throw new ArgumentException($"Parameters are string, int, long, double or bool; {typeof(T).Name} is not supported.");

    public string TypeName => Type.ToString().ToLowerInvariant();

    /// <summary>Converts a value given on a command line (<c>--param k=v</c>).</summary>
    public object Parse(string text) => Type switch
    {
        ParameterType.String => text,
        ParameterType.Integer when long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) => InRange(value, $"'{text}'"),
        ParameterType.Number when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) => value,
        ParameterType.Boolean when bool.TryParse(text, out var value) => value,
        _ => throw Invalid($"'{text}'"),
    };

    /// <summary>Converts a value given as JSON (the protocol).</summary>
    public object Convert(JsonElement value) => (Type, value.ValueKind) switch
    {
        (ParameterType.String, JsonValueKind.String) => value.GetString()!,
        (ParameterType.Integer, JsonValueKind.Number) when value.TryGetInt64(out var number) => InRange(number, value.GetRawText()),
        (ParameterType.Number, JsonValueKind.Number) => value.GetDouble(),
        (ParameterType.Boolean, JsonValueKind.True or JsonValueKind.False) => value.GetBoolean(),
        // Values typed by people often arrive as strings; accept them when they parse.
        (not ParameterType.String, JsonValueKind.String) => Parse(value.GetString()!),
        _ => throw Invalid(value.GetRawText()),
    };

    private long InRange(long value, string shown) =>
        !Is32Bit || value is >= int.MinValue and <= int.MaxValue
            ? value
            : throw new ParameterException($"parameter '{Name}' must be an integer from {int.MinValue} to {int.MaxValue}; got {shown}.");

    private ParameterException Invalid(string shown) =>
        new($"parameter '{Name}' must be {Article} {TypeName}; got {shown}.");

    private string Article => Type == ParameterType.Integer ? "an" : "a";
}
