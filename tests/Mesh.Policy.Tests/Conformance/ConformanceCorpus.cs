using System.Text.Json;

namespace Mesh.Policy.Tests.Conformance;

/// <summary>One recorded case of ../shared/conformance/tailscale-policy (see its README.md).</summary>
internal sealed record ConformanceCase(
    string Id,
    string Folder,
    string PolicyText,
    bool ExpectError,
    string? ErrorMessage,
    PolicyTopology Topology,
    IReadOnlyDictionary<string, List<CanonRule>?> Expected);

/// <summary>
/// Finds and loads the corpus. CI clones the repository and copies shared/ beside it, so the corpus is at
/// &lt;repo root&gt;/../shared/conformance/tailscale-policy; MESH_POLICY_CORPUS overrides that for worktrees.
/// </summary>
internal static class ConformanceCorpus
{
    private static readonly Lazy<(string? Dir, string Looked)> Location = new(Locate);
    private static readonly Dictionary<string, ConformanceCase> Cache = [];
    private static readonly Lock CacheLock = new();

    public static string? Directory => Location.Value.Dir;

    public static string WhereLooked => Location.Value.Looked;

    private static (string?, string) Locate()
    {
        var env = Environment.GetEnvironmentVariable("MESH_POLICY_CORPUS");
        if (!string.IsNullOrEmpty(env))
        {
            return (System.IO.Directory.Exists(env) ? env : null, env + " (from MESH_POLICY_CORPUS)");
        }

        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MeshOperator.sln")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            return (null, $"no MeshOperator.sln above {AppContext.BaseDirectory}");
        }

        var corpus = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "conformance", "tailscale-policy"));
        return (System.IO.Directory.Exists(corpus) ? corpus : null, corpus);
    }

    /// <summary>Case ids of one folder, sorted; empty when the corpus is absent.</summary>
    public static IEnumerable<string> CaseIds(string folder)
    {
        if (Directory is null || !System.IO.Directory.Exists(Path.Combine(Directory, folder)))
        {
            return [];
        }

        return System.IO.Directory.GetFiles(Path.Combine(Directory, folder), "*.json")
            .Select(Path.GetFileNameWithoutExtension)
            .Order(StringComparer.Ordinal)!;
    }

    public static ConformanceCase Load(string folder, string id)
    {
        var path = Path.Combine(Directory!, folder, id + ".json");
        lock (CacheLock)
        {
            if (Cache.TryGetValue(path, out var c))
            {
                return c;
            }
        }

        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        var expected = new Dictionary<string, List<CanonRule>?>(StringComparer.Ordinal);
        if (root.TryGetProperty("expectedPacketFilter", out var filters) && filters.ValueKind == JsonValueKind.Object)
        {
            foreach (var node in filters.EnumerateObject())
            {
                expected[node.Name] = node.Value.ValueKind == JsonValueKind.Array
                    ? [.. node.Value.EnumerateArray().Select(CanonRule.FromJson)]
                    : null;
            }
        }

        string? message = null;
        if (root.TryGetProperty("apiResponse", out var api) && api.TryGetProperty("body", out var body)
            && body.TryGetProperty("message", out var m))
        {
            message = m.GetString();
        }

        var loaded = new ConformanceCase(
            root.GetProperty("id").GetString()!,
            folder,
            root.GetProperty("policy").GetRawText(),
            root.TryGetProperty("expectError", out var ee) && ee.ValueKind == JsonValueKind.True,
            message,
            PolicyJson.ParseTopology(root.GetProperty("topology").GetRawText()),
            expected);
        lock (CacheLock)
        {
            Cache[path] = loaded;
        }

        return loaded;
    }
}
