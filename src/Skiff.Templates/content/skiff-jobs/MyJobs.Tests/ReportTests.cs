using Skiff.Sdk;

namespace MyJobs.Tests;

public class ReportTests
{
    [Fact]
    public async Task Report_sums_the_rows_it_reads()
    {
        var result = await SkiffApp.RunJobAsync(Jobs.Define, "report", new Dictionary<string, string> { ["rows"] = "4" });

        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains("Report: 4 rows, total 10", result.Logs);
    }

    [Fact]
    public async Task Report_refuses_rows_that_are_not_a_number()
    {
        await Assert.ThrowsAsync<ParameterException>(() =>
            SkiffApp.RunJobAsync(Jobs.Define, "report", new Dictionary<string, string> { ["rows"] = "many" }));
    }
}
