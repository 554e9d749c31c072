using Skiff.Bench;

// dotnet run -c Release --project bench/Skiff.Bench -- build|list|activate|deploy|dev|scaleout|failover|coldlink|integrity|ui|events|coldpool|exp|runhost [--iterations N]
var iterations = args.SkipWhile(a => a != "--iterations").Skip(1).Select(int.Parse).FirstOrDefault(20);
var scenario = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal) && !int.TryParse(a, out _)) ?? "build";
return scenario switch
{
    "build" => await BuildBenchmark.RunAsync(iterations),
    "list" => await ListBenchmark.RunAsync(iterations),
    "activate" or "activation" => await ActivationBenchmark.RunAsync(iterations),
    "deploy" => await DeployBenchmark.RunAsync(iterations),
    "dev" => await DevBenchmark.RunAsync(iterations),
    "scaleout" => await ScaleOutBenchmark.RunAsync(iterations),
    "failover" => await FailoverBenchmark.RunAsync(iterations),
    "coldlink" => await ColdLinkBenchmark.RunAsync(iterations),
    "integrity" => await IntegrityBenchmark.RunAsync(iterations),
    "ui" => await UiBenchmark.RunAsync(iterations),
    "events" => await EventsBenchmark.RunAsync(iterations),
    "coldpool" => await PoolColdStartBenchmark.RunAsync(iterations),
    "exp" => await ExperimentalBenchmark.RunAsync(iterations),
    "runhost" => await RunHostBenchmark.RunAsync(iterations),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Skiff.Bench build|list|activate|deploy|dev|scaleout|failover|coldlink|integrity|ui|events|coldpool|exp|runhost [--iterations N]");
    return 2;
}
