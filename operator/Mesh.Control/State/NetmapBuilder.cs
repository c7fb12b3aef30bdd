using Mesh.Control.Configuration;
using Mesh.Policy;
using Mesh.Protocol.Control;
using ProtocolFilterRule = Mesh.Protocol.Control.FilterRule;

namespace Mesh.Control.State;

/// <summary>
/// Everything a netmap is built from at one instant: the nodes, the compiled policy, which node
/// serves each approved subnet route (for everyone, and for the nodes whose via grants steer a route
/// elsewhere, per node: <see cref="PeerRoutesFor"/>), and the mesh-wide DNS and relay settings. Immutable; the state
/// makes a new one per burst of changes (not per change) and every map built from it is consistent.
/// </summary>
public sealed class NetmapSnapshot
{
    private static readonly IReadOnlyDictionary<long, PeerRoutes> NoPeerRoutes = new Dictionary<long, PeerRoutes>();

    private readonly Dictionary<long, MapNode> _mapNodes = [];
    private readonly Dictionary<(long Id, PeerRoutes View), MapNode> _variants = [];
    private readonly Dictionary<long, IReadOnlyDictionary<long, PeerRoutes>> _routeViews = [];
    private readonly Dictionary<long, PeerRoutes?> _selfViews = [];
    private readonly Lock _mapNodesLock = new();
    private readonly Dictionary<string, MeshNodeState> _primaryByPrefix;
    private readonly MeshNodeState[] _exitNodes;
    private NetmapSnapshot? _previous;

    /// <param name="nodes">Every node, in ascending id order (the policy's topology order).</param>
    /// <param name="policyMatchesNodes">
    /// False when the policy could not be compiled against these nodes and an older compile stays in
    /// force: then it may name nodes that are gone or miss new ones.
    /// </param>
    public NetmapSnapshot(IReadOnlyList<MeshNodeState> nodes, ICompiledPolicy policy, DnsConfig dns, RelayMap relayMap, string domain, DateTimeOffset now, NetmapSnapshot? previous = null, bool policyMatchesNodes = true)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        Nodes = nodes;
        Policy = policy;
        Dns = dns;
        RelayMap = relayMap;
        Domain = domain;
        Now = now;
        PolicyMatchesNodes = policyMatchesNodes;
        var byName = new Dictionary<string, MeshNodeState>(nodes.Count, StringComparer.Ordinal);
        var byId = new Dictionary<long, MeshNodeState>(nodes.Count);
        foreach (var node in nodes)
        {
            byName.Add(node.Name, node);
            byId.Add(node.Id, node);
        }

        ByName = byName;
        ById = byId;
        (PrimaryRoutes, _primaryByPrefix, _exitNodes) = ElectPrimaries(nodes);
        _previous = previous;

