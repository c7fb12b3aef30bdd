using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Mesh.Control.NodeApi;
using Mesh.Protocol.Control;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.State;

/// <summary>
/// Keeps every open map stream up to date. <see cref="MeshState"/> signals after each published
/// change; one pusher task waits a few milliseconds to coalesce bursts, takes the newest snapshot and,
/// for each stream, compares what the node should see with what it was last sent: changed or newly
/// visible peers (by reference — unchanged peers keep their instance across snapshots), removed
/// peers, its own node, its packet filter and DNS. Only the difference is queued. A stream that falls
/// far behind gets one full map instead of a backlog.
/// </summary>
internal sealed class MapStreamHub : IDisposable
{
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(15);
    private const int MaxBacklog = 32;

    private readonly MeshState _state;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<long, Subscription> _subscriptions = new();
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pusher;
    private long _nextId;

    public MapStreamHub(MeshState state, ILogger logger)
    {
        _state = state;
        _logger = logger;
        _pusher = Task.Run(PushLoopAsync);
    }

    public int Count => _subscriptions.Count;

    /// <summary>Wakes the pusher (cheap; many signals collapse into one push).</summary>
    public void Signal()
    {
        try
        {
            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Opens a stream whose first message is the node's full map from <paramref name="snapshot"/>.</summary>
    public IMapStream Subscribe(long nodeId, NetmapSnapshot snapshot, Action<long> onClose)
    {
        var subscription = new Subscription(Interlocked.Increment(ref _nextId), nodeId, this, onClose);
        lock (subscription.Gate)
        {
            _subscriptions[subscription.Id] = subscription;
            subscription.SendFull(snapshot);
        }

        _state.Metrics.MapPushed();
        return subscription;
    }

    /// <summary>Ends every stream of a node (deleted, logged out).</summary>
    public void Close(long nodeId)
    {
        foreach (var subscription in _subscriptions.Values)
        {
            if (subscription.NodeId == nodeId)
            {
                subscription.Channel.Writer.TryComplete();
            }
        }
    }

    private async Task PushLoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _signal.WaitAsync(token).ConfigureAwait(false);
                await Task.Delay(Coalesce, token).ConfigureAwait(false);
                var snapshot = _state.Snapshot;
                var pushed = 0;
                foreach (var subscription in _subscriptions.Values)
                {
                    try
                    {
                        lock (subscription.Gate)
                        {
                            pushed += subscription.Update(snapshot) ? 1 : 0;
                        }
                    }
                    catch (Exception e)
                    {
                        // One broken stream must not hold back the others: end it; the node reconnects for a full map.
                        _logger.LogError(e, "Updating the map stream of node {Node} failed; closing it", subscription.NodeId);
                        subscription.Channel.Writer.TryComplete();
                    }
                }

                if (pushed > 0)
                {
                    _state.Metrics.MapPushed(pushed);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Pushing map updates failed");
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var subscription in _subscriptions.Values)
        {
            subscription.Channel.Writer.TryComplete();
        }

        try
        {
            _pusher.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
        _signal.Dispose();
    }

    private sealed class Subscription : IMapStream
    {
        private readonly MapStreamHub _hub;
        private readonly Action<long> _onClose;
        private Dictionary<long, MapNode> _sentPeers = [];
        private MapNode? _sentSelf;
        private object? _sentPolicy;
        private string? _sentFilter;
        private DnsConfig? _sentDns;
        private long _seq;
        private int _closed;

        public Subscription(long id, long nodeId, MapStreamHub hub, Action<long> onClose)
        {
            Id = id;
            NodeId = nodeId;
            _hub = hub;
            _onClose = onClose;
        }

        public long Id { get; }
        public long NodeId { get; }
        public Lock Gate { get; } = new();
        public Channel<MapResponse> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<MapResponse>();

        public ChannelReader<MapResponse> Updates => Channel.Reader;

        public void SendFull(NetmapSnapshot snapshot)
        {
            if (!snapshot.ById.TryGetValue(NodeId, out var self))
            {
                Channel.Writer.TryComplete();
                return;
            }

            var map = new NetmapBuilder(snapshot, self).WithSelf().WithPeers().WithFilter().WithDns().WithRelayMap().Build() with { Seq = ++_seq };
            _sentSelf = map.Self;
            _sentPeers = map.Peers!.ToDictionary(p => p.Id);
            _sentPolicy = snapshot.Policy;
            _sentFilter = FilterText(map.PacketFilter);
            _sentDns = snapshot.Dns;
            Channel.Writer.TryWrite(map);
        }

        /// <summary>Queues what changed for this node; true when something was sent.</summary>
        public bool Update(NetmapSnapshot snapshot)
        {
            if (Channel.Reader.Completion.IsCompleted)
            {
                return false;
            }

            if (!snapshot.ById.TryGetValue(NodeId, out var self))
            {
                Channel.Writer.TryComplete();
                return false;
            }

            if (Channel.Reader.Count >= MaxBacklog)
            {
                while (Channel.Reader.TryRead(out _))
                {
                }

                SendFull(snapshot);
                return true;
            }

            var selfNode = snapshot.MapNodeOf(self);
            var changed = new List<MapNode>();
            var now = new Dictionary<long, MapNode>();
            foreach (var name in snapshot.Policy.PeersOf(self.Name))
            {
                if (!snapshot.ByName.TryGetValue(name, out var peer) || peer.Id == self.Id || peer.IsExpired(snapshot.Now))
                {
                    continue;
                }

                var peerNode = snapshot.MapNodeOf(peer);
                now[peer.Id] = peerNode;
                if (!_sentPeers.TryGetValue(peer.Id, out var sent) || !ReferenceEquals(sent, peerNode))
                {
                    changed.Add(peerNode);
                }
            }

            var removed = _sentPeers.Keys.Where(id => !now.ContainsKey(id)).ToList();

            IReadOnlyList<FilterRule>? filter = null;
            if (!ReferenceEquals(_sentPolicy, snapshot.Policy))
            {
                var built = new NetmapBuilder(snapshot, self).WithFilter().Build().PacketFilter!;
                var text = FilterText(built);
                if (text != _sentFilter)
                {
                    filter = built;
                    _sentFilter = text;
                }

                _sentPolicy = snapshot.Policy;
            }

            var dns = ReferenceEquals(_sentDns, snapshot.Dns) ? null : snapshot.Dns;
            var selfChanged = !ReferenceEquals(_sentSelf, selfNode);
            if (changed.Count == 0 && removed.Count == 0 && filter is null && dns is null && !selfChanged)
            {
                return false;
            }

            _sentPeers = now;
            _sentSelf = selfNode;
            _sentDns = snapshot.Dns;
            Channel.Writer.TryWrite(new MapResponse
            {
                Seq = ++_seq,
                Self = selfChanged ? selfNode : null,
                PeersChanged = changed.Count > 0 ? changed : null,
                PeersRemoved = removed.Count > 0 ? removed : null,
                PacketFilter = filter,
                Dns = dns,
            });

            // An expired node learns it (Self.Expired) and then its stream ends: it must re-register.
            if (selfNode.Expired)
            {
                Channel.Writer.TryComplete();
            }

            return true;
        }

        private static string FilterText(IReadOnlyList<FilterRule>? filter) =>
            filter is null ? "null" : JsonSerializer.Serialize(new MapResponse { PacketFilter = filter }, ControlJsonContext.Default.MapResponse);

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0)
            {
                Channel.Writer.TryComplete();
                _hub._subscriptions.TryRemove(Id, out _);
                _onClose(NodeId);
            }

            return ValueTask.CompletedTask;
        }
    }
}
