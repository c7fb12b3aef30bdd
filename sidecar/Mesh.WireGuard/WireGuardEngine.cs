using System.Buffers.Binary;
using System.Collections.Concurrent;
using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard;

/// <summary>
/// The WireGuard protocol for one interface as a pure state machine: the static identity, the
/// peers, the receiver-index table and cryptokey routing (allowed IPs). It owns no socket, no
/// thread and no clock: time comes from the injected <see cref="TimeProvider"/>, randomness from
/// the <see cref="IRandomSource"/>, and every call writes into a caller's buffer and returns a
/// <see cref="TunnelResult"/> telling the I/O layer (Mesh.Net's device) what to do with it.
/// It does not know endpoints: the device roams them from the results' <see cref="TunnelResult.Peer"/>.
/// </summary>
public sealed class WireGuardEngine
{
    private readonly ConcurrentDictionary<NoisePublicKey, Peer> _peers = new();
    private readonly ConcurrentDictionary<uint, IndexEntry> _indices = new();
    private readonly Lock _configLock = new();
    private readonly TimeProvider _time;
    private readonly long _clockOrigin;
    private StaticIdentity? _identity;
    private long _handshakesCompleted;

    public WireGuardEngine(TimeProvider? time = null, IRandomSource? random = null)
    {
        _time = time ?? TimeProvider.System;
        Random = random ?? SystemRandomSource.Instance;
        Cookies = new CookieChecker(Random);
        // Start the monotonic clock well above zero so that 0 can mean "never" in the timers.
        _clockOrigin = _time.GetTimestamp() - _time.TimestampFrequency;
    }

    /// <summary>MTU of the tunnel interface; transport padding never exceeds it.</summary>
    public int Mtu { get; set; } = 1420;

    public AllowedIps<Peer> AllowedIps { get; } = new();

    public StaticIdentity? Identity => Volatile.Read(ref _identity);

    public IRandomSource Random { get; }

    internal CookieChecker Cookies { get; }

    /// <summary>Monotonic time since the engine started (plus one second).</summary>
    public TimeSpan Now
    {
        get
        {
            var elapsed = _time.GetTimestamp() - _clockOrigin;
            return TimeSpan.FromTicks((long)((Int128)elapsed * TimeSpan.TicksPerSecond / _time.TimestampFrequency));
        }
    }

    internal long UnixTimeNanoseconds => (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100;

    public ICollection<Peer> Peers => _peers.Values;

    public int IndexCount => _indices.Count;

    /// <summary>
    /// Handshakes completed with any peer since the engine was made (peers removed since included):
    /// counted by the initiator when a valid response arrives, by the responder when the initiator's
    /// first message on the new session confirms it. Each completed handshake counts once on each side.
    /// </summary>
    public long HandshakesCompleted => Interlocked.Read(ref _handshakesCompleted);

    internal void CountHandshakeCompleted() => Interlocked.Increment(ref _handshakesCompleted);

    /// <summary>
    /// Sets (or, with an empty span, clears) the private key. Every session is dropped; a peer with
    /// the new public key is removed, as a node cannot be its own peer.
    /// </summary>
    public void SetPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        lock (_configLock)
        {
            var identity = privateKey.IsEmpty || !privateKey.ContainsAnyExcept((byte)0) ? null : new StaticIdentity(privateKey);
            if (identity is not null && _identity is not null && identity.PublicKey.AsSpan().SequenceEqual(_identity.PublicKey))
            {
                return;
            }

            Volatile.Write(ref _identity, identity);
            if (identity is not null)
            {
                var self = new NoisePublicKey(identity.PublicKey);
                if (_peers.ContainsKey(self))
                {
                    RemovePeer(self);
                }
            }

            foreach (var peer in _peers.Values)
            {
                peer.Keys.SetLocalIdentity(identity);
                peer.ClearSession();
            }
        }
    }

    public Peer AddPeer(NoisePublicKey publicKey)
    {
        lock (_configLock)
        {
            if (_peers.TryGetValue(publicKey, out var existing))
            {
                return existing;
            }

            var peer = new Peer(this, publicKey);
            peer.Keys.SetLocalIdentity(Identity);
            _peers[publicKey] = peer;
            return peer;
        }
    }

    public bool TryGetPeer(NoisePublicKey publicKey, out Peer peer) => _peers.TryGetValue(publicKey, out peer!);

    public bool RemovePeer(NoisePublicKey publicKey)
    {
        lock (_configLock)
        {
            if (!_peers.TryRemove(publicKey, out var peer))
            {
                return false;
            }

            AllowedIps.RemoveAll(peer);
            peer.ClearSession();
            return true;
        }
    }

    /// <summary>Routes an outbound IP packet by its destination (cryptokey routing) and encrypts it.</summary>
    public TunnelResult Encapsulate(ReadOnlySpan<byte> packet, Span<byte> output)
    {
        var destination = IpPacket.Destination(packet);
        if (destination.IsEmpty)
        {
            return TunnelResult.Drop(DropReason.Malformed);
        }

        var peer = AllowedIps.Lookup(destination);
        return peer is null ? TunnelResult.Drop(DropReason.NoPeerForDestination) : peer.Encapsulate(packet, output);
    }

