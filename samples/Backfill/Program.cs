using Microsoft.Extensions.Logging;
using Skiff.Sdk;

return await SkiffApp.RunAsync(args, jobs =>
{
    // Replays a range of days, one batch at a time. Every await gets the op's cancellation token, so
    // `skiff cancel` (or Ctrl-C when run by hand) stops it within one batch, and what is done stays done.
    jobs.Job("backfill", "Reprocess a range of days, one batch at a time")
        .Tags("sample", "long-running")
        .Parameter("days", 30, "how many days to replay")
        .Parameter("batch_ms", 200, "how long one day takes, in milliseconds")
        .Run(async context =>
        {
            var days = context.Parameters.Get<int>("days");
            var batch = TimeSpan.FromMilliseconds(context.Parameters.Get<int>("batch_ms"));
            var start = new DateOnly(2026, 1, 1);
            for (var day = 0; day < days; day++)
            {
                context.ReportProgress((double)day / days, $"replaying {start.AddDays(day):yyyy-MM-dd}");
                try
                {
                    await Task.Delay(batch, context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    context.Logger.LogWarning("canceled after {Done} of {Days} days; the next run can resume from {Day}", day, days, start.AddDays(day));
                    context.RecordMetadata("days_done", day);
                    throw;
                }
            }

            context.ReportProgress(1, "done");
            context.RecordMetadata("days_done", days);
        });
});
