using System.Net;
using Mesh.Net.Linux;
using Mesh.Net.Uapi;
using Mesh.WireGuard;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Net.Device;

/// <summary>Settings of a <see cref="WireGuardDevice"/>.</summary>
public sealed class WireGuardDeviceOptions
{
    public required string InterfaceName { get; init; }
    public int Mtu { get; init; } = 1420;

    /// <summary>UDP port to listen on; 0 picks one.</summary>
    public int ListenPort { get; init; }

    public TimeProvider? Time { get; init; }
    public IRandomSource? Random { get; init; }
    public ILogger? Logger { get; init; }

    /// <summary>
    /// Handshake messages per second above which the device counts as under load and demands
    /// cookies (mac2) before doing Diffie-Hellman work (whitepaper §5.3).
    /// </summary>
    public int UnderLoadHandshakesPerSecond { get; init; } = 256;

    /// <summary>How often the timers of every peer are evaluated.</summary>
    public TimeSpan TimerInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// False (plain WireGuard): a relayed peer's authenticated direct packet moves it back to the
    /// direct path at once. True (the mesh agent): a relayed peer moves back only through
    /// <see cref="WireGuardDevice.UseDirect"/>, after the agent has seen a round trip on that path —
    /// on a one-way path, packets that arrive directly say nothing about whether answers get back.
    /// Roaming between direct endpoints follows WireGuard either way.
    /// </summary>
    public bool ManagedPaths { get; init; }

    /// <summary>
    /// Kernel offloads on the data path (TSO on the TUN, UDP GSO and GRO on the socket, GRO on TUN
    /// writes): true by default; each falls back to the plain path on its own when the kernel
    /// refuses it. False: one system call per packet on the TUN, as before they existed. The default
    /// comes from the environment: <c>MESH_OFFLOADS=off</c> (or 0) turns them off, an escape hatch
    /// for kernels or middleboxes that misbehave with them.
    /// </summary>
    public bool Offloads { get; init; } = Environment.GetEnvironmentVariable("MESH_OFFLOADS") is not ("off" or "0");
}

/// <summary>
/// A userspace WireGuard interface on Linux: a TUN device and one dual-stack UDP socket around the
/// pure <see cref="WireGuardEngine"/>. Three threads move packets: the TUN reader encrypts bursts of
/// outbound packets and sends them with one sendmmsg; the UDP reader decrypts batches from
/// recvmmsg and writes them to the TUN; the timer thread runs the protocol timers. Configuration
/// comes through <see cref="Apply"/> (the UAPI <c>set</c> model, also used for wg-quick files) and is
/// read back through <see cref="GetState"/>, so `wg show` and `wg set` work unchanged.
/// Not here: addresses and routes of the interface (the caller sets them with <see cref="RtNetlink"/>).
/// </summary>
public sealed partial class WireGuardDevice : IUapiDevice, IDisposable
{
    private const int SendBatchSize = 64;
    private const int ReceiveBatchSize = 64;
    private const int GroReceiveBatchSize = 32;
    private const int MaxTimerMessagesPerPeer = 4;

    private readonly WireGuardDeviceOptions _options;
    private readonly ILogger _logger;
    private readonly TunDevice _tun;
    private readonly Lock _configLock = new();
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Thread> _threads = [];
    private BatchUdpSocket _udp;
    private uint _fwMark;
    private long _rxPackets;
    private long _txPackets;
    private long _noEndpointDrops;
    private long _tunWriteErrors;
    private long _filterDrops;
    private long _relayedIn;
    private long _relayedOut;
    private long _directRxBytes;
    private long _directTxBytes;
    private long _relayRxBytes;
    private long _relayTxBytes;
    private long _removedPeersRxBytes;
    private long _removedPeersTxBytes;
    private IRelayTransport? _relay;
    private OtherDatagramHandler? _otherDatagrams;
    private readonly Lock _relayLock = new();
    private readonly byte[] _relayOutput = new byte[65536];
    private IPacketFilterHook? _filter;
    private long _handshakeWindowStart;
    private int _handshakesInWindow;
    private long _underLoadUntil;
    private int _disposed;
    private bool _udpGro;