    /// <summary>
    /// Processes one received datagram. <paramref name="sourceAddress"/> is the sender's address
    /// and port in any stable encoding; it only keys cookies (§5.4.7). When <paramref name="underLoad"/>
    /// is set, handshake messages without a valid mac2 are answered with a cookie reply.
    /// </summary>
    public TunnelResult Decapsulate(ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> sourceAddress, Span<byte> output, bool underLoad = false)
    {
        switch (Messages.ReadType(datagram))
        {
            case Messages.TypeTransport when datagram.Length >= Messages.TransportMinSize:
                {
                    if (!_indices.TryGetValue(Messages.ReadIndex(datagram, Messages.TransportReceiver), out var entry) || entry.Keypair is null)
                    {
                        return TunnelResult.Drop(DropReason.UnknownIndex);
                    }

                    return entry.Peer.ReceiveTransport(entry.Keypair, datagram, output);
                }

            case Messages.TypeInitiation when datagram.Length == Messages.InitiationSize:
                return ConsumeInitiation(datagram, sourceAddress, output, underLoad);

            case Messages.TypeResponse when datagram.Length == Messages.ResponseSize:
                {
                    var identity = Identity;
                    if (identity is null)
                    {
                        return TunnelResult.Drop(DropReason.NoPrivateKey);
                    }

                    if (!CookieChecker.CheckMac1(datagram, Messages.RespMac1, identity.Mac1Key))
                    {
                        return TunnelResult.Drop(DropReason.InvalidMac1);
                    }

                    if (underLoad && !Cookies.CheckMac2(datagram, Messages.RespMac2, sourceAddress, Now))
                    {
                        return CookieReply(datagram, Messages.RespMac1, Messages.ReadIndex(datagram, Messages.RespSender), sourceAddress, identity, output);
                    }

                    if (!_indices.TryGetValue(Messages.ReadIndex(datagram, Messages.RespReceiver), out var entry) || entry.Keypair is not null)
                    {
                        return TunnelResult.Drop(DropReason.UnknownIndex);
                    }

                    return entry.Peer.ConsumeResponse(datagram, output, identity);
                }

            case Messages.TypeCookieReply when datagram.Length == Messages.CookieReplySize:
                {
                    if (!_indices.TryGetValue(Messages.ReadIndex(datagram, Messages.CookieReceiver), out var entry))
                    {
                        return TunnelResult.Drop(DropReason.UnknownIndex);
                    }

                    return entry.Peer.ConsumeCookieReply(datagram);
                }

            case Messages.TypeTransport or Messages.TypeInitiation or Messages.TypeResponse or Messages.TypeCookieReply:
                return TunnelResult.Drop(DropReason.Malformed);

            default:
                return TunnelResult.Drop(DropReason.UnknownMessage);
        }
    }

    private TunnelResult ConsumeInitiation(ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> sourceAddress, Span<byte> output, bool underLoad)
    {
        var identity = Identity;
        if (identity is null)
        {
            return TunnelResult.Drop(DropReason.NoPrivateKey);
        }

        if (!CookieChecker.CheckMac1(datagram, Messages.InitMac1, identity.Mac1Key))
        {
            return TunnelResult.Drop(DropReason.InvalidMac1);
        }

        if (underLoad && !Cookies.CheckMac2(datagram, Messages.InitMac2, sourceAddress, Now))
        {
            return CookieReply(datagram, Messages.InitMac1, Messages.ReadIndex(datagram, Messages.InitSender), sourceAddress, identity, output);
        }

        if (output.Length < Messages.ResponseSize)
        {
            return TunnelResult.Drop(DropReason.BufferTooSmall);
        }

        Span<byte> ck = stackalloc byte[32];
        Span<byte> h = stackalloc byte[32];
        Span<byte> initiatorStatic = stackalloc byte[32];
        var scratch = new InitiationScratch { ChainingKey = ck, Hash = h };
        if (!Handshake.DecryptInitiatorStatic(datagram, identity, initiatorStatic, ref scratch))
        {
            return TunnelResult.Drop(DropReason.HandshakeRejected);
        }

        if (!_peers.TryGetValue(new NoisePublicKey(initiatorStatic), out var peer))
        {
            return TunnelResult.Drop(DropReason.UnknownPeer);
        }

        return peer.ConsumeInitiation(datagram, ref scratch, output, identity);
    }

    private TunnelResult CookieReply(ReadOnlySpan<byte> message, int mac1Offset, uint senderIndex, ReadOnlySpan<byte> sourceAddress, StaticIdentity identity, Span<byte> output)
    {
        if (output.Length < Messages.CookieReplySize)
        {
            return TunnelResult.Drop(DropReason.BufferTooSmall);
        }

        Cookies.CreateReply(message, mac1Offset, senderIndex, sourceAddress, identity, Now, output);
        return TunnelResult.SendToSource(Messages.CookieReplySize);
    }

    internal uint AllocateIndex(Peer peer)
    {
        Span<byte> r = stackalloc byte[4];
        var entry = new IndexEntry(peer, null);
        while (true)
        {
            Random.Fill(r);
            var index = BinaryPrimitives.ReadUInt32LittleEndian(r);
            if (index != 0 && _indices.TryAdd(index, entry))
            {
                return index;
            }
        }
    }

    internal void BindIndex(uint index, Keypair keypair) => _indices[index] = new IndexEntry(keypair.Peer, keypair);

    internal void RemoveIndex(uint index)
    {
        if (index != 0)
        {
            _indices.TryRemove(index, out _);
        }
    }

    private sealed record IndexEntry(Peer Peer, Keypair? Keypair);
}