        // Only one step back is ever needed; cutting the older link keeps the chain from growing.
        if (previous is not null)
        {
            lock (previous._mapNodesLock)
            {
                previous._previous = null;
            }
        }
    }

    public IReadOnlyDictionary<long, MeshNodeState> ById { get; }

    /// <summary>
    /// The peer view of a node in this snapshot, made once and shared by every map built from it.
    /// When the node looks the same as in the previous snapshot (<see cref="SameView"/>) and that one
    /// already made its view, the instance is reused. Map streams do not depend on this: they compare
    /// peers with <see cref="SameView"/>.
    /// </summary>
    public MapNode MapNodeOf(MeshNodeState node)
    {
        ArgumentNullException.ThrowIfNull(node);
        lock (_mapNodesLock)
        {
            if (_mapNodes.TryGetValue(node.Id, out var cached))
            {
                return cached;
            }

            MapNode? reused = null;
            var previous = _previous;
            if (previous is not null && previous.ById.TryGetValue(node.Id, out var before) && SameView(previous, before, this, node))
            {
                lock (previous._mapNodesLock)
                {
                    previous._mapNodes.TryGetValue(node.Id, out reused);
                }
            }

            var made = reused ?? NetmapBuilder.ToMapNode(node, PrimariesOf(node.Id), IsExitNode(node), Domain, Now);
            _mapNodes[node.Id] = made;
            return made;
        }
    }

    public IReadOnlyList<MeshNodeState> Nodes { get; }
    public IReadOnlyDictionary<string, MeshNodeState> ByName { get; }
    public ICompiledPolicy Policy { get; }
    public DnsConfig Dns { get; }
    public RelayMap RelayMap { get; }
    public string Domain { get; }
    public DateTimeOffset Now { get; }

    /// <summary>Whether <see cref="Policy"/> was compiled against exactly <see cref="Nodes"/>' topology.</summary>
    public bool PolicyMatchesNodes { get; }

    /// <summary>Node id → the approved subnet routes it is primary for.</summary>
    public IReadOnlyDictionary<long, IReadOnlyList<string>> PrimaryRoutes { get; }

    /// <summary>The approved subnet routes the node is primary for (empty when none).</summary>
    public IReadOnlyList<string> PrimariesOf(long id) => PrimaryRoutes.TryGetValue(id, out var p) ? p : [];

    /// <summary>
    /// Whether node <paramref name="a"/> in snapshot <paramref name="sa"/> and node <paramref name="b"/>
    /// in <paramref name="sb"/> give the same peer view: a <see cref="MapNode"/> is made of the node's
    /// state (a new instance on every change to the node, <see cref="MeshNodeState"/>), its primary
    /// routes and whether it has expired; nothing else.
    /// </summary>
    public static bool SameView(NetmapSnapshot sa, MeshNodeState a, NetmapSnapshot sb, MeshNodeState b)
    {
        ArgumentNullException.ThrowIfNull(sa);
        ArgumentNullException.ThrowIfNull(sb);
        if (!ReferenceEquals(a, b) || a.IsExpired(sa.Now) != b.IsExpired(sb.Now))
        {
            return false;
        }

        var pa = sa.PrimariesOf(a.Id);
        var pb = sb.PrimariesOf(b.Id);
        return ReferenceEquals(pa, pb) || pa.SequenceEqual(pb, StringComparer.Ordinal);
    }

    /// <summary>
    /// One node serves each approved subnet route (WireGuard cannot route one prefix to two peers):
    /// the lowest-id online node that has it approved, else the lowest-id one. Exit routes are not
    /// elected: every approved exit node is offered and each client picks one. This is the global
    /// election; a node whose via grants steer a route sees it elected among the via routers instead
    /// (<see cref="PeerRoutesFor"/>).
    /// </summary>
    private static (Dictionary<long, IReadOnlyList<string>> ById, Dictionary<string, MeshNodeState> ByPrefix, MeshNodeState[] ExitNodes) ElectPrimaries(IReadOnlyList<MeshNodeState> nodes)
    {
        // Two passes over the id-ordered nodes (online ones first) instead of a sort: most nodes route nothing.
        var byPrefix = new Dictionary<string, MeshNodeState>(StringComparer.Ordinal);
        List<MeshNodeState>? exits = null;
        for (var pass = 0; pass < 2; pass++)
        {
            foreach (var node in nodes)
            {
                if (node.ApprovedRoutes.Count == 0 || node.Online != (pass == 0))
                {
                    continue;
                }

                foreach (var route in node.ApprovedRoutes)
                {
                    if (!MeshNodeState.IsExitRoute(route) && node.AdvertisedRoutes.Contains(route))
                    {
                        byPrefix.TryAdd(route, node);
                    }
                }

                if (IsExitNode(node))
                {
                    (exits ??= []).Add(node);
                }
            }
        }

        var byId = byPrefix.Count == 0
            ? []
            : byPrefix.GroupBy(p => p.Value.Id).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(p => p.Key).Order(StringComparer.Ordinal).ToList());
        return (byId, byPrefix, exits is null ? [] : [.. exits]);
    }

    /// <summary>An approved and advertised exit route makes the node an exit node for everyone (unless via steers a viewer elsewhere).</summary>
    internal static bool IsExitNode(MeshNodeState node) =>
        node.ApprovedRoutes.Any(MeshNodeState.IsExitRoute) && node.AdvertisedRoutes.Any(MeshNodeState.IsExitRoute);

    /// <summary>
    /// The routers whose routes the node sees differently from everyone else because of its via grants, each with
    /// the routes it carries for this node (<see cref="ICompiledPolicy.ViaRoutesFor"/>): for each steered subnet
    /// route, the first online router among the via candidates that has it approved and advertised (else the first
    /// one, offline: the route stays in the tunnel rather than leaking to another router that would drop it), in
    /// place of the global primary; no router at all when no candidate has it. Exit nodes the via grants leave out
    /// lose their exit routes. Empty for a node without via grants, which is almost every node. Made once per node
    /// and snapshot.
    /// </summary>
    public IReadOnlyDictionary<long, PeerRoutes> PeerRoutesFor(MeshNodeState viewer)
    {
        ArgumentNullException.ThrowIfNull(viewer);
        var via = Policy.ViaRoutesFor(viewer.Name);
        if (via.IsEmpty)
        {
            return NoPeerRoutes;
        }

        lock (_mapNodesLock)
        {
            if (_routeViews.TryGetValue(viewer.Id, out var cached))
            {
                return cached;
            }
        }

        var made = BuildPeerRoutes(via);
        lock (_mapNodesLock)
        {
            return _routeViews.TryAdd(viewer.Id, made) ? made : _routeViews[viewer.Id];
        }
    }

    private IReadOnlyDictionary<long, PeerRoutes> BuildPeerRoutes(ViaRoutes via)
    {
        Dictionary<long, (List<string>? Add, List<string>? Remove, bool NoExit)>? changes = null;
        void Change(long id, string? add, string? remove, bool noExit)
        {
            changes ??= [];
            var c = changes.GetValueOrDefault(id);
            if (add is not null)
            {
                (c.Add ??= []).Add(add);
            }

            if (remove is not null)
            {
                (c.Remove ??= []).Add(remove);
            }

            changes[id] = (c.Add, c.Remove, c.NoExit || noExit);
        }

        foreach (var route in via.Subnets)
        {
            var chosen = ElectAmong(route);
            _primaryByPrefix.TryGetValue(route.Prefix, out var global);
            if (chosen?.Id == global?.Id)
            {
                continue;
            }

            if (global is not null)
            {
                Change(global.Id, null, route.Prefix, false);
            }

            if (chosen is not null)
            {
                Change(chosen.Id, route.Prefix, null, false);
            }
        }

        if (via.ExitNodes is { } allowed)
        {
            foreach (var exit in _exitNodes)
            {
                if (!allowed.Contains(exit.Name))
                {
                    Change(exit.Id, null, null, true);
                }
            }
        }

        if (changes is null)
        {
            return NoPeerRoutes;
        }

        var views = new Dictionary<long, PeerRoutes>(changes.Count);
        foreach (var (id, (add, remove, noExit)) in changes)
        {
            if (!ById.TryGetValue(id, out var node))
            {
                continue;
            }

            var primaries = PrimariesOf(id).Except(remove ?? [], StringComparer.Ordinal).Union(add ?? [], StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var view = new PeerRoutes(primaries, IsExitNode(node) && !noExit);
            if (!view.Equals(BaseView(node)))
            {
                views[id] = view;
            }
        }

        return views.Count == 0 ? NoPeerRoutes : views;
    }

    /// <summary>The via candidate that carries a steered route: online first, then in topology (id) order.</summary>
    private MeshNodeState? ElectAmong(ViaRoute route)
    {
        MeshNodeState? offline = null;
        foreach (var name in route.Routers)
        {
            if (ByName.TryGetValue(name, out var node) && node.ApprovedRoutes.Contains(route.Prefix) && node.AdvertisedRoutes.Contains(route.Prefix))
            {
                if (node.Online)
                {
                    return node;
                }

                offline ??= node;
            }
        }

        return offline;
    }

    /// <summary>The routes everyone without via grants sees on the node.</summary>
    private PeerRoutes BaseView(MeshNodeState node) => new(PrimariesOf(node.Id), IsExitNode(node));

    /// <summary>
    /// The routes the node serves in its own map when they differ from its peer view: besides the routes it is the
    /// global primary for, the approved and advertised subnet routes that via grants may send through it, so it
    /// forwards and accepts them whichever viewers elect it (<see cref="ICompiledPolicy.ViaServedRoutes"/>).
    /// Null when its own view is its peer view.
    /// </summary>
    public PeerRoutes? SelfRoutesOf(MeshNodeState node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var served = Policy.ViaServedRoutes(node.Name);
        if (served.Count == 0)
        {
            return null;
        }

        lock (_mapNodesLock)
        {
            if (_selfViews.TryGetValue(node.Id, out var cached))
            {
                return cached;
            }
        }

        var primaries = PrimariesOf(node.Id);
        var extra = served.Where(r => node.ApprovedRoutes.Contains(r) && node.AdvertisedRoutes.Contains(r) && !primaries.Contains(r)).ToList();
        PeerRoutes? view = extra.Count == 0 ? null : new PeerRoutes([.. primaries.Union(extra, StringComparer.Ordinal).Order(StringComparer.Ordinal)], IsExitNode(node));
        lock (_mapNodesLock)
        {
            _selfViews.TryAdd(node.Id, view);
        }

        return view;
    }

    /// <summary>The node as it appears in its own map (<see cref="SelfRoutesOf"/>).</summary>
    public MapNode SelfViewOf(MeshNodeState node) => SelfRoutesOf(node) is { } view ? MapNodeOf(node, view) : MapNodeOf(node);

    /// <summary>Peer <paramref name="peer"/> as <paramref name="viewer"/> sees it, given the viewer's <see cref="PeerRoutesFor"/>.</summary>
    public MapNode ViewOf(IReadOnlyDictionary<long, PeerRoutes> routeViews, MeshNodeState peer)
    {
        ArgumentNullException.ThrowIfNull(routeViews);
        return routeViews.Count > 0 && routeViews.TryGetValue(peer.Id, out var view) ? MapNodeOf(peer, view) : MapNodeOf(peer);
    }

    /// <summary>
    /// The node with the routes of <paramref name="view"/> instead of its global ones: one instance per node and
    /// route view in this snapshot, shared by every viewer that sees the node that way (and reused from the
    /// previous snapshot when the node looks the same there).
    /// </summary>
    public MapNode MapNodeOf(MeshNodeState node, PeerRoutes view)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(view);
        lock (_mapNodesLock)
        {
            if (_variants.TryGetValue((node.Id, view), out var cached))
            {
                return cached;
            }

            MapNode? reused = null;
            var previous = _previous;
            if (previous is not null && previous.ById.TryGetValue(node.Id, out var before) && SameView(previous, before, this, node))
            {
                lock (previous._mapNodesLock)
                {
                    previous._variants.TryGetValue((node.Id, view), out reused);
                }
            }

            var made = reused ?? NetmapBuilder.ToMapNode(node, view.Primaries, view.ExitNode, Domain, Now);
            _variants[(node.Id, view)] = made;
            return made;
        }
    }

    /// <summary>Whether the node looks the same in its own map in both snapshots (<see cref="SameView"/>, and the same <see cref="SelfRoutesOf"/>).</summary>
    public static bool SameSelfView(NetmapSnapshot sa, MeshNodeState a, NetmapSnapshot sb, MeshNodeState b)
    {
        ArgumentNullException.ThrowIfNull(sa);
        ArgumentNullException.ThrowIfNull(sb);
        return SameView(sa, a, sb, b) && Equals(sa.SelfRoutesOf(a), sb.SelfRoutesOf(b));
    }

    /// <summary>
    /// Whether a peer looks the same to a viewer in both snapshots: <see cref="SameView"/>, and the same routes in
    /// the viewer's route views of each (<see cref="PeerRoutesFor"/>).
    /// </summary>
    public static bool SamePeerView(NetmapSnapshot sa, IReadOnlyDictionary<long, PeerRoutes> viewsA, MeshNodeState a, NetmapSnapshot sb, IReadOnlyDictionary<long, PeerRoutes> viewsB, MeshNodeState b)
    {
        ArgumentNullException.ThrowIfNull(viewsA);
        ArgumentNullException.ThrowIfNull(viewsB);
        if (!SameView(sa, a, sb, b))
        {
            return false;
        }

        if (viewsA.Count == 0 && viewsB.Count == 0)
        {
            return true;
        }

        viewsA.TryGetValue(a.Id, out var va);
        viewsB.TryGetValue(b.Id, out var vb);
        return Equals(va, vb);
    }

    /// <summary>
    /// The peers whose route view differs between two route views of one viewer (ascending ids): with the same
    /// nodes and policy, the only peers that can look different to it besides the ones that changed for everyone.
    /// </summary>
    public static List<long> PeerRoutesChanges(IReadOnlyDictionary<long, PeerRoutes> before, IReadOnlyDictionary<long, PeerRoutes> after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var ids = new List<long>();
        if (ReferenceEquals(before, after))
        {
            return ids;
        }

        foreach (var (id, view) in before)
        {
            if (!after.TryGetValue(id, out var other) || !view.Equals(other))
            {
                ids.Add(id);
            }
        }

        foreach (var id in after.Keys)
        {
            if (!before.ContainsKey(id))
            {
                ids.Add(id);
            }
        }

        ids.Sort();
        return ids;
    }
}

