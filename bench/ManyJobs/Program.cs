using Skiff.Sdk;

return await SkiffApp.RunAsync(args, jobs =>
{
    for (var i = 0; i < 1000; i++)
    {
        jobs.Job($"job_{i:D4}", $"Generated job number {i}")
            .Tags("generated", i % 2 == 0 ? "even" : "odd")
            .Parameter("rows", 100, "rows to move")
            .Parameter("table", $"table_{i}", "where they go")
            .Op("extract", _ => Task.FromResult(new[] { 1, 2, 3 }))
            .Op("transform", context => Task.FromResult(context.Input<int[]>("extract").Length), dependsOn: ["extract"])
            .Op("load", _ => Task.CompletedTask, dependsOn: ["transform"], retry: new RetryPolicy(3, TimeSpan.FromSeconds(1)));
    }
});
