using System.Diagnostics;
using System.Net;
using Mesh.Control.Configuration;
using Mesh.Control.Store;
using Mesh.Policy;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Control.State;

/// <summary>
/// The coordinator's one owner of cross-cutting state (STYLE.md: Headscale's `state/`): node
/// registration and updates, IP allocation, policy, routes and the netmap snapshot all go through
/// here, never straight from a handler to the database. Writes are serialized by one lock and go to
/// the store first (so a restart loses nothing), then to the in-memory view, which they mark dirty
/// (and the policy, when nodes, tags, routes or users changed) before waking the
/// <see cref="MapStreamHub"/>. The policy compile and the immutable <see cref="NetmapSnapshot"/> are
/// made once per burst of changes, by whoever needs the current snapshot first (usually the hub,
/// after its coalescing delay), not once per change: at 3,000 nodes a compile and a snapshot per
/// registration made registration quadratic (tests/bench/coordinator.sh). Reads (maps) work on a
/// snapshot without the lock.
/// It implements the node API (<see cref="NodeApi.INodeService"/>) and the admin API (<see cref="Admin.IMeshAdmin"/>).
/// </summary>
public sealed partial class MeshState : IDisposable
{
    /// <summary>The policy in force when none was set: everyone may reach everything, as Tailscale's default.</summary>
    public const string DefaultPolicy = """{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}""";

    private readonly MeshStore _store;
    private readonly CoordinatorConfig _config;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly IpAllocator _ips;
    private readonly SortedList<long, MeshNodeState> _nodes = [];
    private readonly Dictionary<MachineKey, long> _byMachine = [];
    private readonly Dictionary<NodeKey, long> _byNodeKey = [];
    private readonly Dictionary<string, long> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<long, int> _openStreams = [];
    private readonly Dictionary<long, UserRecord> _users = [];
    private readonly DnsConfig _dns;
    private readonly RelayMap _relayMap;
    private string _policyText = DefaultPolicy;
    private DateTimeOffset? _policyUpdatedAt;
    private ICompiledPolicy _policy;
    private bool _policyDirty;
    private bool _policyMatchesNodes = true;
    private long _generation;
    private NetmapSnapshot _snapshot;
    private volatile bool _snapshotDirty;
    private DateTimeOffset _expiryCheckedAt;

    // Last seen (docs/coordinator.md, "Last seen"): kept here, written to the store in batches.
    private readonly Dictionary<long, DateTimeOffset> _seen = [];

    /// <summary>The tags each node last asked for in a map request (re-evaluated only when that changes).</summary>
    private readonly Dictionary<long, string> _requestedTags = [];
    private readonly HashSet<long> _seenUnwritten = [];
    private bool _seenDisconnected;
    private DateTimeOffset _seenWrittenAt;

    /// <param name="extraRelayRegions">Regions of derp.urls' relay maps, listed after the embedded relay's (<see cref="Relay.ExtraRelayMaps"/>).</param>
    public MeshState(MeshStore store, CoordinatorConfig config, TimeProvider? time = null, ILogger? logger = null, MeshMetrics? metrics = null, IReadOnlyList<RelayRegion>? extraRelayRegions = null)
    {
        _store = store;
        _config = config;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        Metrics = metrics ?? new MeshMetrics();
        _ips = new IpAllocator(config.PrefixV4, config.PrefixV6);
        _dns = NetmapBuilder.DnsFrom(config);
        var relayMap = NetmapBuilder.RelayMapFrom(config);
        _relayMap = extraRelayRegions is { Count: > 0 } ? relayMap with { Regions = [.. relayMap.Regions, .. extraRelayRegions] } : relayMap;
        Hub = new MapStreamHub(this, _logger);

        foreach (var user in store.ListUsers())
        {
            _users[user.Id] = user;
        }

        var routes = store.ListRoutes().ToLookup(r => r.NodeId);
        foreach (var record in store.ListNodes())
        {
            var node = FromRecord(record, routes[record.Id], online: false);
            IndexLocked(node);
            if (node.IPv4 is not null)
            {
                _ips.MarkInUse(node.IPv4);
            }

            if (node.IPv6 is not null)
            {
                _ips.MarkInUse(node.IPv6);
            }
        }

        LoadPolicy();
        _policy = CompileLocked(_policyText, runTests: false);
        _expiryCheckedAt = _time.GetUtcNow();
        _seenWrittenAt = _expiryCheckedAt;
        _snapshot = new NetmapSnapshot([.. _nodes.Values], _policy, _dns, _relayMap, config.Dns.BaseDomain, _expiryCheckedAt, previous: null);
        Metrics.ObserveNodes(() =>
        {
            lock (_lock)
            {
                var online = 0;
                foreach (var node in _nodes.Values)
                {
                    online += node.Online ? 1 : 0;
                }

                return (_nodes.Count, online);
            }
        });
    }

