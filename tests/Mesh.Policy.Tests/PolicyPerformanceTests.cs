using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Mesh.Policy.Tests;

/// <summary>
/// Prints how long a synthetic 10,000-node, 1,000-rule compile takes (target ≤ 1 s in Release; not asserted), and
/// then the first FilterFor and PeersOf for 1,000 of the nodes (what the coordinator asks after each recompile).
/// </summary>
public sealed class PolicyPerformanceTests
{
    [Fact]
    public void Compile_10kNodes1kRules_PrintsTime()
    {
        const int users = 500, tags = 100, nodes = 10_000, rules = 1_000;
        var random = new Random(42);
        var userList = Enumerable.Range(0, users).Select(i => new PolicyUser(i, $"u{i}", $"u{i}@example.com")).ToList();
        var nodeList = new List<PolicyNode>(nodes);
        for (var i = 0; i < nodes; i++)
        {
            var a = 64 + (i >> 16);
            var v4 = string.Create(CultureInfo.InvariantCulture, $"100.{a}.{(i >> 8) & 0xFF}.{i & 0xFF}");
            var v6 = string.Create(CultureInfo.InvariantCulture, $"fd7a:115c:a1e0::{i:x}");
            var routes = i % 500 == 0 ? new[] { string.Create(CultureInfo.InvariantCulture, $"10.{i / 500}.0.0/16") } : [];
            nodeList.Add(i % 3 == 0
                ? new PolicyNode($"n{i}", null, [$"tag:t{random.Next(tags)}"], v4, v6, routes, routes)
                : new PolicyNode($"n{i}", $"u{random.Next(users)}", [], v4, v6, [], []));
        }

        var sb = new StringBuilder("{\"groups\": {");
        for (var g = 0; g < 50; g++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\"group:g{g}\": [{string.Join(",", Enumerable.Range(0, 20).Select(_ => $"\"u{random.Next(users)}@example.com\""))}],");
        }

        sb.Append("}, \"tagOwners\": {");
        for (var t = 0; t < tags; t++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\"tag:t{t}\": [\"group:g0\"],");
        }

        sb.Append("}, \"acls\": [");
        string Selector() => random.Next(4) switch
        {
            0 => $"group:g{random.Next(50)}",
            1 => $"tag:t{random.Next(tags)}",
            2 => $"u{random.Next(users)}@example.com",
            _ => "autogroup:member",
        };
        for (var r = 0; r < rules; r++)
        {
            var dst = random.Next(10) == 0 ? $"10.{random.Next(20)}.0.0/16:22" : $"{Selector()}:{random.Next(1, 1000)}";
            sb.Append(CultureInfo.InvariantCulture, $"{{\"action\": \"accept\", \"src\": [\"{Selector()}\"], \"dst\": [\"{dst}\"]}},");
        }

        sb.Append("{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"autogroup:self:*\"]}]}");
        var topology = new PolicyTopology(userList, nodeList);
        var policy = sb.ToString();

        PolicyEngine.Compile(policy, topology); // warm-up (JIT)
        var sw = Stopwatch.StartNew();
        var compiled = PolicyEngine.Compile(policy, topology);
        var compile = sw.Elapsed;

        // What the coordinator does after a recompile: filter and peers for each connected node (here every tenth).
        var connected = nodeList.Where(static (_, i) => i % 10 == 0).Select(static n => n.Name).ToList();
        sw.Restart();
        var total = 0;
        foreach (var name in connected)
        {
            total += compiled.FilterFor(name)?.Count ?? 0;
        }

        var filters = sw.Elapsed;
        sw.Restart();
        var peers = 0L;
        foreach (var name in connected)
        {
            peers += compiled.PeersOf(name).Count;
        }

        var peerTime = sw.Elapsed;
        sw.Restart();
        var cached = 0;
        foreach (var name in connected)
        {
            cached += compiled.FilterFor(name)?.Count ?? 0;
        }

        var again = sw.Elapsed;
        TestContext.Current.TestOutputHelper!.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"compile {nodes} nodes x {rules + 1} rules: {compile.TotalMilliseconds:F0} ms; " +
            $"first FilterFor x{connected.Count}: {filters.TotalMilliseconds:F0} ms ({total} filter rules); " +
            $"first PeersOf x{connected.Count}: {peerTime.TotalMilliseconds:F0} ms ({peers} peers); " +
            $"cached FilterFor x{connected.Count}: {again.TotalMilliseconds:F1} ms"));
        Assert.Equal(total, cached);
        Assert.True(total > 0);
    }
}
