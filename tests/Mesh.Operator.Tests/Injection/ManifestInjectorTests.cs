using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Mesh.Operator.Injection;
using YamlDotNet.RepresentationModel;
using static Mesh.Operator.Tests.Injection.InjectionFixtures;

namespace Mesh.Operator.Tests.Injection;

/// <summary>
/// `mesh-operator inject` on manifests: golden files for every workload kind (TestData/NAME.in.yaml →
/// NAME.golden.yaml; MESH_UPDATE_GOLDEN=1 rewrites the golden files, to be reviewed in the diff),
/// pass-through, and the errors for malformed documents.
/// </summary>
public sealed class ManifestInjectorTests
{
    public static TheoryData<string> GoldenCases => [.. Directory.GetFiles(TestData, "*.in.yaml").Select(f => Path.GetFileName(f)[..^".in.yaml".Length]).Order(StringComparer.Ordinal)];

    [Fact]
    public void GoldenCases_CoverEveryWorkloadKind()
    {
        Assert.Superset(
            new HashSet<string>(["pod", "deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob", "multi"]),
            new HashSet<string>(GoldenCases.Select(c => c.Data)));
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Inject_Golden(string name)
    {
        var input = File.ReadAllText(Path.Combine(TestData, name + ".in.yaml"));
        var result = Inject(input);
        Assert.True(result.Errors.Count == 0, string.Join('\n', result.Errors));
        var goldenPath = Path.Combine(TestData, name + ".golden.yaml");
        if (Environment.GetEnvironmentVariable("MESH_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(goldenPath, result.Output);
        }

        Assert.Equal(File.ReadAllText(goldenPath), result.Output);
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Inject_GoldenOutputAgain_ByteForByteTheSame(string name)
    {
        var once = Inject(File.ReadAllText(Path.Combine(TestData, name + ".in.yaml"))).Output;
        var twice = Inject(once);
        Assert.Empty(twice.Errors);
        Assert.Equal(0, twice.Injected);
        Assert.Equal(once, twice.Output);
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Inject_GoldenOutput_ReadsBackAsTypedKubernetesObjects(string name)
    {
        var output = Inject(File.ReadAllText(Path.Combine(TestData, name + ".in.yaml"))).Output;
        foreach (var document in ManifestDocuments.Split(output).Where(d => !d.IsBlank))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(document.Text));
            if (stream.Documents.Count == 0 || YamlJson.ToJson(stream.Documents[0].RootNode) is not JsonObject obj)
            {
                continue;
            }

            foreach (var template in Templates(obj))
            {
                // The typed model (what the API server's schema would accept) reads every injected template.
                var pod = KubernetesJson.Deserialize<V1PodTemplateSpec>(template);
                if (SidecarInjector.IsInjected(pod) && pod.Metadata.Annotations?.ContainsKey(MeshAnnotations.Status) == true)
                {
                    Assert.Equal("mesh-sidecar", pod.Spec.InitContainers[0].Name);
                    Assert.Equal("Always", pod.Spec.InitContainers[0].RestartPolicy);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Inject_Golden_PatchAppliedToTheManifestEqualsTheInjectorsPod(string name)
    {
        // For every template: the injector's typed result, and its patch applied to the raw manifest
        // (which may hold fields the typed model drops), agree on everything the model knows.
        var input = File.ReadAllText(Path.Combine(TestData, name + ".in.yaml"));
        foreach (var document in ManifestDocuments.Split(input).Where(d => !d.IsBlank))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(document.Text));
            if (stream.Documents.Count == 0 || YamlJson.ToJson(stream.Documents[0].RootNode) is not JsonObject obj)
            {
                continue;
            }

            foreach (var template in Templates(obj))
            {
                var pod = KubernetesJson.Deserialize<V1PodTemplateSpec>(template);
                var ns = (obj["metadata"]?["namespace"])?.GetValue<string>();
                var result = Injector().Inject(pod, new PodContext(ns, NamespaceInjectionEnabled: true));
                if (result.Outcome != InjectionOutcome.Injected)
                {
                    continue;
                }

                var rawPatched = JsonPatch.Apply(template, result.Patch)!;
                var typedPatched = JsonPatch.Apply(SidecarInjector.ToJson(pod), result.Patch);
                Assert.True(JsonEquals(SidecarInjector.ToJson(result.Pod), typedPatched), $"{name}: typed");
                Assert.True(JsonEquals(SidecarInjector.ToJson(result.Pod), SidecarInjector.ToJson(KubernetesJson.Deserialize<V1PodTemplateSpec>(rawPatched))), $"{name}: raw");
            }
        }
    }

    [Fact]
    public void Inject_Multi_EveryOtherDocumentPassesThroughVerbatimInOrder()
    {
        var input = File.ReadAllText(Path.Combine(TestData, "multi.in.yaml"));
        var result = Inject(input);
        var inputs = ManifestDocuments.Split(input).Where(c => !c.IsBlank).Select(c => c.Text).ToList();
        var outputs = ManifestDocuments.Split(result.Output).Where(c => !c.IsBlank).Select(c => c.Text).ToList();
        Assert.Equal(inputs.Count, outputs.Count);
        Assert.Equal(2, result.Injected);

        // ConfigMap, opted-out Deployment, another group's "Deployment", ReplicationController (injected),
        // hostNetwork DaemonSet, List (one of its items injected), the comment.
        bool[] injected = [false, false, false, false, true, false, true, false];
        for (var i = 0; i < inputs.Count; i++)
        {
            if (injected[i])
            {
                Assert.NotEqual(inputs[i], outputs[i]);
                Assert.Contains("mesh-sidecar", outputs[i], StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal(inputs[i], outputs[i]);
            }
        }

        Assert.Contains(result.Warnings, w => w.StartsWith("document 5 (DaemonSet kube-system/node-agent)", StringComparison.Ordinal) && w.Contains("hostNetwork", StringComparison.Ordinal));
    }

    [Fact]
    public void Inject_OptedOutEverywhere_OutputIsTheInput()
    {
        const string input = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: a   # mine
              annotations: {mesh.meshoperator.io/inject: "false"}
            spec:
              containers: [{name: a, image: x}]
            """;
        var result = Inject(input + "\n");
        Assert.Equal(input + "\n", result.Output);
    }

    [Fact]
    public void Inject_UnknownFieldsAndYamlScalars_Preserved()
    {
        var result = Inject("""
            apiVersion: v1
            kind: Pod
            metadata: {name: a, namespace: x}
            spec:
              containers:
              - name: a
                image: x
                env: [{name: A, value: "on"}, {name: B, value: "007"}, {name: C, value: "1.10"}]
                someFutureField: {nested: [1, 2]}
              futurePodField: true
            """);
        Assert.Empty(result.Errors);
        var pod = KubernetesYaml.Deserialize<V1Pod>(result.Output);
        Assert.Equal(["on", "007", "1.10"], pod.Spec.Containers[0].Env.Select(e => e.Value));
        Assert.Contains("someFutureField:\n      nested:\n      - 1\n      - 2\n", result.Output, StringComparison.Ordinal);
        Assert.Contains("futurePodField: true\n", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Inject_NamespaceFromTheDocumentElseTheDefault()
    {
        const string pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: a, image: x}]\n";
        var withDefault = new ManifestInjector(Injector(), "fallback").Inject(pod);
        Assert.Contains("- fallback.svc.cluster.local\n", withDefault.Output, StringComparison.Ordinal);
        var own = new ManifestInjector(Injector(), "fallback").Inject(pod.Replace("{name: a}", "{name: a, namespace: mine}", StringComparison.Ordinal));
        Assert.Contains("- mine.svc.cluster.local\n", own.Output, StringComparison.Ordinal);
        var none = new ManifestInjector(Injector(), null).Inject(pod);
        Assert.Equal(["document 1 (Pod a): dnsPolicy ClusterFirst: the pod's namespace is needed for its DNS search list (set metadata.namespace or pass --namespace)"], none.Errors);
    }

    [Theory]
    [InlineData("apiVersion: v1\nkind: ConfigMap\ndata: {a: [b\n", "document 2: line 9, column 1: ")]
    [InlineData("kind: Pod\nmetadata: {name: p}\n", "document 2 (Pod p): needs string fields apiVersion and kind")]
    [InlineData("- just\n- a list\n", "document 2 (line 5): is a list, not a Kubernetes object")]
    [InlineData("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 1}\n", "document 2 (Deployment shop/web): spec.template is missing or not a mapping")]
    [InlineData("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {}}}\n", "document 2 (CronJob c): spec.jobTemplate.spec.template is missing or not a mapping")]
    [InlineData("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: x, ports: [{containerPort: eighty}]}]\n", "document 2 (StatefulSet db): spec.template: not a pod template: ")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: x\n  annotations: {mesh.meshoperator.io/exit-node: maybe}\nspec: {containers: [{name: a, image: x}]}\n", "document 2 (Pod x/p): mesh.meshoperator.io/exit-node: \"maybe\"")]
    [InlineData("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\na: 1\na: 2\n", "document 2: line 10, column 1: ")]
    [InlineData("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {a: .inf}\n", "document 2: line 9, column 11: \".inf\" is not a number JSON can hold")]
    public void Inject_MalformedDocument_ErrorNamesItAndNothingIsPrinted(string broken, string expected)
    {
        var input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n# the second document\n" + broken + "---\napiVersion: v1\nkind: Service\nmetadata: {name: after}\n";
        var result = Inject(input);
        Assert.Equal("", result.Output);
        var error = Assert.Single(result.Errors);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Inject_SeveralBrokenDocuments_EveryOneReported()
    {
        var result = Inject("kind: A\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team, annotations: {mesh.meshoperator.io/hostname: Web_1}}\nspec: {containers: [{name: a, image: x}]}\n---\n[1, 2\n");
        Assert.Equal(3, result.Errors.Count);
        Assert.StartsWith("document 1", result.Errors[0], StringComparison.Ordinal);
        Assert.StartsWith("document 2 (Pod team/p): mesh.meshoperator.io/hostname", result.Errors[1], StringComparison.Ordinal);
        Assert.StartsWith("document 3: line 9", result.Errors[2], StringComparison.Ordinal);
    }

    [Fact]
    public void Inject_ListItemBroken_ErrorNamesTheItem()
    {
        var result = Inject("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n  spec: {}\n");
        Assert.Equal(["document 1 (List), item 2 (Deployment d): spec.template is missing or not a mapping"], result.Errors);
    }

    [Fact]
    public void Inject_MergeKeysAndAliases_Expanded()
    {
        var result = Inject("""
            apiVersion: v1
            kind: Pod
            metadata: {name: p, namespace: team}
            spec:
              containers:
              - &base {name: a, image: x, imagePullPolicy: Always}
              - <<: *base
                name: b
            """);
        Assert.Empty(result.Errors);
        var pod = KubernetesYaml.Deserialize<V1Pod>(result.Output);
        Assert.Equal([("a", "Always"), ("b", "Always")], pod.Spec.Containers.Select(c => (c.Name, c.ImagePullPolicy)));
    }

    private static ManifestResult Inject(string yaml) => new ManifestInjector(Injector(), null).Inject(yaml);

    /// <summary>The pod templates of an object as the injector finds them (test-side, by kind).</summary>
    private static IEnumerable<JsonObject> Templates(JsonObject obj)
    {
        var kind = obj["kind"]?.GetValue<string>();
        if (obj["items"] is JsonArray items)
        {
            foreach (var item in items.OfType<JsonObject>().SelectMany(Templates))
            {
                yield return item;
            }
        }
        else if (kind == "Pod")
        {
            yield return obj;
        }
        else if (kind == "CronJob" && obj["spec"]?["jobTemplate"]?["spec"]?["template"] is JsonObject cron)
        {
            yield return cron;
        }
        else if (obj["apiVersion"]?.GetValue<string>() is "apps/v1" or "batch/v1" or "v1" && obj["spec"]?["template"] is JsonObject template)
        {
            yield return template;
        }
    }
}
