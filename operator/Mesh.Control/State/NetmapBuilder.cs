using Mesh.Control.Configuration;
using Mesh.Policy;
using Mesh.Protocol.Control;
using ProtocolFilterRule = Mesh.Protocol.Control.FilterRule;

namespace Mesh.Control.State;

/// <summary>
/// Everything a netmap is built from at one instant: the nodes, the compiled policy, which node
/// serves each approved subnet route, and the mesh-wide DNS and relay settings. Immutable; the state
/// makes a new one per change and every map built from it is consistent.
/// </summary>
public sealed class NetmapSnapshot
{
    private readonly Dictionary<long, MapNode> _mapNodes = [];
    private readonly Lock _mapNodesLock = new();
    private NetmapSnapshot? _previous;

    public NetmapSnapshot(IReadOnlyList<MeshNodeState> nodes, ICompiledPolicy policy, DnsConfig dns, RelayMap relayMap, string domain, DateTimeOffset now, NetmapSnapshot? previous = null)
    {
        Nodes = nodes;
        Policy = policy;
        Dns = dns;
        RelayMap = relayMap;
        Domain = domain;
        Now = now;
        ByName = nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        PrimaryRoutes = ElectPrimaries(nodes);
        ById = nodes.ToDictionary(n => n.Id);
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
    /// When the node, its primary routes and its expiry are unchanged since the previous snapshot,
    /// the previous instance is reused: map streams detect changed peers by reference.
    /// </summary>
    public MapNode MapNodeOf(MeshNodeState node)
    {
        lock (_mapNodesLock)
        {
            if (_mapNodes.TryGetValue(node.Id, out var cached))
            {
                return cached;
            }

            var primaries = PrimaryRoutes.TryGetValue(node.Id, out var p) ? p : [];
            var previous = _previous;
            MapNode? reused = null;
            if (previous is not null && previous.ById.TryGetValue(node.Id, out var before) && ReferenceEquals(before, node)
                && node.IsExpired(previous.Now) == node.IsExpired(Now)
                && (previous.PrimaryRoutes.TryGetValue(node.Id, out var beforePrimaries) ? beforePrimaries : []).SequenceEqual(primaries))
            {
                reused = previous.MapNodeOf(node);
            }

            var made = reused ?? NetmapBuilder.ToMapNode(node, primaries, Domain, Now);
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

    /// <summary>Node id → the approved subnet routes it is primary for.</summary>
    public IReadOnlyDictionary<long, IReadOnlyList<string>> PrimaryRoutes { get; }

    /// <summary>
    /// One node serves each approved subnet route (WireGuard cannot route one prefix to two peers):
    /// the lowest-id online node that has it approved, else the lowest-id one. Exit routes are not
    /// elected: every approved exit node is offered and each client picks one.
    /// </summary>
    private static Dictionary<long, IReadOnlyList<string>> ElectPrimaries(IReadOnlyList<MeshNodeState> nodes)
    {
        var byPrefix = new Dictionary<string, MeshNodeState>(StringComparer.Ordinal);
        foreach (var node in nodes.OrderBy(n => n.Online ? 0 : 1).ThenBy(n => n.Id))
        {
            foreach (var route in node.ApprovedRoutes)
            {
                if (!MeshNodeState.IsExitRoute(route) && node.AdvertisedRoutes.Contains(route))
                {
                    byPrefix.TryAdd(route, node);
                }
            }
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

    /// <summary>The relay map: the embedded relay (when enabled) at server_url/derp with its STUN port.</summary>
    public static RelayMap RelayMapFrom(CoordinatorConfig config)
    {
        if (!config.Derp.Server.Enabled)
        {
            return new RelayMap();
        }

        var url = new Uri(config.ServerUrl);
        var stunPort = System.Net.IPEndPoint.TryParse(config.Derp.Server.StunListenAddr, out var stun) ? stun.Port : 3478;
        return new RelayMap
        {
            Regions =
            [
                new RelayRegion
                {
                    RegionId = config.Derp.Server.RegionId,
                    RegionCode = config.Derp.Server.RegionCode,
                    Name = config.Derp.Server.RegionName,
                    Nodes = [new RelayNode { Name = $"{config.Derp.Server.RegionId}a", Url = new Uri(url, "/derp").ToString(), StunEndpoint = $"{url.Host}:{stunPort}" }],
                },
            ],
        };
    }
}
