using MyJobs;
using Skiff.Sdk;

// Run by hand: `dotnet run -- list`, `dotnet run -- run report --param rows=5`.
// Started by a Skiff agent after `skiff deploy`, the same call serves the jobs to the platform.
return await SkiffApp.RunAsync(args, Jobs.Define);