/// <summary>
/// The routes one node carries as some viewer sees it: the subnet routes it is primary for (sorted) and whether its
/// exit routes are offered. Compared by value.
/// </summary>
public sealed class PeerRoutes : IEquatable<PeerRoutes>
{
    public PeerRoutes(IReadOnlyList<string> primaries, bool exitNode)
    {
        ArgumentNullException.ThrowIfNull(primaries);
        Primaries = primaries;
        ExitNode = exitNode;
    }

    public IReadOnlyList<string> Primaries { get; }

    public bool ExitNode { get; }

    public bool Equals(PeerRoutes? other) =>
        other is not null && ExitNode == other.ExitNode && Primaries.SequenceEqual(other.Primaries, StringComparer.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as PeerRoutes);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(ExitNode);
        foreach (var p in Primaries)
        {
            hash.Add(p, StringComparer.Ordinal);
        }

        return hash.ToHashCode();
    }

    public override string ToString() => string.Join(",", Primaries) + (ExitNode ? " +exit" : "");
}

/// <summary>
/// Builds one node's <see cref="MapResponse"/> from a <see cref="NetmapSnapshot"/>, in steps:
/// <c>new NetmapBuilder(snapshot, self).WithSelf().WithPeers().WithFilter().WithDns().WithRelayMap().Build()</c>.
/// Peers are the nodes the policy lets this node reach or be reached by, minus expired ones, each with the routes
/// it carries for this node (<see cref="NetmapSnapshot.PeerRoutesFor"/>: the global primaries, unless via grants
/// steer this node's routes to other routers).
/// </summary>
public sealed class NetmapBuilder
{
    private readonly NetmapSnapshot _snapshot;
    private readonly MeshNodeState _self;
    private MapNode? _selfNode;
    private List<MapNode>? _peers;
    private List<ProtocolFilterRule>? _filter;
    private DnsConfig? _dns;
    private RelayMap? _relayMap;

