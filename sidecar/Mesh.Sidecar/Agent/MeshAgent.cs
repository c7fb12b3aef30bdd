using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Mesh.Net.Device;
using Mesh.Net.Linux;
using Mesh.Net.Uapi;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Mesh.Sidecar.Dns;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// `mesh-sidecar up`: the node agent. It keeps its identity in the state directory, registers with
/// the coordinator over the control channel, holds the map stream, and applies every map to the
/// WireGuard device as it arrives: the TUN's addresses, the peers (keys, allowed IPs, endpoints), the
/// routes for peers (and their subnet routes with --accept-routes). It serves the local API that
/// `status`, `ip` and `down` use. When the coordinator is away the tunnels stay up and the agent
/// reconnects with backoff; a restarted agent keeps its keys and so its mesh IPs.
/// </summary>
internal sealed class MeshAgent : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(4);
    private const int PersistentKeepalive = 25;

    private readonly AgentOptions _options;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Lock _lock = new();
    private readonly NetmapView _view = new();
    private readonly HashSet<string> _addresses = new(StringComparer.Ordinal);
    private readonly HashSet<string> _routes = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _down = new();
    private readonly AgentFilter _filter = AgentFilter.Closed();
    private readonly Forwarding _forwarding;
    private readonly ExitNodeRouting _exitRouting;
    private AgentState _state = null!;
    private WireGuardDevice? _device;
    private ControlClient? _control;
    private LocalApiServer? _api;
    private string _backendState = "Starting";
    private MagicDnsServer? _dns;
    private AgentRelay? _relay;
    private EndpointDiscovery? _discovery;
    private PathProber? _prober;
    private AgentMetrics? _metrics;
    private IPEndPoint? _publicEndpoint;
    private readonly Dictionary<Mesh.WireGuard.NoisePublicKey, PeerPath> _paths = [];

    /// <summary>No confirmed session this long: the direct path does not work (both ways); try the relay.</summary>
    private static readonly TimeSpan FirstContactTimeout = TimeSpan.FromSeconds(4);

    /// <summary>Nothing heard this long (peers send a keepalive every 25 s): the direct path broke.</summary>
    private static readonly TimeSpan SilenceTimeout = TimeSpan.FromSeconds(40);

    /// <summary>While relayed (or without a session), ping the peer's candidates this often.</summary>
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(5);

    private sealed class PeerPath
    {
        /// <summary>Since when the peer has had no confirmed session; null while it has one.</summary>
        public DateTime? NoSessionSince { get; set; } = DateTime.UtcNow;
        public DateTime LastProbe { get; set; }
        /// <summary>Every endpoint the peer reported: local addresses and its STUN-discovered public one.</summary>
        public IReadOnlyList<IPEndPoint> Candidates { get; set; } = [];
    }
    private ResolvConfTakeover? _resolvConf;
    private readonly List<(int Index, IPAddress Address, int Length)> _loopbackAddresses = [];

    public MeshAgent(AgentOptions options, ILoggerFactory loggerFactory)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("agent");
        _forwarding = new Forwarding(options.Tun, loggerFactory.CreateLogger("routing"));
        _exitRouting = new ExitNodeRouting(options.ExitNode, options.LoginServer, loggerFactory.CreateLogger("routing"));
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _down.Token);
        var token = linked.Token;
        _state = AgentState.LoadOrCreate(_options.StateDirectory);
        if (_state.LoginServer != _options.LoginServer.ToString())
        {
            _state.ServerKey = null;
            _state.LoginServer = _options.LoginServer.ToString();
            _state.Save(_options.StateDirectory);
        }

        _device = WireGuardDevice.Create(new WireGuardDeviceOptions
        {
            InterfaceName = _options.Tun,
            Mtu = _options.Mtu,
            ListenPort = _options.Port,
            Logger = _loggerFactory.CreateLogger("device"),
            ManagedPaths = true,
        });
        _device.Apply(new UapiSetRequest { PrivateKey = _state.NodeKeyBytes });
        _device.Filter = _filter;
        var discovery = _discovery = new EndpointDiscovery(_device);
        var prober = _prober = new PathProber(_device, _loggerFactory.CreateLogger("paths"));

        // One socket: WireGuard (the device's own), path probes, STUN answers.
        _device.OtherDatagrams = (datagram, from) => _ = prober.TryHandle(datagram, from) || discovery.TryHandle(datagram);
        _device.Start();
        if (_options.MetricsPort > 0)
        {
            _metrics = new AgentMetrics(_options.MetricsPort, _device, _filter, () => _backendState == "Running");
        }

        if (_options.AcceptDns)
        {
            StartDns();
        }

        _api = new LocalApiServer(_options.Socket, Handle);
        _control = new ControlClient(_options.LoginServer, _state.MachineKeyBytes, _state.PinnedServerKey);

        var paths = Task.Run(() => ManagePathsAsync(token), CancellationToken.None);
        var confirmations = Task.Run(() => FollowConfirmedPathsAsync(token), CancellationToken.None);
        var endpoints = Task.Run(() => DiscoverEndpointsAsync(token), CancellationToken.None);
        var backoff = TimeSpan.FromMilliseconds(500);
        var registered = false;
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (!registered)
                {
                    await RegisterAsync(token).ConfigureAwait(false);
                    registered = true;
                }

                _backendState = "Running";
                await foreach (var map in _control.MapStreamAsync(MapRequest(), token).ConfigureAwait(false))
                {
                    backoff = TimeSpan.FromMilliseconds(500);
                    Apply(map);
                }

                _logger.LogWarning("The coordinator ended the map stream; reconnecting");
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (ControlRequestException e) when (e.Status is 401 or 403 or 404)
            {
                _backendState = "NeedsLogin";
                _logger.LogWarning("The coordinator refused this node ({Reason}); registering again", e.Message);
                registered = false;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or ControlProtocolException or ControlRequestException or TimeoutException)
            {
                _backendState = "Reconnecting";
                _logger.LogWarning("Lost the coordinator ({Reason}); tunnels stay up, retrying in {Delay} s", e.Message, backoff.TotalSeconds);
            }

            try
            {
                await Task.Delay(backoff, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }

        // Both loops end on the same token; let them finish before the device goes away.
        await Task.WhenAll(paths, confirmations, endpoints).ConfigureAwait(false);
    }

    /// <summary>
    /// Every 30 s (and soon after the first map): asks the relay's STUN server for this node's public
    /// endpoint; when it is new, reports it to the coordinator with the local ones, so peers behind
    /// other NATs can reach this node directly.
    /// </summary>
    private async Task DiscoverEndpointsAsync(CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromSeconds(2);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
                RelayMap? map;
                lock (_lock)
                {
                    map = _view.RelayMap;
                }

                var server = EndpointDiscovery.StunServersOf(map).FirstOrDefault();

                if (server is null || _discovery is null || _control is null)
                {
                    continue;
                }

                interval = TimeSpan.FromSeconds(30);
                var (mapped, _) = await _discovery.QueryAsync(server, TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
                _logger.LogDebug("STUN {Server}: {Mapped}", server, mapped?.ToString() ?? "no answer");
                if (mapped is null || mapped.Equals(_publicEndpoint))
                {
                    continue;
                }

                // Whether it is one of this host's own addresses is asked before it is remembered
                // (LocalEndpoints lists the remembered public endpoint too).
                var isLocal = LocalEndpoints().Contains(mapped.ToString());
                _publicEndpoint = mapped;
                if (!isLocal)
                {
                    _logger.LogInformation("Public endpoint {Endpoint} (STUN {Server})", mapped, server);
                    await _control.MapAsync(MapRequest() with { Stream = false, ReadOnly = true }, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or ControlRequestException or ControlProtocolException)
            {
                _logger.LogDebug("Endpoint discovery: {Error}", e.Message);
            }
        }
    }

    /// <summary>Starts the relay connection once the map names a relay, and tracks each peer's direct candidates.</summary>
    private void UpdatePathsLocked()
    {
        if (_relay is null && _view.RelayMap?.Regions.FirstOrDefault() is { } region && region.Nodes.FirstOrDefault() is { } node
            && Uri.TryCreate(node.Url, UriKind.Absolute, out var url))
        {
            _relay = new AgentRelay(url, region.RegionCode, _state.NodeKeyBytes, _state.PinnedServerKey?.Value, _device!, _loggerFactory.CreateLogger("relay"));
            _device!.Relay = _relay;
        }

        _prober!.SetPeers(_view.Peers.Where(p => p.DiscoKey is not null).Select(p => (p.NodeKey.Value, p.DiscoKey!.Value.Value)));
        var now = DateTime.UtcNow;
        var seen = new HashSet<Mesh.WireGuard.NoisePublicKey>();
        foreach (var peer in _view.Peers)
        {
            var key = peer.NodeKey.Value;
            seen.Add(key);
            var isNew = !_paths.TryGetValue(key, out var path);
            if (isNew)
            {
                _paths[key] = path = new PeerPath();
            }

            path!.Candidates = [.. peer.Endpoints.Select(e => IPEndPoint.TryParse(e, out var ep) ? ep : null).OfType<IPEndPoint>()];
            if (isNew)
            {
                Probe(key, path, now); // first contact: find out at once which candidates answer
            }
        }

        foreach (var key in _paths.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _paths.Remove(key);
        }
    }

    /// <summary>
    /// Path selection, every second. A direct path without a confirmed session for 4 s (the first
    /// handshake got no answer) or silent for 40 s moves the peer to the relay. While a peer is
    /// relayed, or has no session yet, its candidates are pinged every 5 s; a pong (a round trip
    /// seen on that exact path) moves it to direct (<see cref="FollowConfirmedPathsAsync"/>).
    /// The WireGuard engine never knows which path a packet took.
    /// </summary>
    private async Task ManagePathsAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                lock (_lock)
                {
                    ManagePathsLocked();
                }

                _prober?.Expire();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void ManagePathsLocked()
    {
        if (_device is null)
        {
            return;
        }

        var relayUp = _relay is { Connected: true };
        var now = DateTime.UtcNow;
        var engineNow = _device.Engine.Now;
        foreach (var (key, path) in _paths)
        {
            if (!_device.Engine.TryGetPeer(key, out var peer))
            {
                continue;
            }

            // Health is a confirmed session, not inbound packets: on a one-way path this node still
            // hears the peer's initiations while its own answers are lost.
            if (peer.CurrentKeypair is not null)
            {
                if (path.NoSessionSince is not null)
                {
                    _logger.LogDebug("Session with {Peer} ({Path})", key, _device.PathOf(key));
                }

                path.NoSessionSince = null;
            }
            else
            {
                path.NoSessionSince ??= now;
            }

            var relayed = _device.IsRelayed(key);
            if (!relayed && relayUp)
            {
                var broken = (path.NoSessionSince is { } since && now - since > FirstContactTimeout)
                    || (peer.LastReceived is { } last && engineNow - last > SilenceTimeout);
                if (broken)
                {
                    _logger.LogInformation("No answer from {Peer} on its direct path; using the relay", key);
                    _device.UseRelay(key);
                    _device.Poke(key);
                    relayed = true;
                }
            }

            if ((relayed || path.NoSessionSince is not null) && now - path.LastProbe >= ProbeInterval)
            {
                Probe(key, path, now);
            }
        }
    }

    /// <summary>Pings every candidate of the peer: local addresses and the public one (behind a NAT only that one may work).</summary>
    private void Probe(Mesh.WireGuard.NoisePublicKey key, PeerPath path, DateTime now)
    {
        path.LastProbe = now;
        foreach (var candidate in path.Candidates)
        {
            _prober!.Ping(key, candidate);
        }
    }

    /// <summary>
    /// A round trip seen on a direct path: a relayed peer (or one whose current path has no session)
    /// moves to it. A peer that already has a working direct path keeps it; WireGuard's roaming
    /// follows it when it moves.
    /// </summary>
    private async Task FollowConfirmedPathsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var confirmed in _prober!.Confirmed.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                lock (_lock)
                {
                    if (_device is null || !_paths.TryGetValue(confirmed.Peer, out var path))
                    {
                        continue;
                    }

                    var relayed = _device.IsRelayed(confirmed.Peer);
                    if (!relayed && path.NoSessionSince is null)
                    {
                        continue;
                    }

                    _logger.LogInformation("Direct path to {Peer} at {Endpoint} confirmed ({RoundTrip:0.#} ms){Leaving}",
                        confirmed.Peer, confirmed.Endpoint, confirmed.RoundTrip.TotalMilliseconds, relayed ? "; leaving the relay" : "");
                    _device.UseDirect(confirmed.Peer, confirmed.Endpoint);
                    if (path.NoSessionSince is not null)
                    {
                        path.NoSessionSince = DateTime.UtcNow; // the new path gets its own time to complete a handshake
                    }

                    _device.Poke(confirmed.Peer);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// MagicDNS inside the node: its two addresses go on the loopback interface — local to every
    /// application of the node, and never chosen as the source of tunnel traffic (on the TUN, the
    /// first address added becomes the interface's primary and the kernel would send mesh packets
    /// from 100.100.100.100, which peers rightly refuse). The server forwards names it does not own
    /// to the resolvers the host had. With --resolv-conf, that file points at MagicDNS while up.
    /// </summary>
    private void StartDns()
    {
        using var netlink = new RtNetlink();
        var loopback = netlink.GetInterfaceIndex("lo");
        foreach (var endpoint in MagicDnsAddresses.DefaultEndpoints)
        {
            var length = endpoint.Address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            try
            {
                netlink.AddAddress(loopback, endpoint.Address, length);
                _loopbackAddresses.Add((loopback, endpoint.Address, length));
            }
            catch (NetlinkException e) when (e.ErrnoName == "EEXIST")
            {
                // Another agent (or an earlier one) already put it there; it stays theirs to remove.
            }
        }

        IReadOnlyList<IPEndPoint> fallback = [];
        try
        {
            fallback = ResolvConf.Read(_options.ResolvConfPath ?? "/etc/resolv.conf").Upstreams();
        }
        catch (IOException)
        {
        }

        _dns = new MagicDnsServer(new MagicDnsServerOptions { Endpoints = MagicDnsAddresses.DefaultEndpoints, FallbackNameservers = fallback }, MagicDnsRecords.Empty, _loggerFactory.CreateLogger<MagicDnsServer>());
        _dns.Start();
        if (_options.ResolvConfPath is { } path)
        {
            _resolvConf = ResolvConfTakeover.Install(path, []);
        }

        _logger.LogInformation("MagicDNS on {V4} and {V6}", MagicDnsAddresses.IPv4, MagicDnsAddresses.IPv6);
    }

    /// <summary>The MagicDNS records of the current map: this node, its peers, the extra records.</summary>
    private void UpdateDns()
    {
        if (_dns is null || _view.Self is null)
        {
            return;
        }

        var dns = _view.Dns;
        var baseDomain = dns?.BaseDomain ?? _view.Domain ?? "mesh.internal";
        var nodes = new List<MagicDnsNode> { new(_view.Self.Name, [.. _view.Self.Addresses.Select(a => IPNetwork.Parse(a).BaseAddress)]) };
        nodes.AddRange(_view.Peers.Where(p => !p.Expired).Select(p => new MagicDnsNode(p.Name, [.. p.Addresses.Select(a => IPNetwork.Parse(a).BaseAddress)])));
        var extra = new List<MagicDnsExtraRecord>();
        foreach (var record in dns?.ExtraRecords ?? [])
        {
            try
            {
                extra.Add(MagicDnsExtraRecord.Parse(record.Name, record.Type, record.Value));
            }
            catch (ArgumentException e)
            {
                _logger.LogWarning("Ignoring extra DNS record {Name}: {Error}", record.Name, e.Message);
            }
        }

        var nameservers = new List<IPEndPoint>();
        foreach (var ns in dns?.Nameservers ?? [])
        {
            if (MagicDnsRecords.TryParseNameserver(ns, out var endpoint))
            {
                nameservers.Add(endpoint);
            }
        }

        var search = dns?.SearchDomains is { Count: > 0 } s ? s : [baseDomain];
        _dns.Update(new MagicDnsRecords(baseDomain, nodes, extra, search, nameservers));
        _resolvConf?.Update(search);
    }

    /// <summary>Registers; a machine already registered first tries without its auth key (a single-use key is spent).</summary>
    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        if (_state.ServerKey is null)
        {
            var key = await _control!.FetchServerKeyAsync(cancellationToken).ConfigureAwait(false);
            _state.ServerKey = key.ToString();
            _state.Save(_options.StateDirectory);
            _logger.LogInformation("Pinned coordinator key {Key}", key);
        }

        var nodeKey = NodeKeyOf(_state.NodeKeyBytes);
        RegisterResponse response;
        try
        {
            response = await _control!.RegisterAsync(new RegisterRequest { NodeKey = nodeKey, Hostname = _options.Hostname, Os = "linux", RequestTags = _options.AdvertiseTags }, cancellationToken).ConfigureAwait(false);
        }
        catch (ControlRequestException e) when (e.Status == 401 && _options.AuthKey is not null)
        {
            _logger.LogDebug("Not registered yet ({Reason}); using the auth key", e.Message);
            response = await _control!.RegisterAsync(new RegisterRequest { NodeKey = nodeKey, Hostname = _options.Hostname, Os = "linux", AuthKey = _options.AuthKey, RequestTags = _options.AdvertiseTags }, cancellationToken).ConfigureAwait(false);
        }

        _logger.LogInformation("Registered as {Name} ({Addresses})", response.Name, string.Join(", ", response.Addresses));
    }

    private MapRequest MapRequest() => new()
    {
        NodeKey = NodeKeyOf(_state.NodeKeyBytes),
        DiscoKey = _prober is null ? null : new DiscoKey(_prober.PublicKey),
        Endpoints = LocalEndpoints(),
        Hostinfo = new Hostinfo
        {
            Hostname = _options.Hostname,
            Os = "linux",
            RoutableIps = _options.AdvertiseRoutes,
            AdvertiseExitNode = _options.AdvertiseExitNode,
            RequestTags = _options.AdvertiseTags,
        },
        Stream = true,
    };

    private void Apply(MapResponse map)
    {
        lock (_lock)
        {
            if (!_view.Apply(map) || _view.Self is null || _device is null)
            {
                return;
            }

            _filter.Update(_view.PacketFilter, _view.Self);
            _exitRouting.Select(_view);
            using var netlink = new RtNetlink();
            SyncAddresses(netlink);
            var request = PeersRequest(out var routes);
            _exitRouting.Apply(netlink, _device.InterfaceIndex, _view); // before the device: a new peer's endpoint must never route into the tunnel
            _device.Apply(request);
            SyncRoutes(netlink, routes);
            _forwarding.Update(_view.Self.PrimaryRoutes, _view.Self.ExitNode);
            UpdateDns();
            UpdatePathsLocked();
        }
    }

    private void SyncAddresses(RtNetlink netlink)
    {
        var desired = _view.Self!.Addresses.ToHashSet(StringComparer.Ordinal);
        foreach (var address in desired.Where(a => !_addresses.Contains(a)))
        {
            var prefix = IPNetwork.Parse(address);
            netlink.AddAddress(_device!.InterfaceIndex, prefix.BaseAddress, prefix.PrefixLength);
            _addresses.Add(address);
            _logger.LogInformation("Address {Address} on {Tun}", address, _options.Tun);
        }

        foreach (var address in _addresses.Where(a => !desired.Contains(a)).ToList())
        {
            var prefix = IPNetwork.Parse(address);
            TryNetlink(() => netlink.DeleteAddress(_device!.InterfaceIndex, prefix.BaseAddress, prefix.PrefixLength));
            _addresses.Remove(address);
        }
    }

    /// <summary>The device's peer set from the map: every visible, unexpired peer with its allowed IPs and an endpoint.</summary>
    private UapiSetRequest PeersRequest(out HashSet<string> routes)
    {
        routes = new HashSet<string>(StringComparer.Ordinal);
        var current = _device!.GetState().Peers.ToDictionary(p => Convert.ToBase64String(p.PublicKey));
        var updates = new List<UapiPeerUpdate>();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var peer in _view.Peers)
        {
            if (peer.Expired)
            {
                continue;
            }

            var key = peer.NodeKey.Value.ToArray();
            var id = Convert.ToBase64String(key);
            wanted.Add(id);
            var allowed = new List<IPNetwork>();
            foreach (var prefix in peer.AllowedIps)
            {
                var network = IPNetwork.Parse(prefix);
                var isAddress = peer.Addresses.Contains(prefix);
                if (isAddress || (_options.AcceptRoutes && network.PrefixLength > 0))
                {
                    allowed.Add(network);
                    routes.Add(network.ToString());
                }
                else if (network.PrefixLength == 0 && _exitRouting.IsExitPeer(peer))
                {
                    allowed.Add(network); // routed by ExitNodeRouting, not by a route per prefix
                }
            }

            IPEndPoint? endpoint = null;
            if (!current.TryGetValue(id, out var existing) || existing.Endpoint is null)
            {
                endpoint = ChooseEndpoint(peer.Endpoints);
            }

            updates.Add(new UapiPeerUpdate
            {
                PublicKey = key,
                Endpoint = endpoint,
                PersistentKeepaliveInterval = PersistentKeepalive,
                ReplaceAllowedIps = true,
                AllowedIps = allowed,
            });
        }

        foreach (var (id, peer) in current)
        {
            if (!wanted.Contains(id))
            {
                updates.Add(new UapiPeerUpdate { PublicKey = peer.PublicKey, Remove = true });
            }
        }

        return new UapiSetRequest { Peers = updates };
    }

    private void SyncRoutes(RtNetlink netlink, HashSet<string> desired)
    {
        foreach (var route in desired.Where(r => !_routes.Contains(r)))
        {
            var prefix = IPNetwork.Parse(route);
            if (TryNetlink(() => netlink.AddRoute(_device!.InterfaceIndex, prefix.BaseAddress, prefix.PrefixLength)))
            {
                _routes.Add(route);
            }
        }

        foreach (var route in _routes.Where(r => !desired.Contains(r)).ToList())
        {
            var prefix = IPNetwork.Parse(route);
            TryNetlink(() => netlink.DeleteRoute(_device!.InterfaceIndex, prefix.BaseAddress, prefix.PrefixLength));
            _routes.Remove(route);
        }
    }

    private bool TryNetlink(Action action)
    {
        try
        {
            action();
            return true;
        }
        catch (NetlinkException e)
        {
            _logger.LogWarning("{Error}", e.Message);
            return false;
        }
    }

    /// <summary>The peer's first reported IPv4 endpoint, else its first one.</summary>
    private static IPEndPoint? ChooseEndpoint(IReadOnlyList<string> endpoints)
    {
        IPEndPoint? fallback = null;
        foreach (var text in endpoints)
        {
            if (IPEndPoint.TryParse(text, out var endpoint))
            {
                if (endpoint.AddressFamily == AddressFamily.InterNetwork)
                {
                    return endpoint;
                }

                fallback ??= endpoint;
            }
        }

        return fallback;
    }

    /// <summary>The addresses of this host's interfaces (not loopback, link-local, the TUN or mesh ones) with the WireGuard port.</summary>
    private List<string> LocalEndpoints()
    {
        var port = _device?.ListenPort ?? _options.Port;
        var meshV4 = IPNetwork.Parse("100.64.0.0/10");
        var meshV6 = IPNetwork.Parse("fd7a:115c:a1e0::/48");
        var endpoints = new List<string>();
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.Name == _options.Tun || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback || nic.OperationalStatus != OperationalStatus.Up)
            {
                continue;
            }

            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                var address = unicast.Address;
                if (IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal || meshV4.Contains(address) || meshV6.Contains(address))
                {
                    continue;
                }

                endpoints.Add(new IPEndPoint(address, port).ToString());
            }
        }

        if (_publicEndpoint is { } mapped && !endpoints.Contains(mapped.ToString()))
        {
            endpoints.Add(mapped.ToString());
        }

        return endpoints;
    }

    private static NodeKey NodeKeyOf(byte[] privateKey)
    {
        var pub = new byte[32];
        Mesh.WireGuard.Crypto.X25519.PublicKey(privateKey, pub);
        return new NodeKey(new Mesh.WireGuard.NoisePublicKey(pub));
    }

    private async Task<LocalResponse> Handle(LocalRequest request)
    {
        switch (request.Op)
        {
            case "status":
                return new LocalResponse(true, Status: Status());
            case "ping":
                return await PingAsync(request.Argument).ConfigureAwait(false);
            case "netcheck":
                return await NetcheckAsync().ConfigureAwait(false);
            case "ip":
                lock (_lock)
                {
                    return new LocalResponse(true, Ips: [.. (_view.Self?.Addresses ?? []).Select(a => a.Split('/')[0])]);
                }

            case "down":
                _logger.LogInformation("Going down on request");
                _down.Cancel();
                return new LocalResponse(true, Message: "going down");
            default:
                return new LocalResponse(false, $"unknown operation \"{request.Op}\"");
        }
    }

    /// <summary>
    /// `netcheck`: does UDP get out (a STUN answer on the WireGuard socket), what is the public
    /// endpoint, does the mapping vary by destination (the mappings of the WireGuard socket that
    /// two or more STUN endpoints saw, compared), and the relay.
    /// </summary>
    private async Task<LocalResponse> NetcheckAsync()
    {
        RelayMap? map;
        lock (_lock)
        {
            map = _view.RelayMap;
        }

        var servers = EndpointDiscovery.StunServersOf(map);
        var lines = new List<string>();
        var answers = new List<(IPEndPoint Server, IPEndPoint Mapped)>();
        foreach (var server in servers)
        {
            var (mapped, latency) = await _discovery!.QueryAsync(server, TimeSpan.FromSeconds(3), CancellationToken.None).ConfigureAwait(false);
            lines.Add(mapped is null ? $"stun {server}: no answer" : $"stun {server}: {mapped} in {latency.TotalMilliseconds:0.#} ms");
            if (mapped is not null)
            {
                answers.Add((server, mapped));
            }
        }

        lines.Insert(0, $"udp: {(answers.Count > 0 ? "yes" : servers.Count == 0 ? "unknown (the map names no STUN server)" : "no (no STUN answer)")}");
        lines.Insert(1, $"public endpoint: {(answers.Count > 0 ? answers[0].Mapped.ToString() : "-")}");
        lines.Insert(2, $"mapping varies by destination: {MappingVariesByDestination(answers, servers.Count)}");
        if (_relay is { } relay)
        {
            var latency = await relay.PingAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(false);
            lines.Add($"relay \"{relay.RegionCode}\" {relay.Url}: {(latency is { } rtt ? $"connected, {rtt.TotalMilliseconds:0.#} ms" : relay.Connected ? "connected, no answer to a ping in 3 s" : "not connected")}");
        }
        else
        {
            lines.Add("relay: none in the map");
        }

        return new LocalResponse(true, Message: string.Join('\n', lines));
    }

    /// <summary>
    /// Netcheck's verdict on the NAT's mapping: the public endpoints that different STUN
    /// destinations saw for the same (WireGuard) socket, compared. Two ports of one server detect a
    /// NAT that maps per destination port (what hole punching cares about; Linux's
    /// <c>MASQUERADE --random-fully</c> does it); a NAT that maps per destination IP alone shows only
    /// with STUN servers on different IPs.
    /// </summary>
    internal static string MappingVariesByDestination(IReadOnlyList<(IPEndPoint Server, IPEndPoint Mapped)> answers, int servers)
    {
        if (answers.Count < 2)
        {
            return servers switch
            {
                0 => "unknown (the relay map names no STUN server)",
                1 => "unknown (the relay map names one STUN endpoint; comparing needs two, such as the coordinator's derp.server.stun_alternate_port)",
                _ => $"unknown ({answers.Count} of {servers} STUN endpoints answered; comparing needs two)",
            };
        }

        var compared = string.Join(" and ", answers.Select(a => a.Server));
        var how = answers.Select(a => a.Server.Address).Distinct().Count() == 1 ? "one IP, different ports" : "different IPs";
        return answers.Select(a => a.Mapped).Distinct().Count() > 1
            ? $"yes (STUN {compared}, {how}, saw different mappings: the NAT gives each destination its own mapping; peers reach this node directly only after it has sent to them, and use the relay when both ends are behind such NATs)"
            : $"no (STUN {compared}, {how}, saw the same mapping)";
    }

    /// <summary>Finds a peer by MagicDNS name, FQDN or mesh IP.</summary>
    private MapNode? FindPeer(string target)
    {
        var name = target.TrimEnd('.');
        foreach (var peer in _view.Peers)
        {
            if (peer.Name.Equals(name, StringComparison.OrdinalIgnoreCase) || peer.Fqdn.TrimEnd('.').Equals(name, StringComparison.OrdinalIgnoreCase)
                || peer.Addresses.Any(a => a.Split('/')[0] == name))
            {
                return peer;
            }
        }

        return null;
    }

    /// <summary>An ICMP echo to the peer's mesh address, through the tunnel, reporting the path it took.</summary>
    private async Task<LocalResponse> PingAsync(string? target)
    {
        if (string.IsNullOrWhiteSpace(target))
        {
            return new LocalResponse(false, "ping needs a node: a name, a FQDN or a mesh IP");
        }

        MapNode? peer;
        lock (_lock)
        {
            peer = FindPeer(target);
        }

        if (peer is null)
        {
            return new LocalResponse(false, $"no peer named or addressed \"{target}\" in this node's map (mesh-sidecar status lists them)");
        }

        var ip = peer.Addresses.Select(a => IPNetwork.Parse(a).BaseAddress).OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).First();
        using var ping = new Ping();
        PingReply? reply = null;
        for (var attempt = 0; attempt < 3 && reply?.Status != IPStatus.Success; attempt++)
        {
            // The first echo may wait for a handshake; a couple more give the path time to settle.
            reply = await ping.SendPingAsync(ip, TimeSpan.FromSeconds(2), null, null).ConfigureAwait(false);
        }

        var path = Status().Peers.FirstOrDefault(p => p.Name == peer.Name)?.Path ?? "-";
        var answered = reply?.Status == IPStatus.Success;
        return new LocalResponse(true, Ping: new PingReport(peer.Name, ip.ToString(), answered, answered ? reply!.RoundtripTime : null, path));
    }

    private StatusReport Status()
    {
        lock (_lock)
        {
            var devicePeers = _device?.GetState().Peers.ToDictionary(p => Convert.ToBase64String(p.PublicKey)) ?? [];
            var self = _view.Self;
            var selfNode = new StatusNode(
                _options.Hostname,
                self?.Name ?? "-",
                [.. (self?.Addresses ?? []).Select(a => a.Split('/')[0])],
                _backendState == "Running",
                "-",
                0,
                0,
                null,
                self?.User,
                self?.Tags);
            var peers = new List<StatusNode>();
            foreach (var peer in _view.Peers.OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                devicePeers.TryGetValue(Convert.ToBase64String(peer.NodeKey.Value.ToArray()), out var state);
                var handshake = state is { LastHandshakeTimeSec: > 0 } ? DateTimeOffset.FromUnixTimeSeconds(state.LastHandshakeTimeSec) : (DateTimeOffset?)null;
                var route = _device!.PathOf(peer.NodeKey.Value);
                var path = handshake is null ? "-" : route == "relay" ? $"relay \"{_relay?.RegionCode}\"" : route;
                peers.Add(new StatusNode(peer.Name, peer.Name, [.. peer.Addresses.Select(a => a.Split('/')[0])], peer.Online, path, (long)(state?.RxBytes ?? 0), (long)(state?.TxBytes ?? 0), handshake, peer.User, peer.Tags));
            }

            return new StatusReport(selfNode, peers, _backendState);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_api is not null)
        {
            await _api.DisposeAsync().ConfigureAwait(false);
        }

        _metrics?.Dispose();
        _control?.Dispose();
        if (_relay is not null)
        {
            await _relay.DisposeAsync().ConfigureAwait(false);
        }

        if (_dns is not null)
        {
            await _dns.DisposeAsync().ConfigureAwait(false);
        }

        _resolvConf?.Restore();
        if (_loopbackAddresses.Count > 0)
        {
            using var netlink = new RtNetlink();
            foreach (var (index, address, length) in _loopbackAddresses)
            {
                TryNetlink(() => netlink.DeleteAddress(index, address, length));
            }
        }

        lock (_lock)
        {
            _exitRouting.Dispose();
            _forwarding.Dispose();
        }

        _device?.Dispose();
        _down.Dispose();
    }
}
