using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Mesh.Net.Device;
using Mesh.Protocol.Paths;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Agent;

/// <summary>A direct path whose round trip was just seen: a ping sent to <paramref name="Endpoint"/> came back from it.</summary>
internal readonly record struct PathConfirmed(NoisePublicKey Peer, IPEndPoint Endpoint, TimeSpan RoundTrip);

/// <summary>
/// Path probes between this node and its peers, on the WireGuard socket (through
/// <see cref="WireGuardDevice.SendRaw"/> and the device's non-WireGuard datagrams): pings to a
/// peer's candidate endpoints, pongs back to whatever source a ping came from. A pong that returns
/// from the very endpoint that was pinged proves the round trip on that path, and only that moves a
/// relayed peer back to direct (<see cref="Confirmed"/>); a path that works one way only never
/// produces one. A ping from a peer this node has no working path to is answered and pinged back at
/// once, so two nodes behind NATs that filter by destination open their holes towards each other
/// within one round trip.
/// Probes are sealed with a key pair of their own (announced as the disco key), per peer pair.
/// </summary>
internal sealed class PathProber
{
    /// <summary>A ping unanswered this long is forgotten.</summary>
    private static readonly TimeSpan PingLifetime = TimeSpan.FromSeconds(10);

    /// <summary>At most one ping-back to the same peer and source per this interval (pings are cheap to forge-replay).</summary>
    private static readonly TimeSpan PingBackInterval = TimeSpan.FromSeconds(1);

    private readonly WireGuardDevice _device;
    private readonly ILogger _logger;
    private readonly byte[] _privateKey = new byte[X25519.KeySize];
    private readonly ConcurrentDictionary<ulong, PendingPing> _pending = new();
    private readonly ConcurrentDictionary<(NoisePublicKey, IPEndPoint), long> _pingedBack = new();
    private readonly Channel<PathConfirmed> _confirmed = Channel.CreateUnbounded<PathConfirmed>(new UnboundedChannelOptions { SingleReader = true });
    private volatile PeerTable _peers = PeerTable.Empty;
    private long _pingsSent;
    private long _pongsSent;

    public PathProber(WireGuardDevice device, ILogger logger)
    {
        _device = device;
        _logger = logger;
        X25519.GeneratePrivateKey(_privateKey);
        var publicKey = new byte[X25519.KeySize];
        X25519.PublicKey(_privateKey, publicKey);
        PublicKey = new NoisePublicKey(publicKey);
    }

    /// <summary>This node's path key, announced to the coordinator as its disco key.</summary>
    public NoisePublicKey PublicKey { get; }

    /// <summary>Round trips seen, in order; read by the agent's path selection.</summary>
    public ChannelReader<PathConfirmed> Confirmed => _confirmed.Reader;

    public long PingsSent => Interlocked.Read(ref _pingsSent);

    public long PongsSent => Interlocked.Read(ref _pongsSent);

    /// <summary>The peers that can be probed: node key and announced path key. Keys are derived once per peer path key.</summary>
    public void SetPeers(IEnumerable<(NoisePublicKey Node, NoisePublicKey Path)> peers)
    {
        var old = _peers;
        var byPath = new Dictionary<NoisePublicKey, PeerEntry>();
        var byNode = new Dictionary<NoisePublicKey, PeerEntry>();
        foreach (var (node, path) in peers)
        {
            if (!old.ByPath.TryGetValue(path, out var entry) || entry.Node != node)
            {
                if (PathProbeKey.Derive(_privateKey, path) is not { } key)
                {
                    continue;
                }

                entry = new PeerEntry(node, key);
            }

            byPath[path] = entry;
            byNode[node] = entry;
        }

        _peers = new PeerTable(byPath, byNode);
    }

    /// <summary>Sends a ping to one of the peer's candidates; false when the peer announced no path key.</summary>
    public bool Ping(NoisePublicKey peer, IPEndPoint candidate)
    {
        if (!_peers.ByNode.TryGetValue(peer, out var entry))
        {
            return false;
        }

        var id = NewTransactionId();
        _pending[id] = new PendingPing(peer, Normalize(candidate), Stopwatch.GetTimestamp());
        Span<byte> datagram = stackalloc byte[PathProbeCodec.Size];
        PathProbeCodec.Write(datagram, PublicKey, entry.Key, new PathProbe(PathProbeKind.Ping, id, null), SystemRandomSource.Instance);
        Interlocked.Increment(ref _pingsSent);
        var sent = _device.SendRaw(datagram, candidate);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            _logger.LogDebug("Path ping {Id:x16} to {Peer} at {Candidate}{Failed}", id, peer, candidate, sent ? "" : " (send failed)");
        }

