using Microsoft.Extensions.Logging;
using Skiff.Sdk;

namespace MyJobs;

/// <summary>The jobs this project defines: Program.cs hands them to Skiff, the tests run them in-process.</summary>
public static class Jobs
{
    public static void Define(JobCatalog jobs)
    {
        // A job is a DAG of ops: "summarize" starts once "read" has succeeded and gets its output.
        jobs.Job("report", "Reads rows and logs a summary of them")
            .Parameter("rows", 10, "how many rows to read")
            .Op("read", context =>
            {
                var rows = Enumerable.Range(1, context.Parameters.Get<int>("rows")).ToList();
                context.Logger.LogInformation("Read {Count} rows", rows.Count);
                return Task.FromResult(rows);
            })
            .Op("summarize", context =>
            {
                var rows = context.Input<List<int>>("read");
                context.Logger.LogInformation("Report: {Count} rows, total {Total}", rows.Count, rows.Sum());
                context.RecordMetadata("total", rows.Sum());
                return Task.CompletedTask;
            }, dependsOn: ["read"]);
    }
}
