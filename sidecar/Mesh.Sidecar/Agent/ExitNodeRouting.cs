using System.Net;
using System.Net.Sockets;
using Mesh.Net.Linux;
using Mesh.Protocol.Control;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// `--exit-node NAME|IP`: sends everything that has no more specific route through one peer, an
/// approved exit node, while the agent's own underlay traffic stays outside the tunnel.
/// </summary>
/// <remarks>
/// How: the chosen peer's allowed IPs gain 0.0.0.0/0 and ::/0 (see <see cref="IsExitPeer"/>), and
/// the TUN gets the two halves of each address space (0.0.0.0/1 and 128.0.0.0/1; ::/1 and
/// 8000::/1). Halves beat the default route by being longer, yet lose to every more specific route,
/// so the LAN, the mesh routes and anything the host routes explicitly keep working, and the host's
/// default route is never touched (nothing to restore if the agent dies). Before the halves go in,
/// every underlay address the agent itself talks to — the coordinator, the relays and STUN servers,
/// and every peer's reported endpoints — that would have left through the default route gets a host
/// route (/32 or /128) through that default route's gateway and interface; the set follows each map.
/// This needs nothing from the sockets (no fwmark, no policy rules) at the price of one host route
/// per off-link underlay address; a default route that changes later (a new DHCP lease) is not
/// followed. Everything is removed when the exit node goes away and on shutdown.
/// A peer that is not an approved exit node in the map is refused (logged) and the node runs without
/// an exit node until the map says it is one.
/// </remarks>
internal sealed class ExitNodeRouting : IDisposable
{
    private static readonly Dictionary<AddressFamily, IPNetwork[]> Halves = new()
    {
        [AddressFamily.InterNetwork] = [IPNetwork.Parse("0.0.0.0/1"), IPNetwork.Parse("128.0.0.0/1")],
        [AddressFamily.InterNetworkV6] = [IPNetwork.Parse("::/1"), IPNetwork.Parse("8000::/1")],
    };

    private readonly string? _selector;
    private readonly Uri _loginServer;
    private readonly ILogger _logger;
    private readonly Dictionary<string, IPAddress[]> _resolved = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<IPAddress, (int Interface, IPAddress? Gateway)> _pinned = [];
    private readonly HashSet<AddressFamily> _families = [];
    private int _tunIndex;
    private string? _problem;

    public ExitNodeRouting(string? selector, Uri loginServer, ILogger logger)
    {
        _selector = string.IsNullOrWhiteSpace(selector) ? null : selector.Trim();
        _loginServer = loginServer;
        _logger = logger;
    }

    /// <summary>The exit node in use (an approved one from the map), or null.</summary>
    public MapNode? Current { get; private set; }

    /// <summary>Whether this peer's allowed IPs should include the default routes.</summary>
    public bool IsExitPeer(MapNode peer) => Current is { } current && current.Id == peer.Id;

    /// <summary>Chooses the exit node from the current map; logs once each time the answer changes.</summary>
    public void Select(NetmapView view)
    {
        if (_selector is null)
        {
            return;
        }

        var peer = Find(view.Peers, _selector);
        var problem = peer switch
        {
            null => $"--exit-node {_selector}: no peer of that name or mesh address in this node's map; running without an exit node until it appears",
            { Expired: true } => $"--exit-node {_selector}: {peer.Name}'s key has expired; running without an exit node",
            { ExitNode: false } => $"--exit-node {_selector}: {peer.Name} is not an approved exit node (it must run with --advertise-exit-node and an admin must approve its 0.0.0.0/0 and ::/0 routes); running without an exit node until it is one",
            _ => null,
        };
        if (problem != _problem || (problem is null && Current?.Id != peer!.Id))
        {
            if (problem is not null)
            {
                _logger.LogError("{Problem}", problem);
            }
            else
            {
                _logger.LogInformation("Using exit node {Name} ({Addresses})", peer!.Name, string.Join(", ", peer.Addresses));
            }
        }

        _problem = problem;
        Current = problem is null ? peer : null;
    }