    public NetmapBuilder(NetmapSnapshot snapshot, MeshNodeState self)
    {
        _snapshot = snapshot;
        _self = self;
    }

    public NetmapBuilder WithSelf()
    {
        _selfNode = _snapshot.SelfViewOf(_self);
        return this;
    }

    public NetmapBuilder WithPeers()
    {
        _peers = [];
        var routeViews = _snapshot.PeerRoutesFor(_self);
        foreach (var name in _snapshot.Policy.PeersOf(_self.Name))
        {
            if (_snapshot.ByName.TryGetValue(name, out var peer) && peer.Id != _self.Id && !peer.IsExpired(_snapshot.Now))
            {
                _peers.Add(_snapshot.ViewOf(routeViews, peer));
            }
        }

        return this;
    }

    public NetmapBuilder WithFilter()
    {
        _filter = [];
        foreach (var rule in _snapshot.Policy.FilterFor(_self.Name) ?? [])
        {
            _filter.Add(new ProtocolFilterRule
            {
                SrcIPs = rule.SrcIPs,
                DstPorts = rule.DstPorts.Select(d => new Mesh.Protocol.Control.NetPortRange { IP = d.IP, Ports = new Mesh.Protocol.Control.PortRange { First = d.Ports.First, Last = d.Ports.Last } }).ToList(),
                IPProto = rule.IPProto,
            });
        }

        return this;
    }

