using System.Text;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using Skiff.Server.Blobs;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Deploy;

/// <summary>
/// The manifests under deploy/kubernetes, rendered offline by kubectl's kustomize and read strictly into
/// KubernetesClient's typed models. No cluster can run here (docs/kubernetes.md): this checks what can be
/// checked without one: shape, wiring between objects, and that every command line is one the real
/// <c>skiff server</c> and <c>skiff agent</c> accept.
/// </summary>
public sealed partial class KubernetesManifestTests(KubernetesManifestTests.Rendered rendered) : IClassFixture<KubernetesManifestTests.Rendered>
{
    /// <summary>
    /// The Secrets base/kustomization.yaml says an overlay must provide; rendered alone, the base references
    /// these and nothing else that is missing.
    /// </summary>
    private static readonly string[] SecretsAnOverlayProvides = ["skiff-postgres", "skiff-s3", "skiff-secrets-key", "skiff-token"];

    [Fact]
    public void Every_kustomization_renders_offline_into_known_typed_objects()
    {
        rendered.Kustomizations.Keys.ShouldBe(
            ["base", "base/agent", "base/server", "overlays/example", "overlays/example/pools/gpu", "overlays/example/pools/meshing"], ignoreOrder: true,
            "a new kustomization under deploy/kubernetes is checked here too; add it to the list knowingly");
        foreach (var (folder, objects) in rendered.Kustomizations)
        {
            // LoadAllFromString(strict: true) already refused unknown kinds and misspelled fields while rendering.
            objects.ShouldNotBeEmpty(folder);
            objects.ShouldAllBe(o => o is IKubernetesObject<V1ObjectMeta>, folder);
        }
    }

