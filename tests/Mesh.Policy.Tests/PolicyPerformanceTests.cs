using System.Diagnostics;
using System.Globalization;
using Mesh.Policy.Synthetic;

namespace Mesh.Policy.Tests;

/// <summary>
/// Prints how long a synthetic 10,000-node, 1,000-rule compile takes (target ≤ 1 s in Release; not asserted), and
/// then the first FilterFor and PeersOf for 1,000 of the nodes (what the coordinator asks after each recompile).
/// Best of three runs, each on a fresh compile; wall time and process CPU time, since the build machine is shared
/// and wall time alone swings with its load.
/// </summary>
[Collection(nameof(PolicyPerformanceTests))]
public sealed class PolicyPerformanceTests
{
    public const int Nodes = 10_000;
    public const int Rules = 1_000;

    [Fact]
    public void Compile_10kNodes1kRules_PrintsTime()
    {
        var (policy, topology) = Synthetic();
        PolicyEngine.Compile(policy, topology); // warm-up (JIT)

        // What the coordinator does after a recompile: filter and peers for each connected node (here every tenth).
        var connected = topology.Nodes.Where(static (_, i) => i % 10 == 0).Select(static n => n.Name).ToList();
        var best = new Timing[4];
        var total = 0;
        var peers = 0L;
        for (var run = 0; run < 3; run++)
        {
            ICompiledPolicy compiled = null!;
            Keep(ref best[0], Measure(() => compiled = PolicyEngine.Compile(policy, topology)));
            Keep(ref best[1], Measure(() => total = connected.Sum(n => compiled.FilterFor(n)?.Count ?? 0)));
            Keep(ref best[2], Measure(() => peers = connected.Sum(n => (long)compiled.PeersOf(n).Count)));
            var cached = 0;
            Keep(ref best[3], Measure(() => cached = connected.Sum(n => compiled.FilterFor(n)?.Count ?? 0)));
            Assert.Equal(total, cached);
        }

        TestContext.Current.TestOutputHelper!.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"compile {Nodes} nodes x {Rules + 1} rules: {best[0]}; " +
            $"first FilterFor x{connected.Count}: {best[1]} ({total} filter rules); " +
            $"first PeersOf x{connected.Count}: {best[2]} ({peers} peers); " +
            $"cached FilterFor x{connected.Count}: {best[3]}"));
        Assert.True(total > 0);
    }

    /// <summary>
    /// The same policy with 100 via grants to the routers' subnets (10% of the rules): compile, then what the
    /// coordinator asks in addition for each connected node, its via route steering (ViaRoutesFor) and, for the
    /// routers, the routes via grants send through them (ViaServedRoutes).
    /// </summary>
    [Fact]
    public void CompileWithVia_10kNodes1kRules_PrintsTime()
    {
        var (policy, topology) = Synthetic();
        var random = new Random(7);
        var routerTags = topology.Nodes.Where(static n => n.ApprovedRoutes.Count > 0).Select(static n => n.Tags[0]).ToList();
        var grants = string.Join(",", Enumerable.Range(0, 100).Select(_ => string.Create(CultureInfo.InvariantCulture,
            $"{{\"src\": [\"group:g{random.Next(50)}\"], \"dst\": [\"10.{random.Next(20)}.0.0/16\"], \"ip\": [\"tcp:443\"], \"via\": [\"{routerTags[random.Next(routerTags.Count)]}\", \"tag:t{random.Next(100)}\"]}}")));
        policy = policy[..^1] + ", \"grants\": [" + grants + "]}";
        PolicyEngine.Compile(policy, topology); // warm-up (JIT)

        var connected = topology.Nodes.Where(static (_, i) => i % 10 == 0).Select(static n => n.Name).ToList();
        var routers = topology.Nodes.Where(static n => n.ApprovedRoutes.Count > 0).Select(static n => n.Name).ToList();
        var best = new Timing[3];
        var steered = 0;
        var served = 0;
        for (var run = 0; run < 3; run++)
        {
            ICompiledPolicy compiled = null!;
            Keep(ref best[0], Measure(() => compiled = PolicyEngine.Compile(policy, topology)));
            Keep(ref best[1], Measure(() => steered = connected.Sum(n => compiled.ViaRoutesFor(n).Subnets.Count)));
            Keep(ref best[2], Measure(() => served = routers.Sum(n => compiled.ViaServedRoutes(n).Count)));
        }

        TestContext.Current.TestOutputHelper!.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"compile {Nodes} nodes x {Rules + 1} rules + 100 via grants: {best[0]}; " +
            $"first ViaRoutesFor x{connected.Count}: {best[1]} ({steered} steered routes); " +
            $"first ViaServedRoutes x{routers.Count}: {best[2]} ({served} served routes)"));
        Assert.True(steered > 0);
        Assert.True(served > 0);
    }

    private readonly record struct Timing(double WallMs, double CpuMs)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{WallMs:F0} ms (cpu {CpuMs:F0} ms)");
    }

    private static void Keep(ref Timing best, Timing t)
    {
        if (best.WallMs == 0 || t.WallMs < best.WallMs)
        {
            best = t;
        }
    }

    private static Timing Measure(Action action)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        action();
        var wall = sw.Elapsed;
        process.Refresh();
        return new Timing(wall.TotalMilliseconds, (process.TotalProcessorTime - cpu).TotalMilliseconds);
    }

    internal static (string Policy, PolicyTopology Topology) Synthetic() => SyntheticPolicy.Create(Nodes, Rules);
}