    private WireGuardDevice(WireGuardDeviceOptions options, TunDevice tun, BatchUdpSocket udp)
    {
        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;
        _tun = tun;
        _udp = udp;
        Engine = new WireGuardEngine(options.Time, options.Random) { Mtu = options.Mtu };
    }

    public WireGuardEngine Engine { get; }
    public string Name => _tun.Name;
    public int InterfaceIndex => _tun.InterfaceIndex;
    public int Mtu => _tun.Mtu;
    public int ListenPort => Volatile.Read(ref _udp).LocalPort;

    /// <summary>The inbound filter, swapped atomically; null lets every authenticated packet through (plain WireGuard).</summary>
    public IPacketFilterHook? Filter
    {
        get => Volatile.Read(ref _filter);
        set => Volatile.Write(ref _filter, value);
    }

    /// <summary>Where packets go for peers on the relay path; null: no relay.</summary>
    public IRelayTransport? Relay
    {
        get => Volatile.Read(ref _relay);
        set => Volatile.Write(ref _relay, value);
    }

    public long RelayedIn => Interlocked.Read(ref _relayedIn);

    public long RelayedOut => Interlocked.Read(ref _relayedOut);

    /// <summary>
    /// Sends the peer's traffic through the relay from now on. A direct packet from it roams it back,
    /// unless the device's paths are managed (<see cref="WireGuardDeviceOptions.ManagedPaths"/>).
    /// </summary>
    public void UseRelay(NoisePublicKey peer)
    {
        if (Engine.TryGetPeer(peer, out var p) && p.Context is DevicePeer devicePeer)
        {
            devicePeer.UseRelay();
        }
    }

    /// <summary>Sends the peer's traffic straight to <paramref name="endpoint"/> from now on (a path the caller confirmed).</summary>
    public void UseDirect(NoisePublicKey peer, System.Net.IPEndPoint endpoint)
    {
        if (Engine.TryGetPeer(peer, out var p) && p.Context is DevicePeer devicePeer)
        {
            devicePeer.SetEndpoint(UdpEndpoint.FromIPEndPoint(endpoint));
        }
    }

    /// <summary>True while the peer's packets go through the relay.</summary>
    public bool IsRelayed(NoisePublicKey peer) =>
        Engine.TryGetPeer(peer, out var p) && p.Context is DevicePeer { ViaRelay: true };

    /// <summary>Receives datagrams on the WireGuard port that are not WireGuard messages (e.g. STUN answers).</summary>
    public OtherDatagramHandler? OtherDatagrams
    {
        get => Volatile.Read(ref _otherDatagrams);
        set => Volatile.Write(ref _otherDatagrams, value);
    }

    /// <summary>Sends a datagram from the WireGuard socket (so the network sees the same source port as WireGuard's).</summary>
    public bool SendRaw(ReadOnlySpan<byte> datagram, System.Net.IPEndPoint destination) =>
        Volatile.Read(ref _udp).Send(datagram, UdpEndpoint.FromIPEndPoint(destination));

    /// <summary>WireGuard's four message types, each a 32-bit little-endian word 1..4 (three zero bytes).</summary>
    private static bool IsWireGuardMessage(ReadOnlySpan<byte> datagram) =>
        datagram.Length >= 4 && datagram[0] is >= 1 and <= 4 && datagram[1] == 0 && datagram[2] == 0 && datagram[3] == 0;

    /// <summary>Sends the peer a keepalive (or starts a handshake) on its current path.</summary>
    public void Poke(NoisePublicKey peer)
    {
        if (Engine.TryGetPeer(peer, out var p) && p.Context is DevicePeer devicePeer)
        {
            var buffer = new byte[256];
            Send(devicePeer, p.SendKeepalive(buffer), buffer);
        }
    }

