using BenchmarkDotNet.Attributes;
using Mesh.Policy;
using Mesh.Policy.Synthetic;

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

    private static (string Policy, PolicyTopology Topology) Synthetic() => SyntheticPolicy.Create(Nodes, Rules);
}
