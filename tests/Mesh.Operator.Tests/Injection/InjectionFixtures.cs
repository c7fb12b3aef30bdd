using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Mesh.Operator.Injection;

namespace Mesh.Operator.Tests.Injection;

/// <summary>Settings, pods and files shared by the injection tests.</summary>
internal static class InjectionFixtures
{
    public const string LoginServer = "http://mesh-coordinator.mesh-system.svc:8080";
    public const string Image = "meshoperator/mesh-sidecar:test";

    public static InjectionSettings Settings => new()
    {
        Network = new MeshNetworkTarget("default", new Uri(LoginServer), "mesh-authkey"),
        Image = Image,
        ClusterDns = [IPAddress.Parse("10.96.0.10")],
    };

    public static SidecarInjector Injector(InjectionSettings? settings = null) => new(settings ?? Settings);

    /// <summary>The arguments `mesh-operator inject` gets in the golden tests (the same settings as <see cref="Settings"/>).</summary>
    public static string[] CliArguments(string file) =>
        ["inject", "-f", file, "--login-server", LoginServer, "--cluster-dns", "10.96.0.10", "--image", Image];

    /// <summary>A pod template from YAML (metadata and spec).</summary>
    public static V1PodTemplateSpec Pod(string yaml) => KubernetesYaml.Deserialize<V1PodTemplateSpec>(yaml);

    /// <summary>A minimal pod with one container and the given annotations.</summary>
    public static V1PodTemplateSpec Pod(params (string Name, string Value)[] annotations) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "web-1",
            Annotations = annotations.Length == 0 ? null : annotations.ToDictionary(a => a.Name, a => a.Value),
        },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "web", Image = "nginx:1.27" }] },
    };

    public static PodContext Context(string? ns = "shop", bool namespaceEnabled = true) => new(ns, namespaceEnabled);

    public static V1Container Sidecar(InjectionResult result) =>
        Assert.Single(result.Pod.Spec.InitContainers, c => c.Name == SidecarTemplate.ContainerName);

    public static Dictionary<string, V1EnvVar> Env(InjectionResult result) => Sidecar(result).Env.ToDictionary(e => e.Name);

    public static string JsonOf(V1PodTemplateSpec pod) => SidecarInjector.ToJson(pod).ToJsonString();

    public static bool JsonEquals(JsonNode? a, JsonNode? b) => JsonNode.DeepEquals(a, b);

    /// <summary>This test project's source folder (golden files are read from, and rewritten into, the source tree).</summary>
    public static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    public static string TestData => Path.Combine(SourceDirectory(), "TestData");

    public static string RepositoryRoot => Path.GetFullPath(Path.Combine(SourceDirectory(), "..", "..", ".."));
}