    /// <summary>The path a peer's packets take now: "direct IP:PORT", "relay", or "-" (none yet).</summary>
    public string PathOf(NoisePublicKey peer)
    {
        if (!Engine.TryGetPeer(peer, out var p) || p.Context is not DevicePeer devicePeer)
        {
            return "-";
        }

        if (devicePeer.ViaRelay)
        {
            return "relay";
        }

        return devicePeer.TryGetEndpoint(out var endpoint) ? $"direct {endpoint}" : "-";
    }

    /// <summary>Bytes and packets per peer are in the engine; these are the device's own.</summary>
    public long FilterDrops => Interlocked.Read(ref _filterDrops);

    /// <summary>Creates the TUN interface (up, with its MTU) and binds the UDP port. Call <see cref="Start"/> to move packets.</summary>
    public static WireGuardDevice Create(WireGuardDeviceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var tun = TunDevice.Create(options.InterfaceName, options.Mtu, options.Offloads);
        try
        {
            var udp = new BatchUdpSocket(options.ListenPort);
            if (!options.Offloads)
            {
                udp.DisableGso();
            }

            var device = new WireGuardDevice(options, tun, udp);
            device._udpGro = options.Offloads && udp.TryEnableGro();
            return device;
        }
        catch
        {
            tun.Dispose();
            throw;
        }
    }

    public void Start()
    {
        lock (_configLock)
        {
            if (_threads.Count > 0)
            {
                return;
            }

            _threads.Add(StartThread("tun", _tun.VirtioHeaders ? TunLoopOffload : TunLoop));
            _threads.Add(StartThread("udp", UdpLoop));
            _threads.Add(StartThread("timers", TimerLoop));
        }

        DeviceLog.Up(_logger, Name, Mtu, ListenPort);
        DeviceLog.Offloads(_logger, Name, _tun.VirtioHeaders, Volatile.Read(ref _udp).GsoEnabled, _udpGro);
    }

    /// <summary>Packets and drops so far.</summary>
    public DeviceCounters GetCounters()
    {
        var drops = new Dictionary<string, long>();
        for (var i = 1; i < _drops.Length; i++)
        {
            var n = Interlocked.Read(ref _drops[i]);
            if (n > 0)
            {
                drops[((DropReason)i).ToString()] = n;
            }
        }

        var noEndpoint = Interlocked.Read(ref _noEndpointDrops);
        if (noEndpoint > 0)
        {
            drops["NoEndpoint"] = noEndpoint;
        }

        var filtered = Interlocked.Read(ref _filterDrops);
        if (filtered > 0)
        {
            drops["Filtered"] = filtered;
        }

        var tunErrors = Interlocked.Read(ref _tunWriteErrors);
        if (tunErrors > 0)
        {
            drops["TunWriteFailed"] = tunErrors;
        }

        var paths = new PathBytes(Interlocked.Read(ref _directRxBytes), Interlocked.Read(ref _directTxBytes), Interlocked.Read(ref _relayRxBytes), Interlocked.Read(ref _relayTxBytes));
        return new DeviceCounters(Interlocked.Read(ref _rxPackets), Interlocked.Read(ref _txPackets), drops, paths);
    }

