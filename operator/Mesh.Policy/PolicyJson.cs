using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mesh.Policy;

/// <summary>
/// JSON forms at the engine's edge: the topology as the conformance corpus writes it
/// (<c>{"users": [{"id", "name", "email"}], "nodes": {"name": {"hostname", "user", "tags", "ipv4", "ipv6",
/// "routable_ips", "approved_routes"}}}</c>) and packet filters as Tailscale sends them
/// (<c>{"node": [FilterRule, ...] | null}</c>). Text in, text out: the caller does the I/O.
/// </summary>
public static class PolicyJson
{
    private static readonly JsonDocumentOptions Lenient = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    private static readonly JsonSerializerOptions Output = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Reads a topology. Node names are the keys of "nodes" (falling back to "hostname").</summary>
    /// <exception cref="PolicyException">The text is not a topology.</exception>
    public static PolicyTopology ParseTopology(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var doc = JsonDocument.Parse(json, Lenient);
            return ReadTopology(doc.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new PolicyException($"topology: {e.Message}", e);
        }
    }

    internal static PolicyTopology ReadTopology(JsonElement root)
    {
        var users = new List<PolicyUser>();
        if (root.TryGetProperty("users", out var us) && us.ValueKind == JsonValueKind.Array)
        {
            foreach (var u in us.EnumerateArray())
            {
                users.Add(new PolicyUser(
                    u.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number ? id.GetInt64() : 0,
                    Str(u, "name") ?? throw new PolicyException("topology: a user has no \"name\""),
                    Str(u, "email")));
            }
        }

        var nodes = new List<PolicyNode>();
        if (root.TryGetProperty("nodes", out var ns))
        {
            IEnumerable<(string? Key, JsonElement Value)> items = ns.ValueKind switch
            {
                JsonValueKind.Object => ns.EnumerateObject().Select(static p => ((string?)p.Name, p.Value)),
                JsonValueKind.Array => ns.EnumerateArray().Select(static e => ((string?)null, e)),
                _ => [],
            };
            foreach (var (key, n) in items)
            {
                var name = key ?? Str(n, "name") ?? Str(n, "hostname") ?? throw new PolicyException("topology: a node has no name");
                nodes.Add(new PolicyNode(
                    name,
                    Str(n, "user"),
                    Strs(n, "tags"),
                    Str(n, "ipv4"),
                    Str(n, "ipv6"),
                    Strs(n, "routable_ips"),
                    Strs(n, "approved_routes")));
            }
        }

        return new PolicyTopology(users, nodes);
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string[] Strs(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? [.. v.EnumerateArray().Where(static x => x.ValueKind == JsonValueKind.String).Select(static x => x.GetString()!)]
            : [];

    /// <summary>Every node's packet filter, keyed by node name in topology order; null for a node that accepts nothing.</summary>
    public static string SerializeFilters(ICompiledPolicy policy, PolicyTopology topology)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(topology);
        var root = new JsonObject();
        foreach (var node in topology.Nodes)
        {
            var filter = policy.FilterFor(node.Name);
            root[node.Name] = filter is null ? null : JsonSerializer.SerializeToNode(filter, Output);
        }

        return root.ToJsonString(Output);
    }

    /// <summary>
    /// What <c>mesh-operator policy compile</c> prints: the policy compiled against the topology, every node's filter.
    /// </summary>
    /// <exception cref="PolicyException">The policy or the topology is invalid, or a policy test fails.</exception>
    public static string CompileToJson(string policyText, string topologyJson)
    {
        var topology = ParseTopology(topologyJson);
        return SerializeFilters(PolicyEngine.Compile(policyText, topology), topology);
    }
}