    /// <summary>Finds a peer by name, FQDN or mesh address.</summary>
    public static MapNode? Find(IEnumerable<MapNode> peers, string selector)
    {
        var name = selector.TrimEnd('.');
        return peers.FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase)
            || p.Fqdn.TrimEnd('.').Equals(name, StringComparison.OrdinalIgnoreCase)
            || p.Addresses.Any(a => a.Split('/')[0].Equals(name, StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>Brings the routes in line with <see cref="Current"/> and the map (call after the peers are on the device).</summary>
    public void Apply(RtNetlink netlink, int tunIndex, NetmapView view)
    {
        _tunIndex = tunIndex;
        if (Current is not { } exit || view.Self is not { } self)
        {
            Teardown(netlink);
            return;
        }

        var families = new HashSet<AddressFamily>();
        foreach (var (family, defaultRoute) in new[] { (AddressFamily.InterNetwork, "0.0.0.0/0"), (AddressFamily.InterNetworkV6, "::/0") })
        {
            if (exit.AllowedIps.Contains(defaultRoute) && self.Addresses.Any(a => IPNetwork.Parse(a).BaseAddress.AddressFamily == family))
            {
                families.Add(family);
            }
        }

        // The underlay stays outside the tunnel: pin first, then switch.
        var keep = UnderlayAddresses(view).Where(a => families.Contains(a.AddressFamily)).ToHashSet();
        var tables = new Dictionary<AddressFamily, IReadOnlyList<RouteEntry>>();
        foreach (var address in keep.Where(a => !_pinned.ContainsKey(a)))
        {
            if (!tables.TryGetValue(address.AddressFamily, out var routes))
            {
                tables[address.AddressFamily] = routes = TryDump(netlink, address.AddressFamily);
            }

            // Only what would have used the default route needs a host route: anything more specific still wins over the halves.
            if (RtNetlink.BestMatch(routes, address, tunIndex) is { PrefixLength: 0 } viaDefault
                && TryRoute(() => netlink.AddGatewayRoute(viaDefault.OutputInterface, address, HostLength(address), viaDefault.Gateway)))
            {
                _pinned[address] = (viaDefault.OutputInterface, viaDefault.Gateway);
                _logger.LogDebug("Underlay host {Address} stays outside the tunnel (via {Gateway})", address, viaDefault.Gateway?.ToString() ?? "on-link");
            }
        }

        foreach (var family in families.Where(f => !_families.Contains(f)))
        {
            foreach (var half in Halves[family])
            {
                TryRoute(() => netlink.AddRoute(tunIndex, half.BaseAddress, half.PrefixLength));
            }

            _families.Add(family);
            _logger.LogInformation("{Family} default traffic goes through exit node {Name}", family == AddressFamily.InterNetwork ? "IPv4" : "IPv6", exit.Name);
        }

        foreach (var family in _families.Where(f => !families.Contains(f)).ToList())
        {
            RemoveHalves(netlink, family);
        }

        foreach (var address in _pinned.Keys.Where(a => !keep.Contains(a)).ToList())
        {
            Unpin(netlink, address);
        }
    }

    public void Dispose()
    {
        if (_families.Count == 0 && _pinned.Count == 0)
        {
            return;
        }

        try
        {
            using var netlink = new RtNetlink();
            Teardown(netlink);
        }
        catch (NetlinkException e)
        {
            _logger.LogWarning("Removing the exit node's routes: {Error}", e.Message);
        }
    }

    private void Teardown(RtNetlink netlink)
    {
        foreach (var family in _families.ToList())
        {
            RemoveHalves(netlink, family);
        }

        foreach (var address in _pinned.Keys.ToList())
        {
            Unpin(netlink, address);
        }
    }

    private void RemoveHalves(RtNetlink netlink, AddressFamily family)
    {
        foreach (var half in Halves[family])
        {
            TryRoute(() => netlink.DeleteRoute(_tunIndex, half.BaseAddress, half.PrefixLength), quietIfGone: true);
        }

        _families.Remove(family);
        _logger.LogInformation("{Family} default traffic no longer goes through an exit node", family == AddressFamily.InterNetwork ? "IPv4" : "IPv6");
    }

    private void Unpin(RtNetlink netlink, IPAddress address)
    {
        var (index, gateway) = _pinned[address];
        TryRoute(() => netlink.DeleteGatewayRoute(index, address, HostLength(address), gateway), quietIfGone: true);
        _pinned.Remove(address);
    }

    /// <summary>Every underlay address the agent sends to itself: coordinator, relays, STUN, peers' endpoints.</summary>
    private IEnumerable<IPAddress> UnderlayAddresses(NetmapView view)
    {
        var result = new HashSet<IPAddress>();
        result.UnionWith(Resolve(_loginServer.Host));
        foreach (var node in view.RelayMap?.Regions.SelectMany(r => r.Nodes) ?? [])
        {
            if (Uri.TryCreate(node.Url, UriKind.Absolute, out var url))
            {
                result.UnionWith(Resolve(url.Host));
            }

            foreach (var stun in new[] { node.StunEndpoint, node.StunAlternateEndpoint }.OfType<string>())
            {
                if (IPEndPoint.TryParse(stun, out var endpoint))
                {
                    result.Add(endpoint.Address);
                }
                else if (stun.LastIndexOf(':') is > 0 and var colon)
                {
                    result.UnionWith(Resolve(stun[..colon]));
                }
            }
        }

        foreach (var endpoint in view.Peers.SelectMany(p => p.Endpoints))
        {
            if (IPEndPoint.TryParse(endpoint, out var parsed))
            {
                result.Add(parsed.Address);
            }
        }

        return result.Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
            .Where(a => !IPAddress.IsLoopback(a) && !a.IsIPv6LinkLocal && !Forwarding.MeshV4.Contains(a) && !Forwarding.MeshV6.Contains(a));
    }

    /// <summary>A host's addresses, looked up once (before the default route moves into the tunnel) and remembered.</summary>
    private IPAddress[] Resolve(string host)
    {
        var trimmed = host.Trim('[', ']');
        if (IPAddress.TryParse(trimmed, out var literal))
        {
            return [literal];
        }

        if (!_resolved.TryGetValue(trimmed, out var addresses))
        {
            try
            {
                addresses = System.Net.Dns.GetHostAddresses(trimmed);
            }
            catch (SocketException e)
            {
                _logger.LogWarning("Cannot resolve {Host} to keep it outside the exit node's tunnel: {Error}", trimmed, e.Message);
                addresses = [];
            }

            _resolved[trimmed] = addresses;
        }

        return addresses;
    }

    private IReadOnlyList<RouteEntry> TryDump(RtNetlink netlink, AddressFamily family)
    {
        try
        {
            return netlink.GetRoutes(family);
        }
        catch (NetlinkException e)
        {
            _logger.LogWarning("{Error}", e.Message);
            return [];
        }
    }

    private static int HostLength(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;

    private bool TryRoute(Action action, bool quietIfGone = false)
    {
        try
        {
            action();
            return true;
        }
        catch (NetlinkException e) when (quietIfGone && e.ErrnoName is "ESRCH" or "ENODEV")
        {
            return false;
        }
        catch (NetlinkException e)
        {
            _logger.LogWarning("{Error}", e.Message);
            return false;
        }
    }
}
