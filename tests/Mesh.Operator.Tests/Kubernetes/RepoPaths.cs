namespace Mesh.Operator.Tests.Kubernetes;

/// <summary>Folders of the repository the tests read: found by walking up from the test binary to MeshOperator.sln.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> RootDir = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MeshOperator.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"no MeshOperator.sln above {AppContext.BaseDirectory}");
    });

    public static string Root => RootDir.Value;

    public static string Crds => Path.Combine(Root, "crds");

    public static string KubernetesExamples => Path.Combine(Root, "examples", "kubernetes");

    /// <summary>
    /// ../shared/conformance/tailscale-policy beside the repository (as CI lays it out), or MESH_POLICY_CORPUS;
    /// null when neither exists.
    /// </summary>
    public static string? PolicyCorpus
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("MESH_POLICY_CORPUS");
            var dir = !string.IsNullOrEmpty(env) ? env : Path.GetFullPath(Path.Combine(Root, "..", "shared", "conformance", "tailscale-policy"));
            return Directory.Exists(dir) ? dir : null;
        }
    }
}