    public MeshMetrics Metrics { get; }

    /// <summary>How often last-seen times are written to the store (nodes with an open stream then count as seen).</summary>
    public static readonly TimeSpan DefaultLastSeenWriteInterval = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Last-seen times are kept in memory — what `nodes list` shows is always current, every map request
    /// counting — and written to the store this often, at the next housekeeping tick after a node
    /// disconnects, and on dispose, each time in one transaction: a write (with fsync) per request or per
    /// disconnect does not scale to 10,000 nodes.
    /// </summary>
    public TimeSpan LastSeenWriteInterval { get; init; } = DefaultLastSeenWriteInterval;

    /// <summary>Raised (under the state's lock: keep handlers quick) when a node is deleted or its key expires.</summary>
    public event Action<NodeKey>? NodeRevoked;

    /// <summary>Whether a node key may use the embedded relay: it belongs to a registered node whose key has not expired.</summary>
    public bool IsRelayAuthorized(NodeKey key)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            return _byNodeKey.TryGetValue(key, out var id) && !_nodes[id].IsExpired(now);
        }
    }

    internal MapStreamHub Hub { get; }

    /// <summary>The netmap snapshot in force: built here (once, under the lock) when changes are pending.</summary>
    public NetmapSnapshot Snapshot
    {
        get
        {
            if (!_snapshotDirty)
            {
                return Volatile.Read(ref _snapshot);
            }

            lock (_lock)
            {
                return SnapshotLocked();
            }
        }
    }

    public TimeProvider Time => _time;

    /// <summary>Builds one node's full map from the current snapshot.</summary>
    public MapResponse FullMap(long nodeId)
    {
        var snapshot = Snapshot;
        if (!snapshot.ById.TryGetValue(nodeId, out var self))
        {
            throw new NodeApi.NodeApiException(404, $"node {nodeId} is not registered");
        }

        return new NetmapBuilder(snapshot, self).WithSelf().WithPeers().WithFilter().WithDns().WithRelayMap().Build();
    }

    /// <summary>
    /// Periodic housekeeping (the host calls it every few seconds): publishes when a node key
    /// expired since the last tick (snapshots are made lazily, so their time is no reference), and
    /// removes ephemeral nodes offline for longer than ephemeral_node_inactivity_timeout.
    /// </summary>
    public void Tick()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var checkedAt = _expiryCheckedAt;
            _expiryCheckedAt = now;
            var newlyExpired = _nodes.Values.Where(n => n.IsExpired(now) && !n.IsExpired(checkedAt)).ToList();
            var expiredSince = newlyExpired.Count > 0;
            foreach (var node in newlyExpired)
            {
                NodeRevoked?.Invoke(node.NodeKey);
            }

            var stale = _nodes.Values
                .Where(n => n.Ephemeral && !n.Online && (LastSeenLocked(n.Id, n.LastSeen) ?? n.CreatedAt) + _config.EphemeralInactivityTime <= now)
                .ToList();
            foreach (var node in stale)
            {
                _logger.LogInformation("Removing ephemeral node {Node} ({Id}): offline since {LastSeen}", node.Name, node.Id, LastSeenLocked(node.Id, node.LastSeen));
                RemoveNodeLocked(node);
            }

            if (expiredSince || stale.Count > 0)
            {
                ChangedLocked(topology: stale.Count > 0);
            }

            WriteSeenLocked(now, force: false);
        }
    }

    /// <summary>Writes every last-seen time not in the store yet (at shutdown, and when a test wants the store current).</summary>
    public void FlushLastSeen()
    {
        lock (_lock)
        {
            WriteSeenLocked(_time.GetUtcNow(), force: true);
        }
    }

    /// <summary>The node was seen now (a map request, a stream opened or closed): in memory only, written later.</summary>
    private void SeenLocked(long id, DateTimeOffset now)
    {
        _seen[id] = now;
        _seenUnwritten.Add(id);
    }

    /// <summary>When the node was last seen: the later of the store's time (in the node's state) and one not yet written.</summary>
    private DateTimeOffset? LastSeenLocked(long id, DateTimeOffset? stored) =>
        _seen.TryGetValue(id, out var seen) && (stored is null || seen > stored) ? seen : stored;

    /// <summary>
    /// Writes the last-seen times not yet stored, in one transaction: when <see cref="LastSeenWriteInterval"/>
    /// passed since the last write (nodes with an open stream then count as seen now, so after a crash
    /// the store is at most that far behind), after a disconnect, or when <paramref name="force"/>d.
    /// A failed write is logged and retried at the next tick.
    /// </summary>
    private void WriteSeenLocked(DateTimeOffset now, bool force)
    {
        var periodic = force || now - _seenWrittenAt >= LastSeenWriteInterval;
        if (!periodic && !_seenDisconnected)
        {
            return;
        }

        if (periodic)
        {
            foreach (var (id, streams) in _openStreams)
            {
                if (streams > 0 && _nodes.ContainsKey(id))
                {
                    SeenLocked(id, now);
                }
            }
        }

        if (_seenUnwritten.Count > 0)
        {
            var batch = new List<(long, DateTimeOffset)>(_seenUnwritten.Count);
            foreach (var id in _seenUnwritten)
            {
                batch.Add((id, _seen[id]));
            }

            try
            {
                _store.SetNodesLastSeen(batch);
            }
            catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or ObjectDisposedException)
            {
                _logger.LogError(e, "Writing the last-seen times of {Count} nodes failed; retrying at the next tick", batch.Count);
                return;
            }

            _seenUnwritten.Clear();
        }

        _seenDisconnected = false;
        if (periodic)
        {
            _seenWrittenAt = now;
        }
    }

    private void LoadPolicy()
    {
        if (!string.IsNullOrEmpty(_config.Policy.Path))
        {
            var path = _config.Policy.Path;
            if (!File.Exists(path))
            {
                throw new ConfigException($"policy.path {path}: no such file");
            }

            var text = File.ReadAllText(path);
            try
            {
                PolicyEngine.Check(text);
            }
            catch (PolicyException e)
            {
                throw new ConfigException($"policy.path {path}: {e.Message}");
            }

            _policyText = text;
            _policyUpdatedAt = File.GetLastWriteTimeUtc(path);
            return;
        }

        if (_store.GetPolicy() is { } stored && !string.IsNullOrWhiteSpace(stored.Text))
        {
            _policyText = stored.Text;
            _policyUpdatedAt = stored.UpdatedAt;
        }
    }

    private ICompiledPolicy CompileLocked(string text, bool runTests)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            return PolicyEngine.Compile(text, TopologyLocked(), ++_generation, runTests);
        }
        finally
        {
            Metrics.PolicyCompiled(watch.Elapsed);
        }
    }

    private PolicyTopology TopologyLocked() => new(
        [.. _users.Values.Select(u => new PolicyUser(u.Id, u.Name, u.Email))],
        [.. _nodes.Values.Select(ToPolicyNode)]);

    private static PolicyNode ToPolicyNode(MeshNodeState n) =>
        new(n.Name, n.UserName, n.Tags, n.IPv4?.ToString(), n.IPv6?.ToString(), n.AdvertisedRoutes, n.ApprovedRoutes);

    /// <summary>
    /// Records that the in-memory view changed and wakes the map pusher; with
    /// <paramref name="topology"/> (nodes, names, tags, addresses, routes or users changed) the
    /// policy must be compiled again too. Nothing is built here: see <see cref="SnapshotLocked"/>.
    /// </summary>
    private void ChangedLocked(bool topology)
    {
        _policyDirty |= topology;
        _snapshotDirty = true;
        Hub.Signal();
    }

    /// <summary>
    /// The policy compiled against the current nodes, compiled now when they changed since. If it
    /// no longer compiles, the last good one stays in force (and snapshots say so).
    /// </summary>
    private ICompiledPolicy PolicyLocked()
    {
        if (_policyDirty)
        {
            _policyDirty = false;
            try
            {
                _policy = CompileLocked(_policyText, runTests: false);
                _policyMatchesNodes = true;
            }
            catch (PolicyException e)
            {
                _policyMatchesNodes = false;
                _logger.LogError("The policy no longer compiles against the nodes ({Error}); the last good one stays in force", e.Message);
            }
        }

        return _policy;
    }

    /// <summary>The current snapshot, made from the in-memory view when it changed since the last one.</summary>
    private NetmapSnapshot SnapshotLocked()
    {
        if (!_snapshotDirty)
        {
            return _snapshot;
        }

        var policy = PolicyLocked();
        var previous = _snapshot;
        var snapshot = new NetmapSnapshot([.. _nodes.Values], policy, _dns, _relayMap, _config.Dns.BaseDomain, _time.GetUtcNow(), previous, _policyMatchesNodes);
        Volatile.Write(ref _snapshot, snapshot);
        _snapshotDirty = false;
        return snapshot;
    }

    private MeshNodeState FromRecord(NodeRecord record, IEnumerable<RouteRecord> routes, bool online)
    {
        var list = routes.ToList();
        return new MeshNodeState
        {
            Id = record.Id,
            MachineKey = MachineKey.Parse(record.MachineKey),
            NodeKey = NodeKey.Parse(record.NodeKey),
            DiscoKey = record.DiscoKey is null ? null : DiscoKey.Parse(record.DiscoKey),
            UserId = record.UserId,
            UserName = record.UserId is { } uid && _users.TryGetValue(uid, out var user) ? user.Name : null,
            Hostname = record.Hostname,
            Name = record.GivenName,
            Tags = record.Tags,
            IPv4 = record.IPv4 is null ? null : IPAddress.Parse(record.IPv4),
            IPv6 = record.IPv6 is null ? null : IPAddress.Parse(record.IPv6),
            Endpoints = record.Endpoints,
            HomeRelay = record.HomeRelay,
            LastSeen = LastSeenLocked(record.Id, record.LastSeen),
            Expiry = record.Expiry,
            KeyExpiryDisabled = record.KeyExpiryDisabled,
            Ephemeral = record.Ephemeral,
            AdvertisedRoutes = [.. list.Where(r => r.Advertised).Select(r => r.Prefix)],
            ApprovedRoutes = [.. list.Where(r => r.Enabled).Select(r => r.Prefix)],
            Online = online,
            Os = OsOf(record.HostinfoJson),
            CreatedAt = record.CreatedAt,
            Version = ++_generation,
        };
    }

    private static string? OsOf(string? hostinfoJson)
    {
        if (string.IsNullOrEmpty(hostinfoJson))
        {
            return null;
        }

        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(hostinfoJson, ControlJsonContext.Default.Hostinfo)?.Os;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Reloads one node from the store into the in-memory view (after any write to it).</summary>
    private MeshNodeState RefreshLocked(long id)
    {
        var record = _store.GetNode(id) ?? throw new NodeApi.NodeApiException(404, $"node {id} is not registered");
        var online = _openStreams.TryGetValue(id, out var count) && count > 0;
        var node = FromRecord(record, _store.ListRoutes(id), online);
        IndexLocked(node);
        return node;
    }

    /// <summary>Puts a node (new, or a new instance of one) into the in-memory view and its indexes.</summary>
    private void IndexLocked(MeshNodeState node)
    {
        if (_nodes.TryGetValue(node.Id, out var before))
        {
            UnindexLocked(before);
        }

        _nodes[node.Id] = node;
        _byMachine[node.MachineKey] = node.Id;
        _byNodeKey[node.NodeKey] = node.Id;
        _byName[node.Name] = node.Id;
    }

    /// <summary>Drops a node's index entries (only those that still point at it).</summary>
    private void UnindexLocked(MeshNodeState node)
    {
        _nodes.Remove(node.Id);
        if (_byMachine.TryGetValue(node.MachineKey, out var m) && m == node.Id)
        {
            _byMachine.Remove(node.MachineKey);
        }

        if (_byNodeKey.TryGetValue(node.NodeKey, out var k) && k == node.Id)
        {
            _byNodeKey.Remove(node.NodeKey);
        }

        if (_byName.TryGetValue(node.Name, out var n) && n == node.Id)
        {
            _byName.Remove(node.Name);
        }
    }

    private void RemoveNodeLocked(MeshNodeState node)
    {
        _store.DeleteNode(node.Id);
        _seen.Remove(node.Id);
        _seenUnwritten.Remove(node.Id);
        _requestedTags.Remove(node.Id);
        UnindexLocked(_nodes.TryGetValue(node.Id, out var current) ? current : node);
        if (node.IPv4 is not null)
        {
            _ips.Release(node.IPv4);
        }

        if (node.IPv6 is not null)
        {
            _ips.Release(node.IPv6);
        }

        Hub.Close(node.Id);
        NodeRevoked?.Invoke(node.NodeKey);
    }

    /// <summary>A DNS label from a hostname, unique among the nodes: "web", then "web-1", "web-2", ….</summary>
    private string UniqueNameLocked(string hostname, long? exceptId)
    {
        var label = new string([.. hostname.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]).Trim('-');
        if (label.Length == 0)
        {
            label = "node";
        }

        if (label.Length > 63)
        {
            label = label[..63].TrimEnd('-');
        }

        if (!NameTakenLocked(label, exceptId))
        {
            return label;
        }

        for (var i = 1; ; i++)
        {
            var candidate = $"{label}-{i}";
            if (!NameTakenLocked(candidate, exceptId))
            {
                return candidate;
            }
        }
    }

    private bool NameTakenLocked(string name, long? exceptId) => _byName.TryGetValue(name, out var id) && id != exceptId;

    public void Dispose()
    {
        // Shutdown: what was seen since the last write goes to the store before the streams end.
        FlushLastSeen();
        Hub.Dispose();
        Metrics.Dispose();
    }
}