    [Fact]
    public void The_server_is_two_replicas_behind_a_Service_that_targets_the_port_its_probes_check()
    {
        foreach (var (folder, objects) in rendered.Installations)
        {
            var server = objects.OfType<V1Deployment>().Single(d => d.Name() == "skiff-server");
            var service = objects.OfType<V1Service>().Single(s => s.Name() == "skiff-server");
            var pod = server.Spec.Template;
            server.Spec.Replicas.ShouldBe(2, folder);
            Selects(server.Spec.Selector.MatchLabels, pod.Metadata.Labels).ShouldBeTrue($"{folder}: the Deployment's selector must match its own pods");
            Selects(service.Spec.Selector, pod.Metadata.Labels).ShouldBeTrue($"{folder}: the Service's selector must match the server pods");
            var budget = objects.OfType<V1PodDisruptionBudget>().Single(b => b.Name() == "skiff-server");
            budget.Spec.Selector.MatchLabels.ShouldNotBeEmpty($"{folder}: an empty selector selects every pod of the namespace");
            Selects(budget.Spec.Selector.MatchLabels, pod.Metadata.Labels).ShouldBeTrue(folder);

            var container = pod.Spec.Containers.ShouldHaveSingleItem();
            var servicePort = service.Spec.Ports.ShouldHaveSingleItem();
            var port = PortNumber(container, servicePort.TargetPort.Value);
            Option(container.Args, "--port").ShouldBe(port.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{folder}: skiff server must listen on the port the Service targets");
            Option(container.Args, "--host").ShouldBe("0.0.0.0", $"{folder}: on 127.0.0.1 (the default) nothing outside the pod reaches it");
            // Readiness asks whether the stores answer (/readyz); liveness and startup only whether the process serves.
            foreach (var (kind, probe, path) in new[] { ("readiness", container.ReadinessProbe, "/readyz"), ("liveness", container.LivenessProbe, "/healthz"), ("startup", container.StartupProbe, "/healthz") })
            {
                probe.ShouldNotBeNull($"{folder}: {kind} probe");
                probe.HttpGet.ShouldNotBeNull($"{folder}: {kind} probe");
                probe.HttpGet.Path.ShouldBe(path, $"{folder}: {kind} probe");
                PortNumber(container, probe.HttpGet.Port.Value).ShouldBe(port, $"{folder}: {kind} probe");
            }
        }
    }

    [Fact]
    public void Every_container_requests_cpu_and_memory_and_has_limits_no_lower()
    {
        foreach (var (folder, objects) in rendered.Kustomizations)
        {
            foreach (var (workload, pod) in Pods(objects))
            {
                foreach (var container in pod.Spec.Containers.Concat(pod.Spec.InitContainers ?? []))
                {
                    var where = $"{folder}: {workload}/{container.Name}";
                    container.Resources.ShouldNotBeNull(where);
                    foreach (var resource in new[] { "cpu", "memory" })
                    {
                        container.Resources.Requests.ShouldContainKey(resource, where);
                        container.Resources.Limits.ShouldContainKey(resource, where);
                        container.Resources.Limits[resource].ToDecimal().ShouldBeGreaterThanOrEqualTo(container.Resources.Requests[resource].ToDecimal(), where);
                    }
                }
            }
        }
    }

    [Fact]
    public void Every_Secret_and_ConfigMap_a_pod_reads_exists_with_the_keys_it_reads()
    {
        foreach (var (folder, objects) in rendered.Installations)
        {
            var missing = MissingReferences(objects);
            if (folder == "base")
            {
                missing.Select(m => m.Name).Distinct().Order().ToArray().ShouldBe(SecretsAnOverlayProvides,
                    customMessage: "the base leaves exactly the documented Secrets to its overlays:\n" + string.Join('\n', missing));
                missing.ShouldAllBe(m => m.Kind == "Secret");
            }
            else
            {
                missing.ShouldBeEmpty(folder);
            }
        }
    }

    [Fact]
    public void Every_command_line_names_only_flags_the_real_skiff_server_and_agent_accept()
    {
        var checkedCommands = new HashSet<string>();
        foreach (var (folder, objects) in rendered.Kustomizations)
        {
            foreach (var (workload, pod) in Pods(objects))
            {
                foreach (var container in pod.Spec.Containers)
                {
                    var where = $"{folder}: {workload}/{container.Name}";
                    container.Command.ShouldBeNull($"{where}: the image's entrypoint is skiff; args are its command line");
                    var args = container.Args.ShouldNotBeNull(where);
                    var command = args[0];
                    rendered.Help.ShouldContainKey(command, $"{where}: `skiff {command}` is not a command the manifests are checked against");
                    checkedCommands.Add(command);
                    var flags = rendered.Help[command];
                    for (var i = 1; i < args.Count; i++)
                    {
                        args[i].ShouldStartWith("--", customMessage: $"{where}: '{args[i]}' is neither a flag nor a flag's value");
                        var takesValue = flags.TryGetValue(args[i], out var known) ? known
                            : throw new ShouldAssertException($"{where}: `skiff {command}` has no flag {args[i]}; it accepts {string.Join(", ", flags.Keys)}");
                        if (takesValue)
                        {
                            i++;
                            (i < args.Count && !args[i].StartsWith("--", StringComparison.Ordinal)).ShouldBeTrue($"{where}: {args[i - 1]} needs a value");
                        }
                    }

                    // Kubernetes expands $(NAME) only from the container's own env; anything else reaches skiff as the literal text.
                    var defined = (container.Env ?? []).Select(e => e.Name).ToHashSet();
                    foreach (var name in args.SelectMany(a => VariableReference().Matches(a)).Select(m => m.Groups["name"].Value))
                    {
                        defined.ShouldContain(name, $"{where}: $({name}) is not in the container's env");
                    }
                }
            }
        }

        checkedCommands.ShouldBe(["agent", "server"], ignoreOrder: true);
    }

    [Fact]
    public void The_example_settings_are_ones_skiff_server_accepts_and_agents_reach_the_Service()
    {
        foreach (var (folder, objects) in rendered.Installations.Where(i => i.Folder != "base"))
        {
            var server = objects.OfType<V1Deployment>().Single(d => d.Name() == "skiff-server").Spec.Template.Spec.Containers.Single();
            var args = Expand(server, objects);
            var environment = Environment(server, objects);
            // From the environment, not flags: `skiff server` reads SKIFF_METADATA and SKIFF_BLOBS when the flags are absent.
            Option(args, "--metadata").ShouldBeNull($"{folder}: the PostgreSQL password belongs in SKIFF_METADATA, not on the command line");
            PostgresMetadataStore.TryParseConnectionString(environment["SKIFF_METADATA"], out var problem).ShouldBeTrue($"{folder}: SKIFF_METADATA: {problem}");
            var blobs = S3BlobStoreOptions.Parse(environment["SKIFF_BLOBS"], name => environment.GetValueOrDefault(name));
            blobs.AccessKey.ShouldNotBeNullOrEmpty(folder);

            var service = objects.OfType<V1Service>().Single(s => s.Name() == "skiff-server");
            foreach (var agent in objects.OfType<V1DaemonSet>())
            {
                var url = new Uri(Option(Expand(agent.Spec.Template.Spec.Containers.Single(), objects), "--server")!);
                url.Host.ShouldBe(service.Name(), $"{folder}: {agent.Name()}");
                url.Port.ShouldBe(service.Spec.Ports.Single().Port, $"{folder}: {agent.Name()}");
            }
        }
    }

    [Fact]
    public void Servers_and_agents_share_one_token_from_one_Secret()
    {
        foreach (var (folder, objects) in rendered.Installations)
        {
            var pod = objects.OfType<V1Deployment>().Single(d => d.Name() == "skiff-server").Spec.Template.Spec;
            var server = pod.Containers.Single();
            // skiff server reads <--data>/token and makes a new random one only when it is missing (TokenFile).
            var mount = server.VolumeMounts.Single(m => m.MountPath == Option(server.Args, "--data") + "/token");
            var secret = pod.Volumes.Single(v => v.Name == mount.Name).Secret.ShouldNotBeNull($"{folder}: the token must come from a Secret, or each replica makes its own");
            var key = mount.SubPath;
            key.ShouldNotBeNullOrEmpty(folder);

            var agents = objects.OfType<V1DaemonSet>().ToList();
            agents.ShouldNotBeEmpty(folder);
            foreach (var agent in agents)
            {
                var token = agent.Spec.Template.Spec.Containers.Single().Env.Single(e => e.Name == "SKIFF_TOKEN").ValueFrom.SecretKeyRef;
                (token.Name, token.Key).ShouldBe((secret.SecretName, key), $"{folder}: {agent.Name()}");
            }
        }
    }

    [Fact]
    public void Agents_claim_only_labels_their_nodes_carry_and_no_node_runs_two()
    {
        foreach (var (folder, objects) in rendered.Installations)
        {
            var agents = objects.OfType<V1DaemonSet>().ToList();
            foreach (var agent in agents)
            {
                var pod = agent.Spec.Template.Spec;
                var args = pod.Containers.Single().Args;
                for (var i = 0; i < args.Count - 1; i++)
                {
                    if (args[i] == "--label")
                    {
                        var (key, value) = (args[i + 1].Split('=')[0], args[i + 1].Split('=', 2)[1]);
                        var selected = pod.NodeSelector is not null && pod.NodeSelector.TryGetValue($"skiff.dev/{key}", out var carried) ? carried : null;
                        selected.ShouldBe(value,
                            $"{folder}: {agent.Name()} says --label {args[i + 1]} but does not select nodes labelled skiff.dev/{key}={value}");
                    }
                }
            }

            for (var a = 0; a < agents.Count; a++)
            {
                for (var b = a + 1; b < agents.Count; b++)
                {
                    NodesCanOverlap(agents[a].Spec.Template.Spec, agents[b].Spec.Template.Spec).ShouldBeFalse(
                        $"{folder}: a node could run both {agents[a].Name()} and {agents[b].Name()}, two agents splitting one node");
                }
            }

            // Two controllers whose selectors match each other's pods fight over them.
            var workloads = Pods(objects).ToList();
            foreach (var (name, selector) in objects.OfType<V1Deployment>().Select(d => ($"Deployment/{d.Name()}", d.Spec.Selector.MatchLabels))
                         .Concat(objects.OfType<V1DaemonSet>().Select(d => ($"DaemonSet/{d.Name()}", d.Spec.Selector.MatchLabels))))
            {
                workloads.Where(w => Selects(selector, w.Pod.Metadata.Labels)).Select(w => w.Name).ShouldBe([name], folder);
            }
        }
    }

    [Fact]
    public void A_task_pool_scales_from_zero_on_its_ready_and_in_flight_tasks_and_its_agents_drain_before_they_are_killed()
    {
        var scaled = rendered.Kustomizations.SelectMany(k => k.Value.OfType<KedaScaledObject>().Select(s => (Folder: k.Key, Scaled: s, Objects: k.Value))).ToList();
        scaled.Select(s => s.Folder).ShouldBe(["overlays/example", "overlays/example/pools/meshing"], ignoreOrder: true);
        foreach (var (folder, scaledObject, objects) in scaled)
        {
            var where = $"{folder}: ScaledObject/{scaledObject.Name()}";
            var spec = scaledObject.Spec;
            (spec.ScaleTargetRef.ApiVersion, spec.ScaleTargetRef.Kind).ShouldBe(("apps/v1", "Deployment"), where);
            var target = objects.OfType<V1Deployment>().SingleOrDefault(d => d.Name() == spec.ScaleTargetRef.Name)
                .ShouldNotBeNull($"{where} scales Deployment {spec.ScaleTargetRef.Name}, which is not rendered beside it");
            target.Namespace().ShouldBe(scaledObject.Namespace(), where);
            spec.MinReplicaCount.ShouldBe(0, $"{where}: an idle pool scales to zero");
            spec.MaxReplicaCount.ShouldNotBeNull(where).ShouldBeGreaterThan(0, where);

            // On the pool's work: its ready plus in-flight tasks, one agent per task, any task waking it from zero.
            var trigger = spec.Triggers.ShouldHaveSingleItem(where);
            trigger.Type.ShouldBe("prometheus", where);
            var query = trigger.Metadata["query"];
            var pool = PoolOfQuery().Match(query) is { Success: true } match ? match.Groups["pool"].Value : throw new ShouldAssertException($"{where}: the query names no pool: {query}");
            query.ShouldBe($"max(skiff_pool_tasks_ready{{pool=\"{pool}\"}}) + max(skiff_pool_tasks_in_flight{{pool=\"{pool}\"}})", where);
            (trigger.Metadata["threshold"], trigger.Metadata["activationThreshold"]).ShouldBe(("1", "0"), where);
            new Uri(trigger.Metadata["serverAddress"]).Scheme.ShouldBe("http", where);

            // Its pods are agents that claim the pool's label (what `skiff deploy --on pool=NAME` places the pool by), and
            // have time to drain: the pod's grace is longer than the agent's own, so Kubernetes never kills a busy worker.
            var pod = target.Spec.Template.Spec;
            var args = pod.Containers.Single().Args;
            args[0].ShouldBe("agent", where);
            args.Select((a, i) => (a, i)).Where(p => p.a == "--label").Select(p => args[p.i + 1]).ShouldContain($"pool={pool}", where);
            var drainGrace = Option(args, "--drain-grace").ShouldNotBeNull($"{where}: its agents say how long they drain");
            Skiff.Cli.Commands.PlatformCommands.TryParseDuration(drainGrace, out var grace).ShouldBeTrue(drainGrace);
            pod.TerminationGracePeriodSeconds.ShouldNotBeNull(where).ShouldBeGreaterThan((long)grace.TotalSeconds, $"{where}: the pod's grace must outlast --drain-grace {drainGrace}");
        }

        // The node agents drain too: a rollout or a node drain stops them with SIGTERM as well.
        foreach (var agent in rendered.Kustomizations["overlays/example"].OfType<V1DaemonSet>())
        {
            var pod = agent.Spec.Template.Spec;
            Skiff.Cli.Commands.PlatformCommands.TryParseDuration(Option(pod.Containers.Single().Args, "--drain-grace") ?? "5m", out var grace).ShouldBeTrue();
            pod.TerminationGracePeriodSeconds.ShouldNotBeNull(agent.Name()).ShouldBeGreaterThan((long)grace.TotalSeconds, agent.Name());
        }
    }

    [GeneratedRegex("""skiff_pool_tasks_ready\{pool="(?<pool>[^"]+)"\}""")]
    private static partial Regex PoolOfQuery();

    [Fact]
    public void Installations_run_one_pinned_image_and_the_base_leaves_it_to_them()
    {
        foreach (var (folder, objects) in rendered.Installations)
        {
            var images = Pods(objects).SelectMany(w => w.Pod.Spec.Containers).Select(c => c.Image).Distinct().ToList();
            if (folder == "base")
            {
                images.ShouldBe(["skiff"], "the placeholder an overlay's images: replaces");
            }
            else
            {
                var image = images.ShouldHaveSingleItem($"{folder}: servers and every agent pool run the same image");
                image.ShouldNotBe("skiff", folder);
                image.ShouldMatch(@":[\w.-]+$", $"{folder}: a tag, so a rollout is a change of manifest");
                image.ShouldNotEndWith(":latest", customMessage: folder);
            }
        }

        // The image the manifests name is built by deploy/Dockerfile from what is in this repository.
        var dockerfile = File.ReadAllLines(Path.Combine(Workspace.RepositoryRoot, "deploy", "Dockerfile"));
        foreach (var copy in dockerfile.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal)))
        {
            foreach (var source in copy.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1])
            {
                Path.Exists(Path.Combine(Workspace.RepositoryRoot, source)).ShouldBeTrue($"deploy/Dockerfile copies {source}, which is not in the repository");
            }
        }

        var publish = dockerfile.Single(l => l.Contains("dotnet publish", StringComparison.Ordinal)).Split(' ').Single(w => w.EndsWith(".csproj", StringComparison.Ordinal));
        File.Exists(Path.Combine(Workspace.RepositoryRoot, publish)).ShouldBeTrue(publish);
        dockerfile.ShouldContain("ENTRYPOINT [\"dotnet\", \"/app/skiff.dll\"]");
    }

    private static IEnumerable<(string Name, V1PodTemplateSpec Pod)> Pods(IReadOnlyList<object> objects) =>
        objects.OfType<V1Deployment>().Select(d => ($"Deployment/{d.Name()}", d.Spec.Template))
            .Concat(objects.OfType<V1DaemonSet>().Select(d => ($"DaemonSet/{d.Name()}", d.Spec.Template)))
            .Concat(objects.OfType<V1StatefulSet>().Select(d => ($"StatefulSet/{d.Name()}", d.Spec.Template)));

    private static bool Selects(IDictionary<string, string>? selector, IDictionary<string, string>? labels) =>
        selector is { Count: > 0 } && labels is not null && selector.All(p => labels.TryGetValue(p.Key, out var value) && value == p.Value);

    /// <summary>Whether some node could satisfy both pods' node selectors and required node affinities.</summary>
    private static bool NodesCanOverlap(V1PodSpec a, V1PodSpec b)
    {
        var first = NodeRequirements(a);
        var second = NodeRequirements(b);
        return !first.Keys.Intersect(second.Keys).Any(key => first[key] != second[key]);
    }

    /// <summary>Label key → the value a node must carry, or null for "must not carry the key". Only the forms the manifests use.</summary>
    private static Dictionary<string, string?> NodeRequirements(V1PodSpec pod)
    {
        var requirements = (pod.NodeSelector ?? new Dictionary<string, string>()).ToDictionary(p => p.Key, string? (p) => p.Value);
        var terms = pod.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution?.NodeSelectorTerms ?? [];
        terms.Count.ShouldBeLessThanOrEqualTo(1, "alternative node selector terms are not modelled here");
        foreach (var expression in terms.SelectMany(t => t.MatchExpressions ?? []))
        {
            expression.OperatorProperty.ShouldBe("DoesNotExist", "only DoesNotExist is modelled here");
            requirements[expression.Key] = null;
        }

        return requirements;
    }

    private static int PortNumber(V1Container container, string port) =>
        int.TryParse(port, out var number) ? number : container.Ports.Single(p => p.Name == port).ContainerPort;

    private static string? Option(IList<string> args, string name) =>
        args.IndexOf(name) is var i and >= 0 && i + 1 < args.Count ? args[i + 1] : null;

    private sealed record Reference(string Kind, string Name, string Key, string From)
    {
        public override string ToString() => $"{Kind} {Name} (key {Key}) read by {From}";
    }

    private static List<Reference> MissingReferences(IReadOnlyList<object> objects)
    {
        var keys = new Dictionary<(string Kind, string Name), ICollection<string>>();
        foreach (var secret in objects.OfType<V1Secret>())
        {
            keys[("Secret", secret.Name())] = [.. (secret.Data?.Keys ?? []).Concat(secret.StringData?.Keys ?? [])];
        }

        foreach (var map in objects.OfType<V1ConfigMap>())
        {
            keys[("ConfigMap", map.Name())] = [.. (map.Data?.Keys ?? []).Concat(map.BinaryData?.Keys ?? [])];
        }

        var references = new List<Reference>();
        foreach (var (workload, pod) in Pods(objects))
        {
            foreach (var container in pod.Spec.Containers.Concat(pod.Spec.InitContainers ?? []))
            {
                var from = $"{workload}/{container.Name}";
                foreach (var variable in container.Env ?? [])
                {
                    if (variable.ValueFrom?.SecretKeyRef is { } secret)
                    {
                        references.Add(new("Secret", secret.Name, secret.Key, $"{from} env {variable.Name}"));
                    }

                    if (variable.ValueFrom?.ConfigMapKeyRef is { } map)
                    {
                        references.Add(new("ConfigMap", map.Name, map.Key, $"{from} env {variable.Name}"));
                    }
                }

                foreach (var source in container.EnvFrom ?? [])
                {
                    references.Add(source.SecretRef is { } secret
                        ? new("Secret", secret.Name, "*", $"{from} envFrom")
                        : new("ConfigMap", source.ConfigMapRef.Name, "*", $"{from} envFrom"));
                }

                foreach (var mount in container.VolumeMounts ?? [])
                {
                    var volume = pod.Spec.Volumes.Single(v => v.Name == mount.Name);
                    // A subPath of a Secret or ConfigMap volume is one of its keys; a missing key mounts an empty directory.
                    var key = string.IsNullOrEmpty(mount.SubPath) ? "*" : mount.SubPath;
                    if (volume.Secret is { } secret)
                    {
                        references.Add(new("Secret", secret.SecretName, key, $"{from} volume {volume.Name}"));
                    }

                    if (volume.ConfigMap is { } map)
                    {
                        references.Add(new("ConfigMap", map.Name, key, $"{from} volume {volume.Name}"));
                    }
                }
            }

            foreach (var volume in pod.Spec.Volumes ?? [])
            {
                references.AddRange((volume.Secret?.Items ?? []).Select(item => new Reference("Secret", volume.Secret!.SecretName, item.Key, $"{workload} volume {volume.Name}")));
                references.AddRange((volume.ConfigMap?.Items ?? []).Select(item => new Reference("ConfigMap", volume.ConfigMap!.Name, item.Key, $"{workload} volume {volume.Name}")));
            }
        }

        references.ShouldNotBeEmpty();
        return [.. references.Where(r => !keys.TryGetValue((r.Kind, r.Name), out var present) || (r.Key != "*" && !present.Contains(r.Key)))];
    }

    /// <summary>A container's env as Kubernetes would set it, from the rendered ConfigMaps and Secrets.</summary>
    private static Dictionary<string, string> Environment(V1Container container, IReadOnlyList<object> objects)
    {
        var environment = new Dictionary<string, string>();
        foreach (var variable in container.Env ?? [])
        {
            environment[variable.Name] = variable.Value
                ?? (variable.ValueFrom.SecretKeyRef is { } secret
                    ? Encoding.UTF8.GetString(objects.OfType<V1Secret>().Single(s => s.Name() == secret.Name).Data[secret.Key])
                    : variable.ValueFrom.ConfigMapKeyRef is { } map
                        ? objects.OfType<V1ConfigMap>().Single(m => m.Name() == map.Name).Data[map.Key]
                        : $"<{variable.ValueFrom.FieldRef.FieldPath}>");
        }

        return environment;
    }

    private static List<string> Expand(V1Container container, IReadOnlyList<object> objects)
    {
        var environment = Environment(container, objects);
        return [.. container.Args.Select(a => VariableReference().Replace(a, m => environment[m.Groups["name"].Value]))];
    }

    [GeneratedRegex(@"\$\((?<name>[A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VariableReference();

    /// <summary>Every kustomization rendered once, and the flags of the real CLI, read once for the class.</summary>
    public sealed partial class Rendered : IAsyncLifetime
    {
        private static readonly string Root = Path.Combine(Workspace.RepositoryRoot, "deploy", "kubernetes");

        /// <summary>Folder (relative to deploy/kubernetes, '/'-separated) → its rendered objects.</summary>
        public Dictionary<string, IReadOnlyList<object>> Kustomizations { get; } = [];

        /// <summary>`skiff server` and `skiff agent` → their flags (every alias), each with whether it takes a value.</summary>
        public Dictionary<string, Dictionary<string, bool>> Help { get; } = [];

        /// <summary>What one applies: the base and each overlay, not the parts they are made of.</summary>
        public IEnumerable<(string Folder, IReadOnlyList<object> Objects)> Installations =>
            Kustomizations.Where(k => k.Key == "base" || k.Key.Count(c => c == '/') == 1 && k.Key.StartsWith("overlays/", StringComparison.Ordinal))
                .Select(k => (k.Key, k.Value));

        public async Task InitializeAsync()
        {
            var folders = Directory.EnumerateFiles(Root, "kustomization.yaml", SearchOption.AllDirectories).Select(Path.GetDirectoryName).ToList();
            var renders = folders.Select(async folder => (Folder: Path.GetRelativePath(Root, folder!).Replace('\\', '/'), Objects: await RenderAsync(folder!)));
            var helps = new[] { "server", "agent" }.Select(async command => (Command: command, Flags: await FlagsAsync(command)));
            foreach (var (folder, objects) in await Task.WhenAll(renders))
            {
                Kustomizations[folder] = objects;
            }

            foreach (var (command, flags) in await Task.WhenAll(helps))
            {
                Help[command] = flags;
            }
        }

        public Task DisposeAsync() => Task.CompletedTask;

        private static async Task<IReadOnlyList<object>> RenderAsync(string folder)
        {
            CliProcess.Result result;
            try
            {
                result = await CliProcess.RunAsync("kubectl", ["kustomize", folder], Root, deadline: TimeSpan.FromSeconds(60));
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException("kubectl is not on PATH; these tests render deploy/kubernetes with `kubectl kustomize` (kubectl ships kustomize v5)", e);
            }

            result.ExitCode.ShouldBe(0, $"kubectl kustomize {folder}\n{result}");
            try
            {
                // strict: a misspelled field is an error here rather than something a cluster drops silently.
                return KubernetesYaml.LoadAllFromString(result.Stdout, KedaScaledObject.TypeMap, strict: true);
            }
            catch (YamlDotNet.Core.YamlException e)
            {
                throw new InvalidOperationException($"kubectl kustomize {Path.GetRelativePath(Workspace.RepositoryRoot, folder)} renders what Kubernetes' models do not know: {e.Message}", e);
            }
        }

        private static async Task<Dictionary<string, bool>> FlagsAsync(string command)
        {
            var help = await CliProcess.RunSkiffAsync(Workspace.RepositoryRoot, Path.GetTempPath(), command, "--help");
            help.ExitCode.ShouldBe(0, help.ToString());
            var flags = new Dictionary<string, bool>();
            foreach (Match option in HelpOption().Matches(help.Stdout))
            {
                foreach (var name in option.Groups["names"].Value.Split(", "))
                {
                    flags[name] = option.Groups["value"].Success;
                }
            }

            flags.ShouldContainKey("--help", $"the help of `skiff {command}` no longer reads as expected:\n{help.Stdout}");
            return flags;
        }

        /// <summary>An option row of System.CommandLine's help: <c>  -?, -h, --help</c>, <c>  --port &lt;port&gt;</c>.</summary>
        [GeneratedRegex(@"^  (?<names>-[^\s,<]+(?:, -[^\s,<]+)*)(?<value> <[^>]+>)?", RegexOptions.Multiline)]
        private static partial Regex HelpOption();
    }
}

/// <summary>
/// KEDA's ScaledObject (keda.sh/v1alpha1), the fields the manifests use, so that it is read as strictly as the built-in
/// kinds: a misspelled field fails the render's check. KubernetesClient has no model for it (it is a custom resource).
/// </summary>
public sealed class KedaScaledObject : IKubernetesObject<V1ObjectMeta>
{
    public static readonly Dictionary<string, Type> TypeMap = new() { ["keda.sh/v1alpha1/ScaledObject"] = typeof(KedaScaledObject) };

    [System.Text.Json.Serialization.JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [System.Text.Json.Serialization.JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [System.Text.Json.Serialization.JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [System.Text.Json.Serialization.JsonPropertyName("spec")]
    public ScaledObjectSpec Spec { get; set; } = new();

    public sealed class ScaledObjectSpec
    {
        [System.Text.Json.Serialization.JsonPropertyName("scaleTargetRef")]
        public TargetReference ScaleTargetRef { get; set; } = new();

        [System.Text.Json.Serialization.JsonPropertyName("minReplicaCount")]
        public int? MinReplicaCount { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("maxReplicaCount")]
        public int? MaxReplicaCount { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("pollingInterval")]
        public int? PollingInterval { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("cooldownPeriod")]
        public int? CooldownPeriod { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("triggers")]
        public List<Trigger> Triggers { get; set; } = [];
    }

    public sealed class TargetReference
    {
        [System.Text.Json.Serialization.JsonPropertyName("apiVersion")]
        public string? ApiVersion { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("kind")]
        public string? Kind { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("name")]
        public string Name { get; set; } = "";
    }

    public sealed class Trigger
    {
        [System.Text.Json.Serialization.JsonPropertyName("type")]
        public string Type { get; set; } = "";

        [System.Text.Json.Serialization.JsonPropertyName("metadata")]
        public Dictionary<string, string> Metadata { get; set; } = [];
    }
}
