using System.Text.Json;
using Mesh.Control.Admin;
using Mesh.Control.Configuration;
using Mesh.Control.NodeApi;
using Mesh.Control.State;
using Mesh.Control.Store;
using Mesh.Control.Tests.Store;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Mesh.WireGuard;

namespace Mesh.Control.Tests.State;

/// <summary>A <see cref="MeshState"/> on a temporary database, driven in-process through its node and admin APIs.</summary>
internal sealed class StateHarness : IDisposable
{
    private readonly TempDatabase _database = new();
    private readonly MeshStore _store;
    private readonly CoordinatorConfig _config;
    private readonly TimeProvider? _time;
    private readonly Dictionary<string, string> _keys = [];
    private readonly HashSet<string> _users = [];
    private int _nextKey;

    /// <param name="time">The state's clock (the system's by default).</param>
    public StateHarness(TimeProvider? time = null)
    {
        _store = _database.Open();
        _config = new CoordinatorConfig();
        _config.Derp.Server.Enabled = false;
        _time = time;
        State = new MeshState(_store, _config, time);
    }

    public MeshState State { get; private set; }

    /// <summary>The database under the state, to see what it wrote.</summary>
    public MeshStore Store => _store;

    /// <summary>Disposes the state (as a coordinator shutting down) and loads a new one from the same database.</summary>
    public void Restart()
    {
        State.Dispose();
        State = new MeshState(_store, _config, _time);
    }
    public IMeshAdmin Admin => State;
    public INodeService Nodes => State;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <param name="tags">Tags for the node (its pre-auth key carries them); none: the node is the user's.</param>
    public async Task<SimNode> RegisterAsync(string hostname, string user = "alice", params string[] tags)
    {
        var keyName = tags.Length == 0 ? user : user + "|" + string.Join(",", tags);
        if (!_keys.TryGetValue(keyName, out var key))
        {
            if (!_keys.ContainsKey(user) && !_users.Contains(user))
            {
                await Admin.CreateUserAsync(user, $"{user}@example.com", null, Token);
            }

            _users.Add(user);
            key = (await Admin.CreatePreAuthKeyAsync(new PreAuthKeyRequest(user, true, false, TimeSpan.FromHours(1), tags), Token)).Key;
            _keys[keyName] = key;
        }

        var node = new SimNode(hostname, new MachineKey(NextKey()), new NodeKey(NextKey()));
        var response = await Nodes.RegisterAsync(node.Machine, new RegisterRequest { NodeKey = node.NodeKey, AuthKey = key, Hostname = hostname }, Token);
        Assert.True(response.Authorized);
        node.Id = response.NodeId;
        return node;
    }

    /// <summary>Reports new endpoints for a node, as a read-only map request does.</summary>
    public Task ReportAsync(SimNode node, params string[] endpoints) =>
        Nodes.MapAsync(node.Machine, new MapRequest { NodeKey = node.NodeKey, Endpoints = endpoints, ReadOnly = true }, Token);

    /// <summary>Advertises routes for a node in its host info, as a read-only map request does.</summary>
    public Task AdvertiseAsync(SimNode node, params string[] routes)
    {
        node.Hostinfo = new Hostinfo { Hostname = node.Hostname, RoutableIps = routes };
        return Nodes.MapAsync(node.Machine, new MapRequest { NodeKey = node.NodeKey, ReadOnly = true, Hostinfo = node.Hostinfo }, Token);
    }

    /// <summary>Approves every route the node advertises (routes enable).</summary>
    public async Task ApproveRoutesAsync(SimNode node)
    {
        foreach (var route in await Admin.ListRoutesAsync(Token))
        {
            if (route.NodeId == node.Id && !route.Enabled)
            {
                await Admin.SetRouteEnabledAsync(route.Id, true, Token);
            }
        }
    }

    public async Task<NodeView> NodeAsync(SimNode node) => await Admin.GetNodeAsync(node.Id, Token);