        return sent;
    }

    /// <summary>
    /// A datagram from the WireGuard socket that is not WireGuard: true when it was a path probe
    /// (handled, or dropped as unknown or forged); false lets the caller try other protocols.
    /// Runs on the device's receive thread: sends at most two small datagrams, never blocks.
    /// </summary>
    public bool TryHandle(ReadOnlySpan<byte> datagram, IPEndPoint from)
    {
        if (!PathProbeCodec.TryReadSender(datagram, out var sender))
        {
            return false;
        }

        if (!_peers.ByPath.TryGetValue(sender, out var entry) || !PathProbeCodec.TryOpen(datagram, entry.Key, out var probe))
        {
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                _logger.LogDebug("Path probe from {From} dropped: {Reason}", from, entry is null ? "unknown sender" : "does not authenticate");
            }

            return true;
        }

        from = Normalize(from);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            _logger.LogDebug("Path {Kind} {Id:x16} from {Peer} at {From}", probe.Kind, probe.TransactionId, entry.Node, from);
        }

        if (probe.Kind == PathProbeKind.Ping)
        {
            Span<byte> pong = stackalloc byte[PathProbeCodec.Size];
            PathProbeCodec.Write(pong, PublicKey, entry.Key, new PathProbe(PathProbeKind.Pong, probe.TransactionId, from), SystemRandomSource.Instance);
            _device.SendRaw(pong, from);
            Interlocked.Increment(ref _pongsSent);

            // The peer reached this node on a path this node has not confirmed: try it back now,
            // while the hole the peer's ping just opened in its NAT is fresh.
            if (!HasWorkingPath(entry.Node) && MayPingBack(entry.Node, from))
            {
                Ping(entry.Node, from);
            }
        }
        else if (_pending.TryGetValue(probe.TransactionId, out var ping) && ping.Peer == entry.Node && ping.Candidate.Equals(from)
                 && _pending.TryRemove(probe.TransactionId, out _))
        {
            _confirmed.Writer.TryWrite(new PathConfirmed(entry.Node, from, Stopwatch.GetElapsedTime(ping.Sent)));
        }

        return true;
    }

    /// <summary>Forgets unanswered pings and old ping-back marks.</summary>
    public void Expire()
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var (id, ping) in _pending)
        {
            if (Stopwatch.GetElapsedTime(ping.Sent, now) > PingLifetime)
            {
                _pending.TryRemove(id, out _);
            }
        }

        foreach (var (key, at) in _pingedBack)
        {
            if (Stopwatch.GetElapsedTime(at, now) > PingBackInterval)
            {
                _pingedBack.TryRemove(key, out _);
            }
        }
    }

    private bool HasWorkingPath(NoisePublicKey peer) =>
        !_device.IsRelayed(peer) && _device.Engine.TryGetPeer(peer, out var p) && p.CurrentKeypair is not null;

    private bool MayPingBack(NoisePublicKey peer, IPEndPoint from)
    {
        var now = Stopwatch.GetTimestamp();
        var last = _pingedBack.GetOrAdd((peer, from), 0);
        if (last != 0 && Stopwatch.GetElapsedTime(last, now) < PingBackInterval)
        {
            return false;
        }

        _pingedBack[(peer, from)] = now;
        return true;
    }

    private static ulong NewTransactionId()
    {
        Span<byte> id = stackalloc byte[8];
        SystemRandomSource.Instance.Fill(id);
        return BitConverter.ToUInt64(id);
    }

    /// <summary>IPv4 as IPv4 (a dual-stack socket may report it mapped into IPv6).</summary>
    private static IPEndPoint Normalize(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    private sealed record PeerEntry(NoisePublicKey Node, PathProbeKey Key);

    private readonly record struct PendingPing(NoisePublicKey Peer, IPEndPoint Candidate, long Sent);

    private sealed record PeerTable(IReadOnlyDictionary<NoisePublicKey, PeerEntry> ByPath, IReadOnlyDictionary<NoisePublicKey, PeerEntry> ByNode)
    {
        public static readonly PeerTable Empty = new(new Dictionary<NoisePublicKey, PeerEntry>(), new Dictionary<NoisePublicKey, PeerEntry>());
    }
}