    public UapiDeviceState GetState()
    {
        lock (_configLock)
        {
            var peers = new List<UapiPeerState>();
            foreach (var peer in Engine.Peers)
            {
                var ns = peer.LastHandshakeUnixNanoseconds;
                IPEndPoint? endpoint = null;
                if (peer.Context is DevicePeer dp && dp.TryGetEndpoint(out var ep))
                {
                    endpoint = ep.ToIPEndPoint();
                }

                peers.Add(new UapiPeerState
                {
                    PublicKey = peer.PublicKey.ToArray(),
                    PresharedKey = peer.Keys.HasPresharedKey ? peer.Keys.PresharedKey.ToArray() : null,
                    Endpoint = endpoint,
                    PersistentKeepaliveInterval = peer.PersistentKeepaliveInterval,
                    LastHandshakeTimeSec = ns / 1_000_000_000,
                    LastHandshakeTimeNsec = ns % 1_000_000_000,
                    RxBytes = (ulong)peer.RxBytes,
                    TxBytes = (ulong)peer.TxBytes,
                    AllowedIps = Engine.AllowedIps.PrefixesOf(peer),
                });
            }

            return new UapiDeviceState
            {
                PrivateKey = Engine.Identity?.PrivateKey.ToArray(),
                ListenPort = ListenPort,
                FwMark = _fwMark,
                Peers = peers,
            };
        }
    }

