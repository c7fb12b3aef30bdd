using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Mesh.Policy;

namespace Mesh.Benchmarks;

/// <summary>
/// The policy engine (Mesh.Policy) on the synthetic 10,000-node, 1,001-rule policy of
/// tests/Mesh.Policy.Tests/PolicyPerformanceTests.cs (same generator, same seed): the compile the coordinator runs
/// on every node, tag, route or policy change, and that compile followed by what the coordinator then asks for
/// each connected node (here 1,000: every tenth), its filter and its peers. Target: compile at most 1 s.
/// </summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private const int Nodes = 10_000;
    private const int Rules = 1_000;

    private string _policy = null!;
    private PolicyTopology _topology = null!;
    private string[] _connected = null!;

    [GlobalSetup]
    public void Setup()
    {
        (_policy, _topology) = Synthetic();
        _connected = [.. _topology.Nodes.Where(static (_, i) => i % 10 == 0).Select(static n => n.Name)];
    }

    [Benchmark]
    public ICompiledPolicy Compile() => PolicyEngine.Compile(_policy, _topology);

    [Benchmark]
    public long CompileThenConnectedNodes()
    {
        var compiled = PolicyEngine.Compile(_policy, _topology);
        var total = 0L;
        foreach (var name in _connected)
        {
            total += (compiled.FilterFor(name)?.Count ?? 0) + compiled.PeersOf(name).Count;
        }

        return total;
    }

    // A copy of PolicyPerformanceTests.Synthetic (the test project cannot be referenced from here); keep them equal.
    private static (string Policy, PolicyTopology Topology) Synthetic()
    {
        const int users = 500, tags = 100, nodes = Nodes, rules = Rules;
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
        return (sb.ToString(), new PolicyTopology(userList, nodeList));

    }
}
