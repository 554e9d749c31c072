using System.Globalization;

namespace Skiff.Sdk;

/// <summary>A run's parameters, validated against the job's declarations before the run starts.</summary>
public sealed class JobParameters
{
    private readonly IReadOnlyDictionary<string, object?> _values;

    internal JobParameters(IReadOnlyDictionary<string, object?> values) => _values = values;

    /// <summary>Every parameter with its value (defaults filled in), for logging or passing on.</summary>
    public IReadOnlyDictionary<string, object?> All => _values;

    /// <summary>The value of a declared parameter, converted to <typeparamref name="T"/>.</summary>
    /// <exception cref="KeyNotFoundException">The job declares no parameter with this name.</exception>
    public T Get<T>(string name)
    {
        if (!_values.TryGetValue(name, out var value))
        {
            throw new KeyNotFoundException($"This job declares no parameter '{name}'; it has: {string.Join(", ", _values.Keys)}.");
        }

        return value is null ? default! : (T)System.Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture);
    }
}
