namespace Skiff.Cli.Tests.Platform;

/// <summary><c>skiff dev</c> as a user runs it: a real process watching a copy of samples/Hello, edited on disk.</summary>
public sealed class DevTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private static readonly TimeSpan FirstDeploy = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan Save = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task Every_save_deploys_and_reruns_the_job_and_a_compile_error_does_not_end_the_loop()
    {
        var project = fixture.Variant("dev", text => text);
        var program = Path.Combine(project, "Program.cs");
        var original = await File.ReadAllTextAsync(program);
        await using var dev = fixture.Platform.StartSkiff("dev", project, "--location", "dev", "--run", "hello", "--param", "name=dev");

        await dev.WaitForLineAsync(line => line.Contains("Hello, dev!", StringComparison.Ordinal), FirstDeploy);
        await dev.WaitForLineAsync(line => line.Contains("run succeeded", StringComparison.Ordinal), Save);

        var mark = dev.LineCount;
        await File.WriteAllTextAsync(program, original.Replace("\"Hello, {Name}!\"", "\"Howdy, {Name}!\"", StringComparison.Ordinal));
        var live = await dev.WaitForLineAsync(line => line.Contains("live on dev", StringComparison.Ordinal), Save, mark);
        await dev.WaitForLineAsync(line => line.Contains("Howdy, dev!", StringComparison.Ordinal), Save, mark);

        mark = dev.LineCount;
        await File.WriteAllTextAsync(program, original + "\nthis is not C#\n");
        await dev.WaitForLineAsync(line => line.Contains("build failed", StringComparison.Ordinal), Save, mark);
        await dev.WaitForLineAsync(line => line.Contains("error CS", StringComparison.Ordinal) && line.Contains("Program.cs", StringComparison.Ordinal), Save, mark);
        await dev.WaitForLineAsync(line => line.Contains("waiting for the next save", StringComparison.Ordinal), Save, mark);

        mark = dev.LineCount;
        await File.WriteAllTextAsync(program, original.Replace("\"Hello, {Name}!\"", "\"Ahoy, {Name}!\"", StringComparison.Ordinal));
        var fixedLive = await dev.WaitForLineAsync(line => line.Contains("live on dev", StringComparison.Ordinal), Save, mark);
        await dev.WaitForLineAsync(line => line.Contains("Ahoy, dev!", StringComparison.Ordinal), Save, mark);
        await dev.WaitForLineAsync(line => line.Contains("run succeeded", StringComparison.Ordinal), Save, mark);
        var exitCode = await dev.InterruptAsync(TimeSpan.FromSeconds(30));

        live.ShouldContain("(fast path");
        fixedLive.ShouldContain("(fast path");
        exitCode.ShouldBeOneOf(0, 130);
        dev.Output.ShouldContain("stopped watching");
        var jobs = await fixture.Platform.SkiffAsync("run", "dev", "hello", "--param", "name=after");
        jobs.Stdout.ShouldContain("Ahoy, after!", customMessage: "the last save that built is the live version");
    }
}
