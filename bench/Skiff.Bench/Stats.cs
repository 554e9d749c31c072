using System.Globalization;

namespace Skiff.Bench;

/// <summary>Medians and spreads of a series of timings.</summary>
internal static class Stats
{
    public static double Percentile(IReadOnlyList<double> values, double fraction)
    {
        var sorted = values.Order().ToArray();
        var rank = fraction * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
    }

    public static void Add(Dictionary<string, List<double>> series, string name, double value)
    {
        if (!series.TryGetValue(name, out var values))
        {
            series[name] = values = [];
        }

        values.Add(value);
    }

    public static string Row(string name, IReadOnlyList<double> milliseconds) =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"| {name,-44} | {Percentile(milliseconds, 0.5),8:0.0} | {Percentile(milliseconds, 0.9),8:0.0} | {milliseconds.Min(),8:0.0} | {milliseconds.Max(),8:0.0} |");

    /// <summary>A title line, then one table row per series.</summary>
    public static void Print(string title, Dictionary<string, List<double>> series)
    {
        Console.WriteLine(title);
        Console.WriteLine();
        Console.WriteLine(Header);
        foreach (var (name, values) in series)
        {
            Console.WriteLine(Row(name, values));
        }
    }

    public const string Header =
        "| stage                                        |  p50 ms  |  p90 ms  |  min ms  |  max ms  |\n" +
        "|----------------------------------------------|---------:|---------:|---------:|---------:|";
}
