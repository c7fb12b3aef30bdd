using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Control.Admin;
using Mesh.Control.State;
using Mesh.Protocol;
using Mesh.Protocol.Control;

namespace Mesh.CoordinatorBench;

/// <summary>
/// One run against a coordinator in another process: register many nodes, hold map streams for
/// some, change the policy and add nodes while timing how long each stream takes to hear about it,
/// and compile a large policy in-process. Each phase prints its figures as it goes; the caller
/// prints <see cref="Figures.Table"/> at the end.
/// </summary>
internal sealed class CoordinatorBenchRun : IAsyncDisposable
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan SettledFor = TimeSpan.FromSeconds(10);

    private readonly BenchOptions _options;
    private readonly Figures _figures;
    private readonly AdminClient _admin;
    private readonly CoordinatorProbe _coordinator;
    private readonly SocketsHttpHandler _pool = SimulatedNode.NewPool();
    private readonly List<string> _authKeys = [];
    private SimulatedNode[] _streaming = [];
    private StreamFleet? _fleet;
    private MachineKey _serverKey;
    private double _clientCpuMark;

    public CoordinatorBenchRun(BenchOptions options, Figures figures)
    {
        _options = options;
        _figures = figures;
        _admin = AdminClient.ForSocket(options.AdminSocket);
        _coordinator = new CoordinatorProbe(options.CoordinatorPid, options.Metrics);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await RegisterAsync(cancellationToken);
        await OpenStreamsAsync();
        await ChangePolicyAsync(cancellationToken);
        await JoinAsync(cancellationToken);
    }

    /// <summary>Phase 1: N registrations with a reusable key per user, <see cref="BenchOptions.Parallel"/> at a time.</summary>
    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        const string phase = "1 register";
        for (var u = 0; u < _options.Users; u++)
        {
            await _admin.CreateUserAsync($"bench{u}", $"bench{u}@example.com", null, cancellationToken);
            _authKeys.Add((await _admin.CreatePreAuthKeyAsync(new PreAuthKeyRequest($"bench{u}", Reusable: true, Ephemeral: false, Expiration: null, Tags: []), cancellationToken)).Key);
        }

        using (var keyClient = new ControlClient(_options.Server, new byte[32], handler: new HttpClientHandler { UseProxy = false }))
        {
            _serverKey = await keyClient.FetchServerKeyAsync(cancellationToken);
        }

        var n = _options.Nodes;
        var latencies = new double[n];
        var finished = new long[n];
        _streaming = new SimulatedNode[_options.Streams];
        var failures = 0;
        Exception? firstFailure = null;
        var done = 0;
        var cpu = _coordinator.CpuSeconds();
        _clientCpuMark = ClientCpu();
        var metricsBefore = await _coordinator.ScrapeAsync(cancellationToken);
        var start = Stopwatch.GetTimestamp();
        var chunk = Math.Max(1, n / 10);
        var chunkStart = start;
        var chunkRates = new List<double>();

        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = _options.Parallel, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var node = new SimulatedNode($"bench-{i}", _options.Server, _serverKey, _pool);
            var begin = Stopwatch.GetTimestamp();
            try
            {
                var response = await node.Client.RegisterAsync(new RegisterRequest { NodeKey = node.NodeKey, AuthKey = _authKeys[i % _authKeys.Count], Hostname = node.Hostname }, ct);
                if (!response.Authorized)
                {
                    throw new InvalidOperationException($"bench-{i} not authorized: {response.Error}");
                }

                finished[i] = Stopwatch.GetTimestamp();
                latencies[i] = Figures.Between(begin, finished[i]);
            }
            catch (Exception e) when (e is ControlRequestException or HttpRequestException or InvalidOperationException)
            {
                Interlocked.Increment(ref failures);
                firstFailure ??= e;
            }

            if (i < _streaming.Length)
            {
                _streaming[i] = node;
            }
            else
            {
                node.Dispose();
            }

            var count = Interlocked.Increment(ref done);
            if (count % chunk == 0)
            {
                var now = Stopwatch.GetTimestamp();
                var rate = chunk / Figures.Between(Interlocked.Exchange(ref chunkStart, now), now);
                lock (chunkRates)
                {
                    chunkRates.Add(rate);
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    registered {count,6}/{n}  {rate,7:F0}/s over the last {chunk}"));
            }
        });

        var total = Figures.Since(start);
        var ok = latencies.Where(l => l > 0).ToList();
        _figures.Add(phase, $"{n} nodes, {_options.Parallel} in flight: total", $"{Figures.Seconds(total)}  ({ok.Count / total:F0} registrations/s)");
        _figures.Latencies(phase, "latency (control handshake + register)", ok, n);
        if (chunkRates.Count >= 2)
        {
            _figures.Add(phase, $"rate, first vs last {chunk} nodes", $"{chunkRates[0]:F0}/s -> {chunkRates[^1]:F0}/s");
        }

        if (failures > 0)
        {
            _figures.Add(phase, "failures", $"{failures}; first: {firstFailure?.Message}");
        }

        await CoordinatorCostAsync(phase, cpu, total, metricsBefore, cancellationToken);
        _figures.Add(phase, $"coordinator memory, idle with {n} nodes", await CoordinatorMemoryAsync());
    }

    /// <summary>Phase 2: M map streams, <see cref="BenchOptions.OpenParallel"/> opening at a time, each until its first full map.</summary>
    private async Task OpenStreamsAsync()
    {
        const string phase = "2 streams";
        var m = _options.Streams;
        _fleet = new StreamFleet(m);
        var opened = new long[m];
        using var gate = new SemaphoreSlim(_options.OpenParallel);
        var firsts = new List<Task>(m);
        var cpu = _coordinator.CpuSeconds();
        _clientCpuMark = ClientCpu();
        var metricsBefore = await _coordinator.ScrapeAsync(CancellationToken.None);
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < m; i++)
        {
            await gate.WaitAsync();
            opened[i] = Stopwatch.GetTimestamp();
            firsts.Add(_fleet.Open(i, _streaming[i]).ContinueWith(_ => gate.Release(), TaskScheduler.Default));
            if ((i + 1) % Math.Max(1, m / 5) == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    opening streams {i + 1,5}/{m}  {Figures.Seconds(Figures.Since(start))}"));
            }
        }

        await Task.WhenAll(firsts);
        var connected = _fleet.FirstMap.Count(t => t != 0);
        var lastFirst = _fleet.FirstMap.Where(t => t != 0).DefaultIfEmpty(start).Max();
        var total = Figures.Between(start, lastFirst);
        var firstLatency = Enumerable.Range(0, m).Where(i => _fleet.FirstMap[i] != 0).Select(i => Figures.Between(opened[i], _fleet.FirstMap[i])).ToList();
        _figures.Add(phase, $"{m} streams, {_options.OpenParallel} opening at a time: all connected", $"{Figures.Seconds(total)}  ({connected} of {m}, {_fleet.FirstMapPeers.DefaultIfEmpty().Max()} peers in a full map)");
        _figures.Latencies(phase, "open -> first full map, per stream", firstLatency, m);
        if (_fleet.FirstError is { } error)
        {
            _figures.Add(phase, "stream failures", $"{_fleet.Ended} ended; first: {error.GetType().Name}: {error.Message}");
        }

        var drained = await _fleet.SettleAsync(Quiet, SettleLimit);
        _figures.Add(phase, "online-status deltas drained after", $"{Figures.Seconds(drained)} more  ({_fleet.MapsReceived} maps, {_fleet.DeltaPeers} PeersChanged entries in all)");
        await CoordinatorCostAsync(phase, cpu, Figures.Since(start), metricsBefore, CancellationToken.None);
        _figures.Add(phase, $"coordinator memory, {m} streams open", await CoordinatorMemoryAsync());
    }

    /// <summary>
    /// Phase 3: allow-all → a user-based policy (each user reaches its own nodes on every port,
    /// everyone reaches everyone on one round-specific port) → allow-all. The peer sets stay the
    /// same, so what is measured is the packet filter reaching every stream.
    /// </summary>
    private async Task ChangePolicyAsync(CancellationToken cancellationToken)
    {
        const string phase = "3 policy";
        var fleet = _fleet!;
        var all = new List<double>();
        var cpu = _coordinator.CpuSeconds();
        _clientCpuMark = ClientCpu();
        var metricsBefore = await _coordinator.ScrapeAsync(cancellationToken);
        var start = Stopwatch.GetTimestamp();
        for (var round = 1; round <= _options.Rounds; round++)
        {
            var port = 10_000 + round;
            all.AddRange(await PolicyRoundAsync(phase, $"round {round}: allow-all -> per-user", UserPolicy(port), f => HasPort(f, port), cancellationToken));
            all.AddRange(await PolicyRoundAsync(phase, $"round {round}: per-user -> allow-all", MeshState.DefaultPolicy, f => !HasPort(f, port), cancellationToken));
        }

        _figures.Latencies(phase, $"all {2 * _options.Rounds} changes (target p99 <= 2 s)", all, 2 * _options.Rounds * fleet.FirstMap.Length);
        await CoordinatorCostAsync(phase, cpu, Figures.Since(start), metricsBefore, cancellationToken);
    }

    private async Task<List<double>> PolicyRoundAsync(string phase, string label, string policy, Func<IReadOnlyList<FilterRule>, bool> reflects, CancellationToken cancellationToken)
    {
        var fleet = _fleet!;
        await fleet.SettleAsync(Quiet, SettleLimit);
        var probe = fleet.Arm(map => map.PacketFilter is { } f && reflects(f));
        var deltaPeers = fleet.DeltaPeers;
        var before = Stopwatch.GetTimestamp();
        await _admin.SetPolicyAsync(policy, cancellationToken);
        var returned = Stopwatch.GetTimestamp();
        var latencies = await probe.LatenciesAsync(before, _options.ProbeTimeout);
        fleet.Disarm();
        _figures.Latencies(phase, $"{label} (set took {Figures.Ms(Figures.Between(before, returned))})", latencies, fleet.FirstMap.Length);
        if (fleet.DeltaPeers > deltaPeers)
        {
            _figures.Add(phase, "  PeersChanged entries with it (peers did not change)", $"{fleet.DeltaPeers - deltaPeers}");
        }
        return latencies;
    }

    /// <summary>Phase 4: one more node registers; every stream must see it in PeersChanged.</summary>
    private async Task JoinAsync(CancellationToken cancellationToken)
    {
        const string phase = "4 join";
        var fleet = _fleet!;
        var all = new List<double>();
        var cpu = _coordinator.CpuSeconds();
        _clientCpuMark = ClientCpu();
        var metricsBefore = await _coordinator.ScrapeAsync(cancellationToken);
        var start = Stopwatch.GetTimestamp();
        for (var round = 1; round <= _options.Rounds; round++)
        {
            await fleet.SettleAsync(Quiet, SettleLimit);
            using var node = new SimulatedNode($"bench-join-{round}", _options.Server, _serverKey, _pool);
            var probe = fleet.Arm(map => Names(map.PeersChanged, node.Hostname) || Names(map.Peers, node.Hostname));
            var before = Stopwatch.GetTimestamp();
            await node.Client.RegisterAsync(new RegisterRequest { NodeKey = node.NodeKey, AuthKey = _authKeys[0], Hostname = node.Hostname }, cancellationToken);
            var returned = Stopwatch.GetTimestamp();
            var latencies = await probe.LatenciesAsync(before, _options.ProbeTimeout);
            fleet.Disarm();
            _figures.Latencies(phase, $"round {round}: register -> seen by all (register took {Figures.Ms(Figures.Between(before, returned))})", latencies, fleet.FirstMap.Length);
            all.AddRange(latencies);
        }

        _figures.Latencies(phase, $"all {_options.Rounds} joins", all, _options.Rounds * fleet.FirstMap.Length);
        await CoordinatorCostAsync(phase, cpu, Figures.Since(start), metricsBefore, cancellationToken);
        _figures.Add(phase, "coordinator memory at the end", await CoordinatorMemoryAsync());

        // What it keeps once nothing happens (keep-alives aside): what a quiet mesh of this size costs.
        await fleet.SettleAsync(Quiet, SettleLimit);
        await Task.Delay(SettledFor, cancellationToken);
        _figures.Add(phase, $"coordinator memory, {SettledFor.TotalSeconds:F0} s after the last change", await CoordinatorMemoryAsync());
        _figures.Add(phase, "bench client memory at the end", Figures.MemoryText(Environment.ProcessId));
    }

    /// <summary>Where a phase's wall time went: coordinator CPU, and (from /metrics) policy compiles and pushes.</summary>
    private async Task CoordinatorCostAsync(string phase, double? cpuBefore, double wall, CoordinatorProbe.Scrape? metricsBefore, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        if (cpuBefore is { } before && _coordinator.CpuSeconds() is { } after)
        {
            text.Append(CultureInfo.InvariantCulture, $"CPU {after - before:F1} s in {wall:F1} s wall ({(after - before) / wall:F2} cores)");
        }

        text.Append(CultureInfo.InvariantCulture, $"{(text.Length > 0 ? "; " : string.Empty)}bench client CPU {ClientCpu() - _clientCpuMark:F1} s");
        var m1 = await _coordinator.ScrapeAsync(cancellationToken);
        if (metricsBefore is { } m0 && m1 is not null && m1.Compiles > m0.Compiles)
        {
            var compiles = m1.Compiles - m0.Compiles;
            var seconds = m1.CompileSeconds - m0.CompileSeconds;
            text.Append(CultureInfo.InvariantCulture, $"; {compiles} policy compiles, {seconds:F1} s in all ({seconds / compiles * 1000:F1} ms each)");
        }

        if (text.Length > 0)
        {
            _figures.Add(phase, "coordinator cost", text.ToString());
        }

        if (metricsBefore is { AllocatedBytes: > 0 } a0 && m1 is { AllocatedBytes: > 0 } a1)
        {
            _figures.Add(phase, "coordinator allocations (GC)", string.Create(CultureInfo.InvariantCulture,
                $"{(a1.AllocatedBytes - a0.AllocatedBytes) / Mib:F0} MiB allocated, {a1.Gen2Collections - a0.Gen2Collections} gen2 collections; heap after the last GC {a1.HeapBytes / Mib:F0} MiB"));
        }
    }

    private const double Mib = 1024 * 1024;

    /// <summary>The coordinator's RSS (now and peak) and, when it exports the runtime's meter, its GC heap after the last collection.</summary>
    private async Task<string> CoordinatorMemoryAsync()
    {
        var text = Figures.MemoryText(_options.CoordinatorPid);
        return await _coordinator.ScrapeAsync(CancellationToken.None) is { HeapBytes: > 0 } m
            ? string.Create(CultureInfo.InvariantCulture, $"{text}; GC heap {m.HeapBytes / Mib:F0} MiB (large objects {m.LargeObjectHeapBytes / Mib:F0})")
            : text;
    }

    private static double ClientCpu()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime.TotalSeconds;
    }

    private string UserPolicy(int port)
    {
        var acls = Enumerable.Range(0, _options.Users)
            .Select(u => $"{{\"action\": \"accept\", \"src\": [\"bench{u}@example.com\"], \"dst\": [\"bench{u}@example.com:*\"]}}")
            .Append($"{{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:{port}\"]}}");
        return $"{{\"acls\": [{string.Join(",\n", acls)}]}}";
    }

    private static bool HasPort(IReadOnlyList<FilterRule> filter, int port)
    {
        foreach (var rule in filter)
        {
            foreach (var dst in rule.DstPorts)
            {
                if (dst.Ports.First == port && dst.Ports.Last == port)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool Names(IReadOnlyList<MapNode>? peers, string name)
    {
        if (peers is null)
        {
            return false;
        }

        foreach (var peer in peers)
        {
            if (peer.Name == name)
            {
                return true;
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        if (_fleet is not null)
        {
            await _fleet.DisposeAsync();
        }

        foreach (var node in _streaming)
        {
            node?.Dispose();
        }

        _pool.Dispose();
        _admin.Dispose();
        _coordinator.Dispose();
    }
}