    public NetmapBuilder WithDns()
    {
        _dns = _snapshot.Dns;
        return this;
    }

    public NetmapBuilder WithRelayMap()
    {
        _relayMap = _snapshot.RelayMap;
        return this;
    }

    public MapResponse Build() => new()
    {
        Self = _selfNode,
        Peers = _peers,
        PacketFilter = _filter,
        Dns = _dns,
        RelayMap = _relayMap,
        Domain = _snapshot.Domain,
    };

    /// <param name="primaries">The subnet routes the node carries for the viewer(s) of this entry.</param>
    /// <param name="exitNode">Whether its approved exit routes are offered to them.</param>
    internal static MapNode ToMapNode(MeshNodeState node, IReadOnlyList<string> primaries, bool exitNode, string domain, DateTimeOffset now)
    {
        var addresses = node.HostPrefixes().ToList();
        var allowed = new List<string>(addresses);
        allowed.AddRange(primaries);
        if (exitNode)
        {
            allowed.AddRange(node.ApprovedRoutes.Where(r => MeshNodeState.IsExitRoute(r) && node.AdvertisedRoutes.Contains(r)));
        }

        return new MapNode
        {
            Id = node.Id,
            Name = node.Name,
            Fqdn = $"{node.Name}.{domain}.",
            User = node.IsTagged ? null : node.UserName,
            Tags = node.Tags,
            NodeKey = node.NodeKey,
            MachineKey = node.MachineKey,
            DiscoKey = node.DiscoKey,
            Addresses = addresses,
            AllowedIps = allowed,
            Endpoints = node.Endpoints,
            HomeRelay = node.HomeRelay,
            Online = node.Online,
            LastSeen = node.LastSeen,
            KeyExpiry = node.KeyExpiryDisabled ? null : node.Expiry,
            Expired = node.IsExpired(now),
            PrimaryRoutes = primaries,
            ExitNode = exitNode,
        };
    }

