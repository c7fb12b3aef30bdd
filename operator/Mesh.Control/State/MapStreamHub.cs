using System.Collections.Concurrent;
using System.Threading.Channels;
using Mesh.Control.NodeApi;
using Mesh.Protocol.Control;
using Microsoft.Extensions.Logging;
using PolicyFilterRule = Mesh.Policy.FilterRule;

namespace Mesh.Control.State;

/// <summary>
/// Keeps every open map stream up to date. <see cref="MeshState"/> signals after each change; one
/// pusher task waits a few milliseconds to coalesce bursts, takes the current snapshot (which makes
/// it, once for the burst) and brings each stream from the snapshot it was last brought to up to
/// this one: changed or newly visible peers, removed peers, its own node, its packet filter and DNS.
/// Only the difference is queued, and a new stream's first message, its full map, is sent here too.
/// <para>
/// Peers are compared by what their view is made of (<see cref="NetmapSnapshot.SameView"/>), so a
/// delta holds only what changed however many snapshots were made in between (comparing
/// <see cref="MapNode"/> instances made deltas of whole peer lists when bursts skipped snapshots:
/// 3.5 M PeersChanged entries instead of ~45 k at 3,000 nodes / 300 streams, tests/bench/coordinator.sh).
/// When the compiled policy is the one a stream last saw, only nodes that changed since the last push
/// can differ for it: the pusher finds them once and each stream looks at those alone, instead of
/// walking its whole peer list (streams × peers per push). A node whose via grants steer its routes
/// also looks at the routers whose routes changed for it alone (<see cref="NetmapSnapshot.PeerRoutesFor"/>:
/// a via router went offline and another took over, which changes nothing for anyone else).
/// </para>
/// A stream holds no copy of what it was sent, only the snapshot it was brought to, and a stream that
/// falls far behind gets one full map instead of a longer backlog.
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

    // Pusher-only state: the snapshot of the last push and reusable scratch space.
    private NetmapSnapshot? _pushed;
    private readonly PushScratch _scratch = new();

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

    /// <summary>
    /// Opens a stream. Its first message, the node's full map, is queued by the pusher's next round
    /// from a snapshot made after this call, so it holds every change made before it.
    /// </summary>
    public IMapStream Subscribe(long nodeId, Action<long> onClose)
    {
        var subscription = new Subscription(Interlocked.Increment(ref _nextId), nodeId, this, onClose);
        _subscriptions[subscription.Id] = subscription;
        Signal();
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
                Push();
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

    /// <summary>One round: brings every stream to the current snapshot.</summary>
    private void Push()
    {
        // The streams are listed before the snapshot is taken: every stream listed was opened before
        // it, so its node's registration and online state are in it. Later ones wait for the next round.
        var subscriptions = _subscriptions.Values;
        if (subscriptions.Count == 0)
        {
            // Nobody to tell: no snapshot is made (registrations without streams stay cheap).
            _pushed = null;
            return;
        }

        var snapshot = _state.Snapshot;
        var changes = ChangeSet.Between(_pushed, snapshot, _scratch);
        var pushed = 0;
        foreach (var subscription in subscriptions)
        {
            try
            {
                lock (subscription.Gate)
                {
                    pushed += subscription.Update(snapshot, changes, _scratch) ? 1 : 0;
                }
            }
            catch (Exception e)
            {
                // One broken stream must not hold back the others: end it; the node reconnects for a full map.
                _logger.LogError(e, "Updating the map stream of node {Node} failed; closing it", subscription.NodeId);
                subscription.Channel.Writer.TryComplete();
            }
        }

        _pushed = snapshot;
        if (pushed > 0)
        {
            _state.Metrics.MapPushed(pushed);
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

    /// <summary>Collections the pusher reuses from stream to stream (it is the only thread using them).</summary>
    private sealed class PushScratch
    {
        public HashSet<long> Ids { get; } = [];
        public List<long> Changed { get; } = [];
    }

    /// <summary>
    /// The nodes whose peer view differs between the last pushed snapshot and the new one (changed,
    /// added, removed), when both were compiled into the same policy object against the same nodes;
    /// then no other node can look different to any stream that was brought to <see cref="From"/>.
    /// </summary>
    private sealed class ChangeSet
    {
        private ChangeSet(NetmapSnapshot from, List<long> nodes)
        {
            From = from;
            Nodes = nodes;
        }

        public NetmapSnapshot From { get; }

        /// <summary>Ids in ascending order.</summary>
        public List<long> Nodes { get; }

        /// <summary>Null when the change cannot be narrowed down (first push, or the policy changed).</summary>
        public static ChangeSet? Between(NetmapSnapshot? from, NetmapSnapshot to, PushScratch scratch)
        {
            if (from is null || !ReferenceEquals(from.Policy, to.Policy) || !from.PolicyMatchesNodes || !to.PolicyMatchesNodes)
            {
                return null;
            }

            var changed = scratch.Changed;
            changed.Clear();
            if (ReferenceEquals(from, to))
            {
                return new ChangeSet(from, changed);
            }

            foreach (var node in to.Nodes)
            {
                if (!from.ById.TryGetValue(node.Id, out var before) || !NetmapSnapshot.SameView(from, before, to, node))
                {
                    changed.Add(node.Id);
                }
            }

            var added = changed.Count;
            foreach (var node in from.Nodes)
            {
                if (!to.ById.ContainsKey(node.Id))
                {
                    changed.Add(node.Id);
                }
            }

            if (changed.Count > added)
            {
                changed.Sort();
            }

            return new ChangeSet(from, changed);
        }
    }

    private sealed class Subscription : IMapStream
    {
        private readonly MapStreamHub _hub;
        private readonly Action<long> _onClose;

        // What the node holds: the view of it in _synced (peers, self, DNS, packet filter).
        private NetmapSnapshot? _synced;
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

        /// <summary>
        /// Bounded: the pusher replaces a backlog of <see cref="MaxBacklog"/> with one full map before
        /// writing more, so a stalled reader holds at most that many messages.
        /// </summary>
        public Channel<MapResponse> Channel { get; } = System.Threading.Channels.Channel.CreateBounded<MapResponse>(
            new BoundedChannelOptions(MaxBacklog + 1) { FullMode = BoundedChannelFullMode.Wait });

        public ChannelReader<MapResponse> Updates => Channel.Reader;

        private void SendFull(NetmapSnapshot snapshot, MeshNodeState self)
        {
            var map = new NetmapBuilder(snapshot, self).WithSelf().WithPeers().WithFilter().WithDns().WithRelayMap().Build() with { Seq = ++_seq };
            _synced = snapshot;
            Write(map);
        }

        private void Write(MapResponse map)
        {
            if (!Channel.Writer.TryWrite(map))
            {
                // Only when the reader stalled past the backlog bound between two checks: start over.
                Channel.Writer.TryComplete();
            }
        }

        /// <summary>Queues what changed for this node since its last message; true when something was sent.</summary>
        public bool Update(NetmapSnapshot snapshot, ChangeSet? changes, PushScratch scratch)
        {
            if (Channel.Reader.Completion.IsCompleted || ReferenceEquals(_synced, snapshot))
            {
                return false;
            }

            if (!snapshot.ById.TryGetValue(NodeId, out var self))
            {
                Channel.Writer.TryComplete();
                return false;
            }

            var old = _synced;
            if (old is null || !old.ById.TryGetValue(NodeId, out var oldSelf) || Channel.Reader.Count >= MaxBacklog)
            {
                while (Channel.Reader.TryRead(out _))
                {
                }

                SendFull(snapshot, self);
                return true;
            }

            var changed = new List<MapNode>();
            var removed = new List<long>();
            var peers = snapshot.Policy.PeersOf(self.Name);
            // Routers a via grant of this node steers its routes to: their view is the node's own (usually none).
            var views = new StreamRoutes(old.PeerRoutesFor(oldSelf), snapshot.PeerRoutesFor(self));
            // Looking up each changed node costs a binary search in the peer list; walking both lists
            // costs two passes over it: whichever is less.
            if (changes is not null && ReferenceEquals(changes.From, old) && changes.Nodes.Count * 4 < peers.Count)
            {
                DiffChanged(old, snapshot, self, peers, views.Steered(changes.Nodes), views.After, changed, removed);
            }
            else if (old.PolicyMatchesNodes && snapshot.PolicyMatchesNodes)
            {
                DiffSorted(old, oldSelf, snapshot, self, peers, views, changed, removed);
            }
            else
            {
                DiffAll(old, oldSelf, snapshot, self, peers, views, scratch.Ids, changed, removed);
            }

            // The node holds the filter of the policy it was last brought to: compared rule by rule,
            // not as text kept per stream (about 100 KB a stream under the bench's per-user policy, by estimate).
            IReadOnlyList<FilterRule>? filter = null;
            if (!ReferenceEquals(old.Policy, snapshot.Policy) && !SameFilter(old.Policy.FilterFor(oldSelf.Name), snapshot.Policy.FilterFor(self.Name)))
            {
                filter = new NetmapBuilder(snapshot, self).WithFilter().Build().PacketFilter!;
            }

            var dns = ReferenceEquals(old.Dns, snapshot.Dns) ? null : snapshot.Dns;
            var selfChanged = !NetmapSnapshot.SameSelfView(old, oldSelf, snapshot, self);
            _synced = snapshot;
            if (changed.Count == 0 && removed.Count == 0 && filter is null && dns is null && !selfChanged)
            {
                return false;
            }

            var selfNode = snapshot.SelfViewOf(self);
            Write(new MapResponse
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

        /// <summary>
        /// The delta when the policy is the one of <paramref name="old"/> and only <paramref name="ids"/>
        /// changed: the peer list is the same, so each changed node is looked up in it (ascending ids,
        /// a binary search) and sent, or removed when it stopped being visible.
        /// </summary>
        private static void DiffChanged(NetmapSnapshot old, NetmapSnapshot snapshot, MeshNodeState self, IReadOnlyList<string> peers, List<long> ids, IReadOnlyDictionary<long, PeerRoutes> views, List<MapNode> changed, List<long> removed)
        {
            foreach (var id in ids)
            {
                if (id == self.Id)
                {
                    continue;
                }

                snapshot.ById.TryGetValue(id, out var now);
                old.ById.TryGetValue(id, out var before);
                if (!Lists(peers, snapshot, (now ?? before)!))
                {
                    continue;
                }

                if (now is not null && !now.IsExpired(snapshot.Now))
                {
                    changed.Add(snapshot.ViewOf(views, now));
                }
                else if (before is not null && !before.IsExpired(old.Now))
                {
                    removed.Add(id);
                }
            }
        }

        /// <summary>Whether the policy's peer list (ascending node ids, the topology order) holds the node.</summary>
        private static bool Lists(IReadOnlyList<string> peers, NetmapSnapshot snapshot, MeshNodeState node)
        {
            int lo = 0, hi = peers.Count - 1;
            while (lo <= hi)
            {
                var mid = lo + ((hi - lo) >> 1);
                if (!snapshot.ByName.TryGetValue(peers[mid], out var at))
                {
                    return Contains(peers, node.Name);
                }

                if (at.Id == node.Id)
                {
                    return true;
                }

                if (at.Id < node.Id)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            return false;
        }

        private static bool Contains(IReadOnlyList<string> peers, string name)
        {
            foreach (var peer in peers)
            {
                if (peer == name)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>
        /// The delta when the policy changed but each snapshot's policy was compiled against its own
        /// nodes: both peer lists are then in ascending id order and are merged in one pass (the
        /// join of one node with 1,000 streams open walks 10,000 peers per stream).
        /// </summary>
        private static void DiffSorted(NetmapSnapshot old, MeshNodeState oldSelf, NetmapSnapshot snapshot, MeshNodeState self, IReadOnlyList<string> peers, StreamRoutes views, List<MapNode> changed, List<long> removed)
        {
            var before = old.Policy.PeersOf(oldSelf.Name);
            var i = 0;
            var sent = NextVisible(old, before, oldSelf.Id, ref i);
            foreach (var name in peers)
            {
                if (!snapshot.ByName.TryGetValue(name, out var peer) || peer.Id == self.Id || peer.IsExpired(snapshot.Now))
                {
                    continue;
                }

                while (sent is not null && sent.Id < peer.Id)
                {
                    removed.Add(sent.Id);
                    sent = NextVisible(old, before, oldSelf.Id, ref i);
                }

                if (sent is not null && sent.Id == peer.Id)
                {
                    if (!NetmapSnapshot.SamePeerView(old, views.Before, sent, snapshot, views.After, peer))
                    {
                        changed.Add(snapshot.ViewOf(views.After, peer));
                    }

                    sent = NextVisible(old, before, oldSelf.Id, ref i);
                }
                else
                {
                    changed.Add(snapshot.ViewOf(views.After, peer));
                }
            }

            while (sent is not null)
            {
                removed.Add(sent.Id);
                sent = NextVisible(old, before, oldSelf.Id, ref i);
            }
        }

        /// <summary>The next peer of <paramref name="peers"/> from <paramref name="i"/> that the node was sent from <paramref name="old"/>.</summary>
        private static MeshNodeState? NextVisible(NetmapSnapshot old, IReadOnlyList<string> peers, long selfId, ref int i)
        {
            while (i < peers.Count)
            {
                if (old.ByName.TryGetValue(peers[i++], out var peer) && peer.Id != selfId && !peer.IsExpired(old.Now))
                {
                    return peer;
                }
            }

            return null;
        }

        /// <summary>The delta between two arbitrary snapshots: both peer lists walked.</summary>
        private static void DiffAll(NetmapSnapshot old, MeshNodeState oldSelf, NetmapSnapshot snapshot, MeshNodeState self, IReadOnlyList<string> peers, StreamRoutes views, HashSet<long> before, List<MapNode> changed, List<long> removed)
        {
            before.Clear();
            foreach (var name in old.Policy.PeersOf(oldSelf.Name))
            {
                if (old.ByName.TryGetValue(name, out var peer) && peer.Id != oldSelf.Id && !peer.IsExpired(old.Now))
                {
                    before.Add(peer.Id);
                }
            }

            foreach (var name in peers)
            {
                if (!snapshot.ByName.TryGetValue(name, out var peer) || peer.Id == self.Id || peer.IsExpired(snapshot.Now))
                {
                    continue;
                }

                if (!before.Remove(peer.Id) || !NetmapSnapshot.SamePeerView(old, views.Before, old.ById[peer.Id], snapshot, views.After, peer))
                {
                    changed.Add(snapshot.ViewOf(views.After, peer));
                }
            }

            foreach (var id in before)
            {
                removed.Add(id);
            }

            before.Clear();
        }

        /// <summary>A stream's peer routes (<see cref="NetmapSnapshot.PeerRoutesFor"/>) in the snapshot it was brought to and in the new one.</summary>
        private readonly record struct StreamRoutes(IReadOnlyDictionary<long, PeerRoutes> Before, IReadOnlyDictionary<long, PeerRoutes> After)
        {
            /// <summary>
            /// <paramref name="changed"/> (the nodes that look different to everyone, ascending) plus the routers whose
            /// route view changed for this node alone (a via router went on or offline), ascending and distinct.
            /// </summary>
            public List<long> Steered(List<long> changed)
            {
                if (Before.Count == 0 && After.Count == 0)
                {
                    return changed;
                }

                var own = NetmapSnapshot.PeerRoutesChanges(Before, After);
                if (own.Count == 0)
                {
                    return changed;
                }

                var merged = new List<long>(changed.Count + own.Count);
                int i = 0, j = 0;
                while (i < changed.Count || j < own.Count)
                {
                    var next = j == own.Count || (i < changed.Count && changed[i] <= own[j]) ? changed[i++] : own[j++];
                    if (merged.Count == 0 || merged[^1] != next)
                    {
                        merged.Add(next);
                    }
                }

                return merged;
            }
        }

        /// <summary>Whether two compiled filters send the same rules (no filter and an empty one both send an empty list).</summary>
        internal static bool SameFilter(IReadOnlyList<PolicyFilterRule>? a, IReadOnlyList<PolicyFilterRule>? b)
        {
            a ??= [];
            b ??= [];
            if (ReferenceEquals(a, b))
            {
                return true;
            }

            if (a.Count != b.Count)
            {
                return false;
            }

            for (var i = 0; i < a.Count; i++)
            {
                var (x, y) = (a[i], b[i]);
                if (ReferenceEquals(x, y))
                {
                    continue;
                }

                if (!x.SrcIPs.SequenceEqual(y.SrcIPs, StringComparer.Ordinal)
                    || !(x.IPProto ?? []).SequenceEqual(y.IPProto ?? []) || (x.IPProto is null) != (y.IPProto is null)
                    || !x.DstPorts.SequenceEqual(y.DstPorts))
                {
                    return false;
                }
            }

            return true;
        }

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
