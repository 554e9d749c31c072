using Microsoft.Extensions.Logging;
using Skiff.Sdk;

return await SkiffApp.RunAsync(args, jobs =>
    jobs.Job("log_lines", "Logs many lines")
        .Parameter("lines", 50_000, "how many lines to log")
        .Run(context =>
        {
            var lines = context.Parameters.Get<int>("lines");
            for (var i = 1; i <= lines; i++)
            {
                context.Logger.LogInformation("line {Line} of {Lines}", i, lines);
            }

            return Task.CompletedTask;
        }));
