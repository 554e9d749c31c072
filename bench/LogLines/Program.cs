using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Skiff.Sdk;

return await SkiffApp.RunAsync(args, jobs =>
    jobs.Job("log_lines", "Logs many lines")
        .Parameter("lines", 50_000, "how many lines to log")
        .Parameter("per_second", 0, "at most this many lines a second, spread evenly (0: as fast as it can)")
        .Run(async context =>
        {
            var lines = context.Parameters.Get<int>("lines");
            var perSecond = context.Parameters.Get<int>("per_second");
            var started = Stopwatch.StartNew();
            for (var i = 1; i <= lines; i++)
            {
                context.Logger.LogInformation("line {Line} of {Lines}", i, lines);
                // Paced in steps of 500 lines (10 ms at 50,000 a second): a steady source, as a busy job's logging is,
                // rather than one burst, so how soon a follower sees each event is not a backlog's drain time.
                if (perSecond > 0 && i % 500 == 0 && TimeSpan.FromSeconds((double)i / perSecond) - started.Elapsed is { Ticks: > 0 } ahead)
                {
                    await Task.Delay(ahead, context.CancellationToken);
                }
            }
        }));