    /// <summary>Opens a map stream, the node online while it lasts; its request carries the host info last advertised (<see cref="AdvertiseAsync"/>).</summary>
    public async Task<MapStreamReader> OpenStreamAsync(SimNode node) =>
        new(await Nodes.OpenMapStreamAsync(node.Machine, new MapRequest { NodeKey = node.NodeKey, Stream = true, Hostinfo = node.Hostinfo }, Token));

    private NoisePublicKey NextKey()
    {
        var bytes = new byte[NoisePublicKey.Size];
        BitConverter.TryWriteBytes(bytes, ++_nextKey);
        bytes[31] = 0x5a;
        return new NoisePublicKey(bytes);
    }

    public void Dispose()
    {
        State.Dispose();
        _store.Dispose();
        _database.Dispose();
    }
}

internal sealed record SimNode(string Hostname, MachineKey Machine, NodeKey NodeKey)
{
    public long Id { get; set; }

    /// <summary>What the node last advertised (<see cref="StateHarness.AdvertiseAsync"/>); its map streams send it again.</summary>
    public Hostinfo? Hostinfo { get; set; }
}

/// <summary>Applies a map stream's messages as a node would, and counts what they carried.</summary>
internal sealed class MapStreamReader : IAsyncDisposable
{
    private readonly IMapStream _stream;

    public MapStreamReader(IMapStream stream) => _stream = stream;

    public Dictionary<long, MapNode> Peers { get; } = [];
    public MapNode? Self { get; private set; }

    /// <summary>The packet filter in force: the last one received.</summary>
    public IReadOnlyList<FilterRule>? Filter { get; private set; }

    /// <summary>Messages that carried a packet filter (the full map's included).</summary>
    public int FiltersReceived { get; private set; }

    public int Messages { get; private set; }
    public int FullMaps { get; private set; }
    public int PeersChangedEntries { get; private set; }
    public int PeersRemovedEntries { get; private set; }
    public bool Ended { get; private set; }

    /// <summary>Reads and applies messages until <paramref name="condition"/> holds; fails after the deadline.</summary>
    public async Task UntilAsync(Func<MapStreamReader, bool> condition, string what, TimeSpan? timeout = null)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(timeout ?? TimeSpan.FromSeconds(20));
        while (!condition(this))
        {
            try
            {
                if (!await _stream.Updates.WaitToReadAsync(deadline.Token))
                {
                    Ended = true;
                    throw new InvalidOperationException($"the stream ended while waiting for: {what}");
                }
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                throw new TimeoutException($"timed out waiting for: {what}; {Messages} message(s), {Peers.Count} peer(s)");
            }

            while (_stream.Updates.TryRead(out var map))
            {
                Apply(map);
            }
        }
    }

    private void Apply(MapResponse map)
    {
        Messages++;
        if (map.Peers is not null)
        {
            FullMaps++;
            Peers.Clear();
            foreach (var p in map.Peers)
            {
                Peers[p.Id] = p;
            }
        }

        foreach (var p in map.PeersChanged ?? [])
        {
            PeersChangedEntries++;
            Peers[p.Id] = p;
        }

        foreach (var id in map.PeersRemoved ?? [])
        {
            PeersRemovedEntries++;
            Peers.Remove(id);
        }

        Self = map.Self ?? Self;
        if (map.PacketFilter is not null)
        {
            Filter = map.PacketFilter;
            FiltersReceived++;
        }
    }

    /// <summary>Whether what this stream applied equals <paramref name="full"/> (peers compared as JSON, in any order; the packet filter too).</summary>
    public bool Matches(MapResponse full) =>
        Json(Self) == Json(full.Self)
        && FilterJson(Filter) == FilterJson(full.PacketFilter)
        && Peers.Count == full.Peers!.Count
        && full.Peers.All(p => Peers.TryGetValue(p.Id, out var mine) && Json(mine) == Json(p));

    private static string FilterJson(IReadOnlyList<FilterRule>? filter) =>
        JsonSerializer.Serialize(new MapResponse { PacketFilter = filter ?? [] }, ControlJsonContext.Default.MapResponse);

    private static string Json(MapNode? node) =>
        JsonSerializer.Serialize(new MapResponse { Self = node }, ControlJsonContext.Default.MapResponse);

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}

/// <summary>A clock that moves only when told to.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
