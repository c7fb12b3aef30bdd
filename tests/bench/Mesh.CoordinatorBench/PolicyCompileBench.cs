using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Control.State;
using Mesh.Policy;

namespace Mesh.CoordinatorBench;

/// <summary>
/// Phase 5, in this process: <see cref="PolicyEngine.Compile"/> of a synthetic policy with
/// <c>rules</c> rules (users, groups, tags and CIDRs as sources and destinations, each on its own
/// port) against a synthetic topology of <c>nodes</c> nodes, one in five tagged. Also the
/// allow-all default against the same nodes (what the coordinator pays on every registration) and
/// <see cref="ICompiledPolicy.PeersOf"/> for a sample of nodes (what the map pusher pays per
/// streaming node after each compile, since peer lists are computed lazily).
/// </summary>
internal static class PolicyCompileBench
{
    private const int Users = 100;
    private const int Tags = 50;
    private const int Groups = 20;
    private const int PeersSample = 200;

    public static void Run(int nodes, int rules, Figures figures)
    {
        var topology = Topology(nodes);
        var policy = Policy(rules);
        const string phase = "5 compile";

        var cold = Time(() => PolicyEngine.Compile(policy, topology, runTests: false), out _);
        var warm = Enumerable.Range(0, 3).Select(_ => Time(() => PolicyEngine.Compile(policy, topology, runTests: false), out ICompiledPolicy _)).Order().ToArray();
        figures.Add(phase, $"{rules} rules x {nodes} nodes: compile (cold / warm median)", $"{Figures.Ms(cold)} / {Figures.Ms(warm[1])}  (target <= 1 s)");

        var compiled = PolicyEngine.Compile(policy, topology, runTests: false);
        var filters = Time(() => topology.Nodes.Sum(n => compiled.FilterFor(n.Name)?.Count ?? 0), out var filterRules);
        figures.Add(phase, "FilterFor every node (after compile)", $"{Figures.Ms(filters)}  ({filterRules / (double)nodes:F1} rules per node)");

        var sample = Math.Min(PeersSample, nodes);
        var peers = Time(() => Enumerable.Range(0, sample).Sum(i => compiled.PeersOf(topology.Nodes[i * (nodes / sample)].Name).Count), out var peerCount);
        figures.Add(phase, $"PeersOf, per node (sample of {sample})", $"{Figures.Ms(peers / sample)}  ({peerCount / (double)sample:F0} peers each; x1000 streams = {Figures.Ms(peers / sample * 1000)})");

        Time(() => PolicyEngine.Compile(MeshState.DefaultPolicy, topology, runTests: false), out _);
        var allowAll = Enumerable.Range(0, 3).Select(_ => Time(() => PolicyEngine.Compile(MeshState.DefaultPolicy, topology, runTests: false), out ICompiledPolicy _)).Order().ToArray();
        figures.Add(phase, $"allow-all x {nodes} nodes: compile (warm median)", Figures.Ms(allowAll[1]));
    }

    private static double Time<T>(Func<T> work, out T result)
    {
        var start = Stopwatch.GetTimestamp();
        result = work();
        return Figures.Since(start);
    }

    private static PolicyTopology Topology(int nodes)
    {
        var users = Enumerable.Range(0, Users).Select(u => new PolicyUser(u + 1, $"user{u}", $"user{u}@example.com")).ToList();
        var list = new List<PolicyNode>(nodes);
        for (var i = 0; i < nodes; i++)
        {
            var n = i + 1;
            var tags = i % 5 == 0 ? new[] { $"tag:t{i % Tags}" } : [];
            list.Add(new PolicyNode(
                $"node{i}",
                $"user{i % Users}",
                tags,
                $"100.64.{n >> 8 & 0xff}.{n & 0xff}",
                $"fd7a:115c:a1e0::{n:x}",
                [],
                []));
        }

        return new PolicyTopology(users, list);
    }

    private static string Policy(int rules)
    {
        var text = new StringBuilder();
        text.Append("{\n\"groups\": {");
        for (var g = 0; g < Groups; g++)
        {
            var members = string.Join(", ", Enumerable.Range(0, 5).Select(k => $"\"user{(g * 5 + k) % Users}@example.com\""));
            text.Append(CultureInfo.InvariantCulture, $"{(g > 0 ? "," : string.Empty)}\n  \"group:g{g}\": [{members}]");
        }

        text.Append("},\n\"tagOwners\": {");
        for (var t = 0; t < Tags; t++)
        {
            text.Append(CultureInfo.InvariantCulture, $"{(t > 0 ? "," : string.Empty)}\n  \"tag:t{t}\": [\"user0@example.com\"]");
        }

        text.Append("},\n\"acls\": [");
        for (var r = 0; r < rules; r++)
        {
            var port = 1000 + r;
            var (src, dst) = (r % 4) switch
            {
                0 => ($"user{r % Users}@example.com", $"tag:t{r % Tags}:{port}"),
                1 => ($"group:g{r % Groups}", $"user{r * 7 % Users}@example.com:{port}"),
                2 => ($"tag:t{r % Tags}", $"tag:t{(r + 1) % Tags}:{port},{port + 1}"),
                _ => ($"user{r % Users}@example.com", $"100.64.{r % 40}.0/24:{port}"),
            };
            text.Append(CultureInfo.InvariantCulture, $"{(r > 0 ? "," : string.Empty)}\n  {{\"action\": \"accept\", \"src\": [\"{src}\"], \"dst\": [\"{dst}\"]}}");
        }

        text.Append("\n]\n}\n");
        return text.ToString();
    }
}
