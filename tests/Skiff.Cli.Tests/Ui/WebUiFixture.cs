using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Skiff.Cli.Tests.Platform;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Ui;

/// <summary>
/// An embedded platform with one location deployed twice by the CLI (the second deploy bumps Newtonsoft.Json
/// 13.0.1 → 13.0.3), and Debian's chromium (installed by scripts/chromium.sh) driven by Playwright.
/// </summary>
public sealed class WebUiFixture : IAsyncLifetime
{
    public const string Location = "webui";

    // A job that writes slowly, so a test sees lines arrive while it runs and can cancel it.
    private const string SlowJob = """
            jobs.Job("slow", "Writes numbered lines, one every delay_ms")
                .Tags("ui", "slow")
                .Parameter("lines", 5, "how many lines to write")
                .Parameter("delay_ms", 300, "milliseconds between lines")
                .Op("prepare", context => Task.CompletedTask)
                .Op("write", async context =>
                {
                    var lines = context.Parameters.Get<int>("lines");
                    for (var i = 1; i <= lines; i++)
                    {
                        context.Logger.LogInformation("line {Number} of {Total}", i, lines);
                        Console.WriteLine($"stdout {i}");
                        context.ReportProgress((double)i / lines, $"line {i}");
                        await Task.Delay(context.Parameters.Get<int>("delay_ms"), context.CancellationToken);
                    }
                }, dependsOn: ["prepare"]);

            // A job that logs as fast as it can: the run page must keep up without drawing the log again.
            jobs.Job("chatty", "Logs numbered lines as fast as it can")
                .Parameter("lines", 10_000, "how many lines to log")
                .Schedule("0 3 1 1 *", timeZone: "Europe/Berlin", parameters: new { lines = 3 })
                .Run(context =>
                {
                    var lines = context.Parameters.Get<int>("lines");
                    for (var i = 1; i <= lines; i++)
                    {
                        context.Logger.LogInformation("line {Number} of {Total}", i, lines);
                    }

                    return Task.CompletedTask;
                });

            // A small ETL as a DAG
        """;

    private readonly Workspace _workspace = new();
    private IPlaywright? _playwright;

    internal EmbeddedPlatform Platform { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The first deployment (Newtonsoft.Json 13.0.1) and the second (13.0.3), live at the start.</summary>
    public JsonObject First { get; private set; } = null!;

    public JsonObject Second { get; private set; } = null!;

    /// <summary>The project of <see cref="Second"/>, built; never write to it.</summary>
    public string SecondProject { get; private set; } = null!;

    public string Screenshots { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public async Task InitializeAsync()
    {
        var browserPath = InstallChromiumAsync();
        var older = CopyProject("webui-older");
        var newer = CopyProject("webui-newer");
        var csproj = Path.Combine(older, "Hello.csproj");
        await File.WriteAllTextAsync(csproj, (await File.ReadAllTextAsync(csproj)).Replace("\"Newtonsoft.Json\" Version=\"13.0.3\"", "\"Newtonsoft.Json\" Version=\"13.0.1\"", StringComparison.Ordinal));
        Platform = await EmbeddedPlatform.StartAsync(_workspace.PathTo("platform"));

        // Both builds go side by side (most of the set-up's time); the deploys then find them built, in order.
        await Task.WhenAll(
            Task.Run(async () =>
            {
                await LockedPackages.UpdateAsync(older);
                await BuildAsync(older);
            }),
            BuildAsync(newer));
        First = await DeployAsync(older);
        Second = await DeployAsync(newer);
        SecondProject = newer;

        Directory.CreateDirectory(Screenshots);
        _playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = await browserPath, Headless = true });
    }

    private string CopyProject(string name)
    {
        var project = _workspace.CopySample("Hello", name);
        var program = Path.Combine(project, "Program.cs");
        File.WriteAllText(program, File.ReadAllText(program).Replace("    // A small ETL as a DAG", SlowJob, StringComparison.Ordinal));
        return project;
    }

    private async Task BuildAsync(string project)
    {
        var build = await Platform.SkiffAsync("build", project);
        build.ExitCode.ShouldBe(0, build.ToString());
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (Platform is not null)
        {
            await Platform.DisposeAsync();
        }

        _workspace.Dispose();
    }

    /// <summary>A fresh browser context (its own cookies) at <paramref name="width"/>×<paramref name="height"/>, on the UI, not signed in.</summary>
    public async Task<IPage> OpenAsync(int width, int height, List<string> foreignRequests)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = height } });
        // Playwright's 30 s for every wait is short for a page that waits on a run's process start on a loaded machine;
        // no test waits for something that must not come, so a longer deadline only matters when something hangs.
        context.SetDefaultTimeout(90_000);
        var page = await context.NewPageAsync();
        var origin = Platform.Url.GetLeftPart(UriPartial.Authority);
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(origin, StringComparison.Ordinal) && !request.Url.StartsWith("data:", StringComparison.Ordinal))
            {
                lock (foreignRequests)
                {
                    foreignRequests.Add(request.Url);
                }
            }
        };
        await page.GotoAsync(Platform.Url.ToString());
        return page;
    }

    public async Task SignInAsync(IPage page)
    {
        await page.FillAsync("#token", Platform.Token);
        await page.ClickAsync("#sign-in button[type=submit]");
        await page.WaitForSelectorAsync("#nav:not([hidden])");
    }

    public Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name + ".png"), FullPage = true });

    private async Task<JsonObject> DeployAsync(string project)
    {
        var deploy = await Platform.SkiffAsync("deploy", project, "--location", Location, "--json");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        return JsonNode.Parse(deploy.Stdout)!.AsObject();
    }

    private static async Task<string> InstallChromiumAsync()
    {
        var install = await CliProcess.RunAsync("bash", [Path.Combine(Workspace.RepositoryRoot, "scripts", "chromium.sh"), "install"], Workspace.RepositoryRoot);
        install.ExitCode.ShouldBe(0, install.ToString());
        return install.Stdout.Trim().Split('\n')[^1];
    }
}