    public void Apply(UapiSetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_configLock)
        {
            if (request.PrivateKey is { } privateKey)
            {
                Engine.SetPrivateKey(UapiProtocol.IsZeroKey(privateKey) ? ReadOnlySpan<byte>.Empty : privateKey);
            }

            if (request.ListenPort is { } port && port != ListenPort)
            {
                Rebind(port);
            }

            if (request.FwMark is { } mark)
            {
                _fwMark = mark;
            }

            if (request.ReplacePeers)
            {
                foreach (var peer in Engine.Peers.ToList())
                {
                    RemovePeer(peer.PublicKey);
                }
            }

            foreach (var update in request.Peers)
            {
                ApplyPeer(update);
            }
        }
    }

    private void ApplyPeer(UapiPeerUpdate update)
    {
        var key = new NoisePublicKey(update.PublicKey);
        if (Engine.Identity is { } identity && key == new NoisePublicKey(identity.PublicKey))
        {
            return; // a device is never its own peer
        }

        if (update.Remove)
        {
            RemovePeer(key);
            return;
        }

        if (!Engine.TryGetPeer(key, out var peer))
        {
            if (update.UpdateOnly)
            {
                return;
            }

            peer = Engine.AddPeer(key);
        }

        if (peer.Context is not DevicePeer devicePeer)
        {
            devicePeer = new DevicePeer(peer);
            peer.Context = devicePeer;
        }

        if (update.PresharedKey is { } psk)
        {
            peer.Keys.SetPresharedKey(UapiProtocol.IsZeroKey(psk) ? ReadOnlySpan<byte>.Empty : psk);
        }

        var learnedEndpoint = false;
        if (update.Endpoint is { } endpoint)
        {
            learnedEndpoint = !devicePeer.TryGetDirectEndpoint(out _);
            devicePeer.SetEndpoint(UdpEndpoint.FromIPEndPoint(endpoint));
        }

        if (update.ReplaceAllowedIps)
        {
            Engine.AllowedIps.RemoveAll(peer);
        }

        foreach (var prefix in update.AllowedIps)
        {
            Engine.AllowedIps.Insert(prefix.BaseAddress, prefix.PrefixLength, peer);
        }

        foreach (var prefix in update.RemovedAllowedIps)
        {
            if (Engine.AllowedIps.PrefixesOf(peer).Contains(prefix))
            {
                Engine.AllowedIps.Remove(prefix.BaseAddress, prefix.PrefixLength);
            }
        }

        var keepaliveNow = false;
        if (update.PersistentKeepaliveInterval is { } interval)
        {
            var old = peer.PersistentKeepaliveInterval;
            peer.PersistentKeepaliveInterval = interval;

            // As the reference implementations do: a newly enabled keepalive goes out at once.
            keepaliveNow = old == 0 && interval > 0;
        }

        // A peer that only now has somewhere to send to (its endpoint arrived after the peer did)
        // and a keepalive to keep: handshake now rather than at the next retransmission.
        keepaliveNow |= learnedEndpoint && peer.PersistentKeepaliveInterval > 0 && peer.CurrentKeypair is null;
        if (keepaliveNow && _threads.Count > 0)
        {
            var buffer = new byte[256];
            Send(devicePeer, peer.SendKeepalive(buffer), buffer);
        }
    }

    /// <summary>Removes a peer, keeping its byte counts in <see cref="PeerBytes"/>.</summary>
    private void RemovePeer(NoisePublicKey key)
    {
        if (Engine.TryGetPeer(key, out var peer))
        {
            Engine.RemovePeer(key);
            Interlocked.Add(ref _removedPeersRxBytes, peer.RxBytes);
            Interlocked.Add(ref _removedPeersTxBytes, peer.TxBytes);
        }
    }

    /// <summary>
    /// Bytes received from and sent to peers since the device started, as the engine counts them per
    /// peer (what `wg show` reports), including peers removed since: it only grows.
    /// </summary>
    public (long Rx, long Tx) PeerBytes()
    {
        long rx = Interlocked.Read(ref _removedPeersRxBytes), tx = Interlocked.Read(ref _removedPeersTxBytes);
        foreach (var peer in Engine.Peers)
        {
            rx += peer.RxBytes;
            tx += peer.TxBytes;
        }

        return (rx, tx);
    }

    private void Rebind(int port)
    {
        BatchUdpSocket replacement;
        try
        {
            replacement = new BatchUdpSocket(port);
        }
        catch (SystemCallException e) when (e.Errno == Errno.EADDRINUSE)
        {
            throw new UapiException(UapiErrno.AddressInUse, $"UDP port {port} is in use");
        }

        if (!_options.Offloads)
        {
            replacement.DisableGso();
        }

        if (_udpGro)
        {
            // The receive loop sized its slots for coalesced reads; without GRO it still works, only slower.
            _ = replacement.TryEnableGro();
        }

        var old = Interlocked.Exchange(ref _udp, replacement);
        old.Dispose();
        DeviceLog.PortChanged(_logger, Name, replacement.LocalPort);
    }

    private Thread StartThread(string name, Action loop)
    {
        var thread = new Thread(() =>
        {
            try
            {
                loop();
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                DeviceLog.LoopFailed(_logger, name, Name, e);
            }
            catch (ObjectDisposedException)
            {
            }
        })
        {
            IsBackground = true,
            Name = $"{name}:{Name}",
        };
        thread.Start();
        return thread;
    }

    /// <summary>TUN → encrypt → UDP. Drains whatever the TUN has queued into one sendmmsg.</summary>
    private void TunLoop()
    {
        var packet = GC.AllocateUninitializedArray<byte>(Math.Max(_tun.Mtu, 1280) + 64, pinned: true);
        using var batch = PacketBatch.Create(SendBatchSize, Math.Max(_tun.Mtu, 1280) + 64);
        while (!_stop.IsCancellationRequested)
        {
            var n = _tun.Read(packet);
            if (n <= 0)
            {
                return;
            }

            var count = 0;
            while (true)
            {
                Volatile.Read(ref _filter)?.Outbound(packet.AsSpan(0, n));
                var result = Engine.Encapsulate(packet.AsSpan(0, n), batch.GetBuffer(count));
                if (result.Action == TunnelAction.SendToPeer)
                {
                    var target = (DevicePeer)result.Peer!.Context!;
                    if (target.TryGetEndpoint(out var endpoint))
                    {
                        batch.SetLength(count, result.Length);
                        batch.SetEndpoint(count, endpoint);
                        count++;
                    }
                    else if (target.ViaRelay && Volatile.Read(ref _relay) is { } relay)
                    {
                        if (relay.Send(target.Peer.PublicKey, batch.GetBuffer(count)[..result.Length]))
                        {
                            Interlocked.Increment(ref _relayedOut);
                            Interlocked.Add(ref _relayTxBytes, result.Length);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref _noEndpointDrops);
                    }
                }
                else if (result.Action == TunnelAction.Drop)
                {
                    Interlocked.Increment(ref _drops[(int)result.Reason]);
                }

                if (count == SendBatchSize)
                {
                    Flush(batch, count);
                    count = 0;
                }

                n = _tun.TryRead(packet);
                if (n <= 0)
                {
                    break;
                }
            }

            Flush(batch, count);
        }
    }

    private void Flush(PacketBatch batch, int count)
    {
        if (count > 0)
        {
            Interlocked.Add(ref _txPackets, Volatile.Read(ref _udp).SendBatch(batch, count, out var bytes));
            Interlocked.Add(ref _directTxBytes, bytes);
        }
    }

    /// <summary>UDP → decrypt → TUN, plus handshake replies and roaming.</summary>
    private void UdpLoop()
    {
        // With UDP GRO a slot may hold a coalesced run of up to 64 KB; fewer, larger slots then.
        var bufferSize = _udpGro ? 65535 : Math.Max(_tun.Mtu, 1500) + 128;
        using var batch = PacketBatch.Create(_udpGro ? GroReceiveBatchSize : ReceiveBatchSize, bufferSize);
        var output = GC.AllocateUninitializedArray<byte>(Math.Max(_tun.Mtu, 1500) + 128, pinned: true);
        var coalescer = _tun.VirtioHeaders ? new Offload.TcpCoalescer(new TunFrameWriter(this)) : null;
        Span<byte> source = stackalloc byte[18];
        while (!_stop.IsCancellationRequested)
        {
            var udp = Volatile.Read(ref _udp);
            var received = udp.ReceiveBatch(batch);
            if (received == 0)
            {
                if (ReferenceEquals(udp, Volatile.Read(ref _udp)))
                {
                    return; // disposed, not rebound
                }

                continue;
            }

            Interlocked.Add(ref _rxPackets, received);
            long wireGuardBytes = 0;
            for (var i = 0; i < received; i++)
            {
                var slot = batch.GetDatagram(i);
                var from = batch.GetEndpoint(i);
                from.WriteAddress(source);
                source[16] = (byte)(from.Port >> 8);
                source[17] = (byte)from.Port;

                // A GRO slot holds a run of datagrams of one size (the last may be shorter).
                var segmentSize = batch.GetSegmentSize(i);
                if (segmentSize == 0)
                {
                    segmentSize = slot.Length;
                }
                else
                {
                    Interlocked.Add(ref _rxPackets, (slot.Length + segmentSize - 1) / segmentSize - 1);
                }

                for (var offset = 0; offset < slot.Length; offset += segmentSize)
                {
                    var datagram = slot.Slice(offset, Math.Min(segmentSize, slot.Length - offset));
                    if (!IsWireGuardMessage(datagram) && Volatile.Read(ref _otherDatagrams) is { } other)
                    {
                        // One socket carries WireGuard and the agent's own protocols (STUN answers).
                        other(datagram, from.ToIPEndPoint());
                        continue;
                    }

                    wireGuardBytes += datagram.Length;
                    Handle(datagram, source, output, from, udp, relayFrom: null, coalescer);
                }
            }

            coalescer?.Flush();
            Interlocked.Add(ref _directRxBytes, wireGuardBytes);
        }
    }

    /// <summary>
    /// One received datagram, from the UDP socket or from the relay: decrypt or answer it, write
    /// the packet to the TUN (through the filter), roam the peer's path, and flush queued packets.
    /// </summary>
    private void Handle(ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> source, byte[] output, in UdpEndpoint from, BatchUdpSocket? udp, NoisePublicKey? relayFrom, Offload.TcpCoalescer? coalescer = null)
    {
        var isHandshake = datagram.Length > 0 && datagram[0] is 1 or 2;
        var underLoad = isHandshake && CountHandshake();

        var result = Engine.Decapsulate(datagram, source, output, underLoad);
        var devicePeer = result.Peer?.Context as DevicePeer;
        var wasRelayed = devicePeer?.ViaRelay ?? false;
        var mayRoam = relayFrom is not null || !wasRelayed || !_options.ManagedPaths;
        if (devicePeer is not null && mayRoam && (relayFrom is null ? devicePeer.Roam(from) : devicePeer.RoamToRelay()))
        {
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                DeviceLog.Roamed(_logger, result.Peer!.PublicKey.ToString(), relayFrom is null ? from.ToString() : "relay");
            }

            // A direct packet from a peer we were relaying to (its probe got through): answer on the
            // direct path at once, so the peer moves back to it too instead of at its next keepalive.
            if (wasRelayed && relayFrom is null && result.Action != TunnelAction.SendToPeer)
            {
                Poke(devicePeer.Peer.PublicKey);
            }
        }

        switch (result.Action)
        {
            case TunnelAction.WriteToTunnel:
                if (Volatile.Read(ref _filter) is { } filter && !filter.Inbound(output.AsSpan(0, result.Length)))
                {
                    Interlocked.Increment(ref _filterDrops);
                }
                else if (coalescer is not null)
                {
                    coalescer.Add(output.AsSpan(0, result.Length));
                }
                else if (!WritePacketToTun(output.AsSpan(0, result.Length)))
                {
                    Interlocked.Increment(ref _tunWriteErrors);
                }

                break;
            case TunnelAction.SendToPeer:
                Send(devicePeer!, result, output);
                break;
            case TunnelAction.SendToSource:
                if (relayFrom is { } key)
                {
                    Volatile.Read(ref _relay)?.Send(key, output.AsSpan(0, result.Length));
                }
                else
                {
                    udp?.Send(output.AsSpan(0, result.Length), from);
                }

                break;
            case TunnelAction.Drop:
                Interlocked.Increment(ref _drops[(int)result.Reason]);
                break;
        }

        if (devicePeer is not null && devicePeer.Peer.HasStagedPackets)
        {
            SendStaged(devicePeer, output);
        }
    }

    /// <summary>
    /// A datagram the relay delivered from <paramref name="from"/>. It goes through exactly the
    /// path a UDP datagram takes (the engine cannot tell the two apart); an authenticated one makes
    /// the peer's replies go back through the relay until a direct packet roams it back.
    /// Called from the relay's receive loop (one thread).
    /// </summary>
    public void InjectRelayed(NoisePublicKey from, ReadOnlySpan<byte> datagram)
    {
        Span<byte> source = stackalloc byte[32];
        from.CopyTo(source);
        lock (_relayLock)
        {
            Interlocked.Increment(ref _relayedIn);
            Interlocked.Add(ref _relayRxBytes, datagram.Length);
            Handle(datagram, source[..18], _relayOutput, default, null, from);
        }
    }

    private void SendStaged(DevicePeer devicePeer, byte[] buffer)
    {
        while (true)
        {
            var result = devicePeer.Peer.SendStaged(buffer);
            if (result.Action != TunnelAction.SendToPeer)
            {
                return;
            }

            Send(devicePeer, result, buffer);
        }
    }

    private void Send(DevicePeer devicePeer, TunnelResult result, byte[] buffer)
    {
        if (result.Action != TunnelAction.SendToPeer)
        {
            if (result.Action == TunnelAction.Drop)
            {
                Interlocked.Increment(ref _drops[(int)result.Reason]);
            }

            return;
        }

        if (devicePeer.TryGetEndpoint(out var endpoint))
        {
            if (Volatile.Read(ref _udp).Send(buffer.AsSpan(0, result.Length), endpoint))
            {
                Interlocked.Increment(ref _txPackets);
                Interlocked.Add(ref _directTxBytes, result.Length);
            }
        }
        else if (devicePeer.ViaRelay && Volatile.Read(ref _relay) is { } relay)
        {
            if (relay.Send(devicePeer.Peer.PublicKey, buffer.AsSpan(0, result.Length)))
            {
                Interlocked.Increment(ref _relayedOut);
                Interlocked.Add(ref _relayTxBytes, result.Length);
            }
        }
        else
        {
            Interlocked.Increment(ref _noEndpointDrops);
        }
    }

    /// <summary>Counts a handshake message in the current one-second window; true while under load.</summary>
    private bool CountHandshake()
    {
        var now = Engine.Now.Ticks;
        if (now - Volatile.Read(ref _handshakeWindowStart) >= TimeSpan.TicksPerSecond)
        {
            Volatile.Write(ref _handshakeWindowStart, now);
            Volatile.Write(ref _handshakesInWindow, 0);
        }

        if (Interlocked.Increment(ref _handshakesInWindow) > _options.UnderLoadHandshakesPerSecond)
        {
            Volatile.Write(ref _underLoadUntil, now + TimeSpan.TicksPerSecond);
        }

        return now < Volatile.Read(ref _underLoadUntil);
    }

    private void TimerLoop()
    {
        var buffer = new byte[Math.Max(_tun.Mtu, 1280) + 128];
        while (!_stop.Token.WaitHandle.WaitOne(_options.TimerInterval))
        {
            foreach (var peer in Engine.Peers)
            {
                if (peer.Context is not DevicePeer devicePeer)
                {
                    continue;
                }

                for (var i = 0; i < MaxTimerMessagesPerPeer; i++)
                {
                    var result = peer.UpdateTimers(buffer);
                    if (result.Action != TunnelAction.SendToPeer)
                    {
                        break;
                    }

                    Send(devicePeer, result, buffer);
                }

                if (peer.HasStagedPackets)
                {
                    SendStaged(devicePeer, buffer);
                }
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _tun.Dispose();
        Volatile.Read(ref _udp).Dispose();
        foreach (var thread in _threads)
        {
            thread.Join(TimeSpan.FromSeconds(5));
        }

        foreach (var peer in Engine.Peers.ToList())
        {
            Engine.RemovePeer(peer.PublicKey);
        }

        _stop.Dispose();
        DeviceLog.Down(_logger, Name);
    }
}

/// <summary>
/// The stateful filter the mesh agent installs (DESIGN.md: every node filters decrypted inbound
/// packets). Called on the data path: must be thread-safe, fast, and allocation-free.
/// </summary>
public interface IPacketFilterHook
{
    /// <summary>A decrypted packet from the tunnel, before it reaches the TUN; false drops it.</summary>
    bool Inbound(ReadOnlySpan<byte> packet);

    /// <summary>A packet from the TUN about to be encrypted (records flows so replies pass).</summary>
    void Outbound(ReadOnlySpan<byte> packet);
}

/// <summary>
/// The relay path below the device's UDP seam: sends a WireGuard datagram to a peer by its key. The
/// transport queues and returns at once (it must not block the data path); false when it dropped
/// the datagram (not connected, queue full). Received datagrams come back through
/// <see cref="WireGuardDevice.InjectRelayed"/>.
/// </summary>
public interface IRelayTransport
{
    bool Send(NoisePublicKey peer, ReadOnlySpan<byte> datagram);
}

/// <summary>A datagram on the WireGuard port that is not WireGuard; called on the UDP thread: be quick.</summary>
public delegate void OtherDatagramHandler(ReadOnlySpan<byte> datagram, System.Net.IPEndPoint from);

/// <summary>A snapshot of a device's packet counters.</summary>
public sealed record DeviceCounters(long RxDatagrams, long TxDatagrams, IReadOnlyDictionary<string, long> Drops, PathBytes Paths);

/// <summary>
/// Bytes of WireGuard messages (the UDP payload, or the datagram inside a relay frame; no IP, UDP or
/// relay framing) received and sent directly over UDP and through the relay.
/// </summary>
public sealed record PathBytes(long DirectRx, long DirectTx, long RelayRx, long RelayTx);
