using Mesh.Control.Configuration;
using Mesh.Policy;
using Mesh.Protocol.Control;
using ProtocolFilterRule = Mesh.Protocol.Control.FilterRule;

namespace Mesh.Control.State;

/// <summary>
/// Everything a netmap is built from at one instant: the nodes, the compiled policy, which node
/// serves each approved subnet route, and the mesh-wide DNS and relay settings. Immutable; the state
/// makes a new one per burst of changes (not per change) and every map built from it is consistent.
/// </summary>
public sealed class NetmapSnapshot
{
    private readonly Dictionary<long, MapNode> _mapNodes = [];
    private readonly Lock _mapNodesLock = new();
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
        PrimaryRoutes = ElectPrimaries(nodes);
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

            var made = reused ?? NetmapBuilder.ToMapNode(node, PrimariesOf(node.Id), Domain, Now);
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
    /// elected: every approved exit node is offered and each client picks one.
    /// </summary>
    private static Dictionary<long, IReadOnlyList<string>> ElectPrimaries(IReadOnlyList<MeshNodeState> nodes)
    {
        // Two passes over the id-ordered nodes (online ones first) instead of a sort: most nodes route nothing.
        Dictionary<string, MeshNodeState>? byPrefix = null;
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
                        byPrefix ??= new Dictionary<string, MeshNodeState>(StringComparer.Ordinal);
                        byPrefix.TryAdd(route, node);
                    }
                }
            }
        }

        if (byPrefix is null)
        {
            return [];
        }

        return byPrefix.GroupBy(p => p.Value.Id).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(p => p.Key).Order(StringComparer.Ordinal).ToList());
    }
}

/// <summary>
/// Builds one node's <see cref="MapResponse"/> from a <see cref="NetmapSnapshot"/>, in steps:
/// <c>new NetmapBuilder(snapshot, self).WithSelf().WithPeers().WithFilter().WithDns().WithRelayMap().Build()</c>.
/// Peers are the nodes the policy lets this node reach or be reached by, minus expired ones.
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
        _selfNode = _snapshot.MapNodeOf(_self);
        return this;
    }

    public NetmapBuilder WithPeers()
    {
        _peers = [];
        foreach (var name in _snapshot.Policy.PeersOf(_self.Name))
        {
            if (_snapshot.ByName.TryGetValue(name, out var peer) && peer.Id != _self.Id && !peer.IsExpired(_snapshot.Now))
            {
                _peers.Add(_snapshot.MapNodeOf(peer));
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

    internal static MapNode ToMapNode(MeshNodeState node, IReadOnlyList<string> primaries, string domain, DateTimeOffset now)
    {
        var exitNode = node.ApprovedRoutes.Any(MeshNodeState.IsExitRoute) && node.AdvertisedRoutes.Any(MeshNodeState.IsExitRoute);
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
