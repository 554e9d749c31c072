using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Skiff.Cli.Tests.Ui;

/// <summary>The web UI in a real browser (Debian's chromium) against a real platform, at 1280×800 and at a phone's width.</summary>
public sealed class WebUiTests(WebUiFixture fixture, ITestOutputHelper output) : IClassFixture<WebUiFixture>
{
    // Each run starts a process of its own, beside two test projects on two CPUs: a deadline against a hang, not a measure.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly List<string> _foreign = [];

    [Fact]
    public async Task Signs_in_sees_the_deployments_with_stage_bars_and_the_release_diff_names_exactly_the_bumped_package()
    {
        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await page.FillAsync("#token", "skiff_not-the-token");
        await page.ClickAsync("#sign-in button[type=submit]");
        var refused = page.Locator("#sign-in .error:not([hidden])");
        await refused.WaitForAsync();
        (await refused.InnerTextAsync()).ShouldContain("not this server's token");
        await fixture.SignInAsync(page);

        var row = page.Locator($"#locations tr[data-location={WebUiFixture.Location}]");
        (await row.InnerTextAsync()).ShouldContain("healthy");
        await fixture.ScreenshotAsync(page, "overview");
        await row.Locator("a").First.ClickAsync();
        var first = page.Locator($"li.deployment[data-deployment='{(string)fixture.First["deployment"]!}']");
        var second = page.Locator($"li.deployment[data-deployment='{(string)fixture.Second["deployment"]!}']");
        await second.WaitForAsync();
        // The CLI sent each stage's time; each becomes a bar.
        foreach (var stage in (string[])["build", "upload", "activate"])
        {
            (await second.Locator($".stages .stage.{stage}").CountAsync()).ShouldBe(1, stage);
        }

        (await second.InnerTextAsync()).ShouldContain("full");
        await fixture.ScreenshotAsync(page, "location");

        await first.Locator("input[name=from]").CheckAsync();
        await second.Locator("input[name=to]").CheckAsync();
        await page.ClickAsync("#open-diff");
        await page.WaitForSelectorAsync("tr[data-package]");
        var changed = await page.Locator("tr[data-package]").AllAsync();
        changed.Count.ShouldBe(1);
        (await changed[0].GetAttributeAsync("data-package")).ShouldBe("Newtonsoft.Json");
        var text = await changed[0].InnerTextAsync();
        text.ShouldContain("13.0.1");
        text.ShouldContain("13.0.3");
        // What moved: the new package's blob among what the second release holds and the first did not.
        (await page.Locator("main").InnerTextAsync()).ShouldContain("Newtonsoft.Json 13.0.3");
        await fixture.ScreenshotAsync(page, "release-diff");
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Launches_from_the_form_refuses_a_bad_parameter_with_the_API_message_and_follows_the_live_log_to_the_end()
    {
        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}/jobs");
        var job = page.Locator("section[data-job=slow]");
        await job.WaitForAsync();
        (await job.Locator("svg.dag g.node").CountAsync()).ShouldBe(2);
        (await job.InnerTextAsync()).ShouldContain("milliseconds between lines");
        await job.Locator("a.button").ClickAsync();

        await page.FillAsync("#param-lines", "many");
        await page.ClickAsync("#launch button[type=submit]");
        var refusal = page.Locator("#launch .error");
        await refusal.WaitForAsync();
        (await refusal.InnerTextAsync()).ShouldContain("parameter 'lines' must be an integer");

        await page.FillAsync("#param-lines", "6");
        // Half a second between lines: the page is read while the run goes, which must hold on a loaded machine too.
        await page.FillAsync("#param-delay_ms", "500");
        await page.ClickAsync("#launch button[type=submit]");
        await page.Locator("#run-status").WaitForAsync();
        page.Url.ShouldContain("#/runs/r-");
        var lines = page.Locator("#log li[data-type=log]");
        await lines.First.WaitForAsync();
        // Lines are on the page while the run still goes, and more come after.
        // Status and line count read in one step, so a run that ends between two reads cannot pass for one that had not.
        var early = await page.EvaluateAsync<int[]>("() => [document.querySelector('#run-status').innerText === 'running' ? 1 : 0, document.querySelectorAll('#log li[data-type=log]').length]");
        early[0].ShouldBe(1, "the page shows the run still going after its first line");
        await page.Locator("#run-status .badge.succeeded").WaitForAsync(new() { Timeout = (float)Deadline.TotalMilliseconds });
        await page.Locator("main [data-ended]").WaitForAsync();
        (await lines.CountAsync()).ShouldBe(6);
        early[1].ShouldBeLessThan(6);
        (await page.Locator("#log").InnerTextAsync()).ShouldContain("line 6 of 6");
        (await page.Locator("#log li.stdout").CountAsync()).ShouldBe(6);
        (await page.Locator("#gantt .gantt-row[data-op=write] .bar.succeeded").CountAsync()).ShouldBe(1);
        await fixture.ScreenshotAsync(page, "run");
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Cancels_a_running_run()
    {
        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}/jobs/slow/launch");
        await page.FillAsync("#param-lines", "400");
        await page.FillAsync("#param-delay_ms", "100");
        await page.ClickAsync("#launch button[type=submit]");
        await page.Locator("#log li[data-type=log]").First.WaitForAsync();
        await page.ClickAsync("#cancel");
        await page.Locator("#run-status .badge.canceled").WaitForAsync(new() { Timeout = (float)Deadline.TotalMilliseconds });
        (await page.Locator("#cancel").IsHiddenAsync()).ShouldBeTrue();

        var runId = page.Url[(page.Url.LastIndexOf('/') + 1)..];
        using var http = fixture.Platform.Http();
        var run = await http.GetFromJsonAsync<JsonObject>($"api/v1/runs/{runId}");
        ((string?)run!["status"]).ShouldBe("canceled");

        await page.GotoAsync($"{fixture.Platform.Url}#/runs?location={WebUiFixture.Location}&status=canceled");
        await page.Locator($"#runs tr[data-run='{runId}']").WaitForAsync();
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_release_with_an_experimental_package_is_flagged_on_its_location_and_in_its_history_with_the_package()
    {
        const string location = "webui-exp";
        var deploy = await fixture.Platform.SkiffAsync("deploy", fixture.SecondProject, "--location", location, "--exp", "YamlDotNet@18.0.0", "--json");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        var deployment = (string)JsonNode.Parse(deploy.Stdout)!["deployment"]!;

        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{location}");
        var entry = page.Locator($"li.deployment.experimental[data-deployment='{deployment}']");
        await entry.WaitForAsync();
        var badge = entry.Locator(".badge.experimental");
        (await badge.InnerTextAsync()).ShouldBe("experimental");
        (await badge.GetAttributeAsync("title")).ShouldBe("experimental: YamlDotNet@18.0.0");
        (await page.Locator("h1").InnerTextAsync()).ShouldContain("experimental");

        // The project's own deploy of the same code is not flagged.
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}");
        await page.Locator($"li.deployment[data-deployment='{(string)fixture.Second["deployment"]!}']").WaitForAsync();
        (await page.Locator("li.deployment.experimental").CountAsync()).ShouldBe(0);
        (await page.Locator("h1").InnerTextAsync()).ShouldNotContain("experimental");
        await fixture.ScreenshotAsync(page, "experimental");
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Rolls_back_to_a_chosen_deployment()
    {
        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}");
        var first = (string)fixture.First["deployment"]!;
        await page.Locator($"li.deployment[data-deployment='{first}'] button.rollback").ClickAsync();
        var rollback = page.Locator("#deployments li").Filter(new() { HasText = $"rollback to {first}" });
        await rollback.WaitForAsync();
        (await rollback.Locator(".badge.serving").CountAsync()).ShouldBe(1);

        using var http = fixture.Platform.Http();
        var locations = await http.GetFromJsonAsync<JsonArray>("api/v1/locations");
        var location = locations!.Single(l => (string?)l!["location"] == WebUiFixture.Location)!;
        ((string?)location["release"]).ShouldBe((string?)fixture.First["release"]);
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task At_a_phones_width_the_pages_fit_without_scrolling_sideways()
    {
        var page = await fixture.OpenAsync(390, 844, _foreign);
        await fixture.SignInAsync(page);
        foreach (var (hash, ready, name) in new[]
                 {
                     ("#/", "#locations", "narrow-overview"),
                     ($"#/locations/{WebUiFixture.Location}", "#deployments", "narrow-location"),
                     ($"#/locations/{WebUiFixture.Location}/jobs", "svg.dag", "narrow-jobs"),
                     ("#/agents", "section.agent", "narrow-agents"),
                     ("#/schedules", "#schedules", "narrow-schedules"),
                 })
        {
            await page.GotoAsync($"{fixture.Platform.Url}{hash}");
            await page.Locator("main h1").First.WaitForAsync();
            await fixture.ScreenshotAsync(page, name);
            await page.Locator(ready).First.WaitForAsync();
            (await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth")).ShouldBeTrue(name);
            await fixture.ScreenshotAsync(page, name);
        }

        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_agents_page_shows_the_agent_with_its_isolation_capacity_and_the_environment_it_holds()
    {
        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        (await page.Locator("#fleet").InnerTextAsync()).ShouldContain("1 ready");
        await page.ClickAsync("#fleet a[href='#/agents']");
        var agent = page.Locator("section.agent").First;
        await agent.WaitForAsync();
        (await page.Locator("section.agent").CountAsync()).ShouldBe(1);
        (await agent.Locator("h2 .badge").InnerTextAsync()).ShouldBe("ready");
        (await agent.Locator("[data-field=locations]").InnerTextAsync()).ShouldContain(WebUiFixture.Location);
        (await agent.Locator("[data-field=isolation] .badge").CountAsync()).ShouldBe(2);
        // The environment of whichever deployment is live (a rollback test may have run first) is held cached.
        using (var http = fixture.Platform.Http())
        {
            var locations = await http.GetFromJsonAsync<JsonArray>("api/v1/locations");
            var live = (string)locations!.Single(l => (string?)l!["location"] == WebUiFixture.Location)!["deployment"]!;
            var environment = (string)(await http.GetFromJsonAsync<JsonObject>($"api/v1/deployments/{live}"))!["environment"]!;
            var held = await agent.Locator("[data-field=environments] code.digest").EvaluateAllAsync<string[]>("nodes => nodes.map(n => n.title)");
            held.ShouldContain(environment);
        }

        (await agent.Locator("button[data-action=drain]").CountAsync()).ShouldBe(1, "the server's token is an admin's");
        await fixture.ScreenshotAsync(page, "agents");
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_read_token_for_one_location_lists_that_locations_runs_and_is_offered_no_action()
    {
        var created = await fixture.Platform.SkiffAsync("tokens", "create", "ui-viewer", "--role", "read", "--location", WebUiFixture.Location, "--json");
        created.ExitCode.ShouldBe(0, created.ToString());
        var secret = (string)JsonNode.Parse(created.Stdout)!["secret"]!;
        using (var http = fixture.Platform.Http())
        {
            // A run to list, started with the admin token.
            var started = await http.PostAsJsonAsync("api/v1/runs", new { location = WebUiFixture.Location, job = "slow", @params = new { lines = 1, delay_ms = 0 } });
            started.StatusCode.ShouldBe(HttpStatusCode.Created, await started.Content.ReadAsStringAsync());
        }

        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await page.FillAsync("#token", secret);
        await page.ClickAsync("#sign-in button[type=submit]");
        await page.WaitForSelectorAsync("#nav:not([hidden])");

        await page.GotoAsync($"{fixture.Platform.Url}#/runs");
        // The runs page (its filters) or the error the router puts in its place; never what was on screen before it.
        await page.Locator("#run-filters, main > p.error").First.WaitForAsync();
        (await page.Locator("main > p.error").CountAsync()).ShouldBe(0, await page.Locator("main").InnerTextAsync());
        (await page.Locator("#runs tr[data-run]").CountAsync()).ShouldBeGreaterThan(0, await page.Locator("main").InnerTextAsync());
        (await page.Locator("#filter-location option").AllInnerTextsAsync()).ShouldBe([WebUiFixture.Location]);
        var firstRun = await page.Locator("#runs tr[data-run] a").First.GetAttributeAsync("href");

        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}/jobs");
        await page.Locator("section[data-job=slow]").WaitForAsync();
        (await page.Locator("section[data-job] a.button").CountAsync()).ShouldBe(0, "a read token cannot launch");
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}");
        await page.Locator("#deployments li").First.WaitForAsync();
        (await page.Locator("button.rollback").CountAsync()).ShouldBe(0, "a read token cannot roll back");
        await page.GotoAsync($"{fixture.Platform.Url}{firstRun}");
        await page.Locator("main [data-ended]").WaitForAsync(new() { Timeout = (float)Deadline.TotalMilliseconds });
        (await page.Locator("#cancel").IsHiddenAsync()).ShouldBeTrue();
        await page.GotoAsync($"{fixture.Platform.Url}#/agents");
        await page.Locator("section.agent").First.WaitForAsync();
        (await page.Locator("section.agent button").CountAsync()).ShouldBe(0, "only an admin for every location drains");
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_long_log_is_appended_in_batches_without_drawing_a_shown_line_again()
    {
        // 2,000 lines by default: the property holds at any length, and the run's events are stored one transaction
        // each today (about 300/s on this machine). SKIFF_UI_LOG_LINES=10000 measures the 10,000 of docs/ui.md.
        var count = int.TryParse(Environment.GetEnvironmentVariable("SKIFF_UI_LOG_LINES"), out var given) ? given : 2_000;
        string runId;
        using (var http = fixture.Platform.Http())
        {
            var started = await http.PostAsJsonAsync("api/v1/runs", new { location = WebUiFixture.Location, job = "chatty", @params = new { lines = count } });
            started.StatusCode.ShouldBe(HttpStatusCode.Created, await started.Content.ReadAsStringAsync());
            runId = (string)(await started.Content.ReadFromJsonAsync<JsonObject>())!["run"]!;
        }

        var page = await fixture.OpenAsync(1280, 800, _foreign);
        // From the first script on, every change to the log's children is counted, and a line once shown is marked.
        await page.AddInitScriptAsync("""
            window.logChanges = { records: 0, added: 0, removed: 0 };
            new MutationObserver((records) => {
              for (const record of records) {
                if (record.target.id !== 'log') continue;
                window.logChanges.records++;
                window.logChanges.added += record.addedNodes.length;
                window.logChanges.removed += record.removedNodes.length;
              }
            }).observe(document, { childList: true, subtree: true });
            """);
        await page.ReloadAsync();
        await fixture.SignInAsync(page);
        var opened = System.Diagnostics.Stopwatch.StartNew();
        await page.GotoAsync($"{fixture.Platform.Url}#/runs/{runId}");
        await page.Locator("#log li").First.WaitForAsync();
        await page.EvaluateAsync("document.querySelector('#log li').dataset.marked = 'first'");
        await page.Locator("main [data-ended]").WaitForAsync(new() { Timeout = 120_000 });
        var followed = opened.Elapsed;

        (await page.Locator("#log li[data-type=log]").CountAsync()).ShouldBe(count);
        var changes = await page.EvaluateAsync<int[]>("[window.logChanges.records, window.logChanges.added, window.logChanges.removed]");
        changes[2].ShouldBe(0, "no line shown is drawn again");
        changes[1].ShouldBe(await page.Locator("#log li").CountAsync());
        changes[0].ShouldBeLessThanOrEqualTo(changes[1], "at most one append per line");
        (await page.Locator("#log li").First.GetAttributeAsync("data-marked")).ShouldBe("first");
        (await page.Locator("#log").InnerTextAsync()).ShouldContain($"line {count} of {count}");

        // The same run's page again, every event stored, so they arrive in one burst: one append per animation frame,
        // each carrying every line that came since the last. How long the drawing takes is reported, not asserted.
        await page.GotoAsync($"{fixture.Platform.Url}#/runs");
        await page.Locator("#runs").WaitForAsync();
        await page.EvaluateAsync("window.logChanges = { records: 0, added: 0, removed: 0 }");
        var again = System.Diagnostics.Stopwatch.StartNew();
        await page.GotoAsync($"{fixture.Platform.Url}#/runs/{runId}");
        await page.Locator("main [data-ended]").WaitForAsync(new() { Timeout = 120_000 });
        changes = await page.EvaluateAsync<int[]>("[window.logChanges.records, window.logChanges.added, window.logChanges.removed]");
        changes[1].ShouldBe(await page.Locator("#log li").CountAsync());
        changes[0].ShouldBeLessThan(changes[1] / 20, string.Join(", ", changes));
        output.WriteLine($"{count} lines: followed live to the end in {followed.TotalSeconds:0.0} s; the ended run's page drawn in {again.Elapsed.TotalSeconds:0.0} s");

        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_webhooks_page_lists_the_subscription_and_a_failing_delivery_with_its_attempts()
    {
        // A receiver that is not there: the port was free a moment ago, and every attempt is refused.
        var closed = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var added = await fixture.Platform.SkiffAsync("webhooks", "add", $"http://127.0.0.1:{port}/hook", "--on", "run_succeeded", "--location", WebUiFixture.Location, "--json");
        added.ExitCode.ShouldBe(0, added.ToString());
        var subscription = (string)JsonNode.Parse(added.Stdout)!["id"]!;
        string runId;
        using (var http = fixture.Platform.Http())
        {
            var started = await http.PostAsJsonAsync("api/v1/runs", new { location = WebUiFixture.Location, job = "chatty", @params = new { lines = 1 } });
            started.StatusCode.ShouldBe(HttpStatusCode.Created, await started.Content.ReadAsStringAsync());
            runId = (string)(await started.Content.ReadFromJsonAsync<JsonObject>())!["run"]!;
        }

        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        using var deadline = new CancellationTokenSource(Deadline);
        var row = page.Locator($"#deliveries tr[data-subject='{runId}']");
        // The run ends, its delivery is written, and the sender's first attempt is refused: reload until all three show.
        while (!await row.IsVisibleAsync() || await row.Locator("td.attempts").InnerTextAsync() == "0")
        {
            deadline.Token.ThrowIfCancellationRequested();
            await page.GotoAsync($"{fixture.Platform.Url}#/");
            await page.GotoAsync($"{fixture.Platform.Url}#/webhooks");
            await page.Locator("main h1").WaitForAsync();
            await page.Locator("#deliveries, main p.muted").Last.WaitForAsync();
        }

        (await page.Locator($"#subscriptions tr[data-subscription='{subscription}']").InnerTextAsync()).ShouldContain($"127.0.0.1:{port}");
        (await row.InnerTextAsync()).ShouldContain("run_succeeded");
        (await row.Locator(".badge").InnerTextAsync()).ShouldBe("pending");
        (await row.Locator("td.last-answer").InnerTextAsync()).ShouldNotBe("–");
        await fixture.ScreenshotAsync(page, "webhooks");
        var removed = await fixture.Platform.SkiffAsync("webhooks", "remove", subscription);
        removed.ExitCode.ShouldBe(0, removed.ToString());
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_schedules_page_shows_the_next_fire_time_in_the_schedules_zone_and_pauses_and_resumes()
    {
        var page = await fixture.OpenAsync(1280, 800, _foreign);
        await fixture.SignInAsync(page);
        await page.GotoAsync($"{fixture.Platform.Url}#/locations/{WebUiFixture.Location}/jobs");
        (await page.Locator("section[data-job=chatty] .schedules").InnerTextAsync()).ShouldContain("0 3 1 1 * Europe/Berlin");
        await page.ClickAsync("section[data-job=chatty] .schedules a");
        var row = page.Locator($"#schedules tr[data-schedule='{WebUiFixture.Location}/chatty/0 3 1 1 *']");
        await row.WaitForAsync();
        (await row.Locator(".badge").InnerTextAsync()).ShouldBe("active");
        // 03:00 on 1 January in Berlin is 02:00 UTC: the page shows the zone's own reading of the moment.
        (await row.Locator("td.next").InnerTextAsync()).ShouldContain("-01-01 03:00 +01:00");
        await fixture.ScreenshotAsync(page, "schedules");

        await row.Locator("button[data-action=pause]").ClickAsync();
        await row.Locator(".badge.paused").WaitForAsync();
        (await row.Locator("td.next").InnerTextAsync()).ShouldBe("–");
        using (var http = fixture.Platform.Http())
        {
            var listed = await http.GetFromJsonAsync<JsonArray>($"api/v1/schedules?location={WebUiFixture.Location}");
            ((string?)listed!.Single(s => (string?)s!["job"] == "chatty")!["state"]).ShouldBe("paused");
        }

        await row.Locator("button[data-action=resume]").ClickAsync();
        await row.Locator(".badge.active").WaitForAsync();
        _foreign.ShouldBeEmpty();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_session_cookie_is_HttpOnly_and_SameSite_Strict_and_actions_need_the_CSRF_token()
    {
        using var handler = new HttpClientHandler { UseCookies = true, CookieContainer = new CookieContainer() };
        using var http = new HttpClient(handler) { BaseAddress = fixture.Platform.Url };

        var page = await http.GetAsync("/");
        page.Headers.GetValues("Content-Security-Policy").Single().ShouldStartWith("default-src 'self'");
        (await http.GetAsync("api/v1/locations")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await http.PostAsJsonAsync("ui/session", new { token = "skiff_wrong" })).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);

        var signIn = await http.PostAsJsonAsync("ui/session", new { token = fixture.Platform.Token });
        signIn.StatusCode.ShouldBe(HttpStatusCode.OK);
        var cookie = signIn.Headers.GetValues("Set-Cookie").Single();
        cookie.ShouldContain("httponly", Case.Insensitive);
        cookie.ShouldContain("samesite=strict", Case.Insensitive);
        cookie.ShouldNotContain(fixture.Platform.Token);
        var csrf = (string)(await signIn.Content.ReadFromJsonAsync<JsonObject>())!["csrf"]!;
        (await http.GetAsync("api/v1/locations")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // An action authenticated by the cookie alone is refused before it reaches the endpoint.
        var withoutToken = await http.PostAsync("api/v1/runs/r-none/cancel", null);
        withoutToken.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await withoutToken.Content.ReadAsStringAsync()).ShouldContain("X-Skiff-Csrf");
        using var forged = new HttpRequestMessage(HttpMethod.Post, "api/v1/runs/r-none/cancel");
        forged.Headers.Add("X-Skiff-Csrf", csrf);
        forged.Headers.Add("Origin", "http://evil.example");
        (await http.SendAsync(forged)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        using var real = new HttpRequestMessage(HttpMethod.Post, "api/v1/runs/r-none/cancel");
        real.Headers.Add("X-Skiff-Csrf", csrf);
        (await http.SendAsync(real)).StatusCode.ShouldBe(HttpStatusCode.NotFound);

        (await http.PostAsync("ui/session/end", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync("api/v1/locations")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }
}
