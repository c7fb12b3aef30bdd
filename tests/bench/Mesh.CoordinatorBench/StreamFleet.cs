using System.Diagnostics;
using Mesh.Protocol.Control;

namespace Mesh.CoordinatorBench;

/// <summary>
/// The open map streams, one reader task each. A reader keeps nothing of a map but what the
/// current <see cref="Probe"/> asks about (holding 1,000 netmaps of 10,000 peers would measure this
/// process's memory, not the coordinator). A probe records, per stream, when the first map that
/// matches arrived.
/// </summary>
internal sealed class StreamFleet : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _readers = [];
    private Probe? _probe;
    private long _lastMap = Stopwatch.GetTimestamp();
    private long _maps;
    private long _deltaPeers;
    private int _ended;

    public StreamFleet(int count)
    {
        FirstMap = new long[count];
        FirstMapPeers = new int[count];
    }

    /// <summary>Per stream: when its first (full) map arrived, 0 until then.</summary>
    public long[] FirstMap { get; }

    /// <summary>Per stream: how many peers its first map held.</summary>
    public int[] FirstMapPeers { get; }

    public long MapsReceived => Interlocked.Read(ref _maps);

    /// <summary>Peer entries received in deltas (PeersChanged) by all streams: with unchanged peers a policy change should add none.</summary>
    public long DeltaPeers => Interlocked.Read(ref _deltaPeers);
    public int Ended => Volatile.Read(ref _ended);
    public Exception? FirstError { get; private set; }

    /// <summary>Starts reading stream <paramref name="index"/>; <paramref name="firstMap"/> completes with its first map or its failure.</summary>
    public Task Open(int index, SimulatedNode node)
    {
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var request = node.StreamRequest(index);
        _readers.Add(Task.Run(async () =>
        {
            try
            {
                await foreach (var map in node.Client.MapStreamAsync(request, _stop.Token))
                {
                    var now = Stopwatch.GetTimestamp();
                    Volatile.Write(ref _lastMap, now);
                    Interlocked.Increment(ref _maps);
                    if (map.PeersChanged is { Count: > 0 } changed)
                    {
                        Interlocked.Add(ref _deltaPeers, changed.Count);
                    }

                    if (FirstMap[index] == 0)
                    {
                        FirstMapPeers[index] = map.Peers?.Count ?? 0;
                        FirstMap[index] = now;
                        first.TrySetResult();
                    }

                    Volatile.Read(ref _probe)?.Observe(index, map, now);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                FirstError ??= e;
                first.TrySetException(e);
            }
            finally
            {
                Interlocked.Increment(ref _ended);
                first.TrySetResult();
            }
        }));
        return first.Task;
    }

    /// <summary>Waits until no stream has received anything for <paramref name="quiet"/> (the coordinator has pushed everything queued).</summary>
    public async Task<double> SettleAsync(TimeSpan quiet, TimeSpan limit)
    {
        var start = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastMap)) < quiet && Stopwatch.GetElapsedTime(start) < limit)
        {
            await Task.Delay(50);
        }

        return Math.Max(0, Figures.Between(start, Volatile.Read(ref _lastMap)));
    }

    /// <summary>Arms a probe: from now on each stream's first map satisfying <paramref name="match"/> is timed.</summary>
    public Probe Arm(Func<MapResponse, bool> match)
    {
        var probe = new Probe(FirstMap.Length, match);
        Volatile.Write(ref _probe, probe);
        return probe;
    }

    public void Disarm() => Volatile.Write(ref _probe, null);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_readers).WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
        }

        _stop.Dispose();
    }

    internal sealed class Probe(int count, Func<MapResponse, bool> match)
    {
        private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = count;

        /// <summary>Per stream: when the matching map arrived, 0 if it has not.</summary>
        public long[] Arrived { get; } = new long[count];

        public void Observe(int index, MapResponse map, long now)
        {
            if (Arrived[index] != 0 || map.KeepAlive || !match(map))
            {
                return;
            }

            Arrived[index] = now;
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                _all.TrySetResult();
            }
        }

        /// <summary>Waits until every stream matched or <paramref name="timeout"/> passed; then returns the latencies from <paramref name="from"/>, in seconds, of the streams that matched.</summary>
        public async Task<List<double>> LatenciesAsync(long from, TimeSpan timeout)
        {
            try
            {
                await _all.Task.WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
            }

            var latencies = new List<double>(Arrived.Length);
            foreach (var at in Arrived)
            {
                if (at != 0)
                {
                    latencies.Add(Figures.Between(from, at));
                }
            }

            return latencies;
        }
    }
}