    /// <summary>The mesh-wide DNS settings a node receives (MagicDNS on the base domain).</summary>
    public static DnsConfig DnsFrom(CoordinatorConfig config) => new()
    {
        MagicDns = config.Dns.MagicDns,
        BaseDomain = config.Dns.BaseDomain,
        Nameservers = config.Dns.Nameservers.Global,
        SearchDomains = config.Dns.MagicDns ? [config.Dns.BaseDomain, .. config.Dns.SearchDomains] : config.Dns.SearchDomains,
        ExtraRecords = config.Dns.ExtraRecords.Select(r => new DnsRecord(r.Name, r.Type, r.Value)).ToList(),
    };

    /// <summary>The relay map: the embedded relay (when enabled) at server_url/derp with its STUN port and alternate STUN port.</summary>
    public static RelayMap RelayMapFrom(CoordinatorConfig config)
    {
        if (!config.Derp.Server.Enabled)
        {
            return new RelayMap();
        }

        var url = new Uri(config.ServerUrl);
        var stunPort = System.Net.IPEndPoint.TryParse(config.Derp.Server.StunListenAddr, out var stun) ? stun.Port : 3478;
        var alternatePort = config.Derp.Server.ResolvedStunAlternatePort;
        return new RelayMap
        {
            Regions =
            [
                new RelayRegion
                {
                    RegionId = config.Derp.Server.RegionId,
                    RegionCode = config.Derp.Server.RegionCode,
                    Name = config.Derp.Server.RegionName,
                    Nodes =
                    [
                        new RelayNode
                        {
                            Name = $"{config.Derp.Server.RegionId}a",
                            Url = new Uri(url, "/derp").ToString(),
                            StunEndpoint = $"{url.Host}:{stunPort}",
                            StunAlternateEndpoint = alternatePort is > 0 ? $"{url.Host}:{alternatePort}" : null,
                        },
                    ],
                },
            ],
        };
    }
}
