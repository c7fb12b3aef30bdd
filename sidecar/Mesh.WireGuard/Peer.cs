using System.Buffers;
using System.Buffers.Binary;
using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard;

/// <summary>
/// One peer of a <see cref="WireGuardEngine"/>: its handshake, its three keypairs (previous,
/// current, next — whitepaper §5.4.6 and §6.2), the packets waiting for a session, and the timers of
/// §6 kept as deadlines that <see cref="UpdateTimers"/> evaluates against the engine's clock.
/// <para>
/// Threading: the data path (<see cref="Encapsulate"/> and transport receive) reads the current
/// keypair without a lock and may run on several threads at once; handshakes, keypair rotation and
/// timers take the peer's lock. The endpoint lives in the I/O layer (<see cref="Context"/>).
/// </para>
/// </summary>
public sealed class Peer
{
    private readonly WireGuardEngine _engine;
    private readonly Lock _lock = new();
    private readonly Handshake _handshake = new();
    private readonly CookieGenerator _cookies = new();
    private readonly Lock _stagedLock = new();
    private readonly Queue<(byte[] Buffer, int Length)> _staged = new();
    private Keypair? _current;
    private Keypair? _previous;
    private Keypair? _next;
    private int _stagedCount;
    private long _rxBytes;
    private long _txBytes;
    private long _lastHandshakeUnixNanos;

    // Timers (§6), as engine-clock ticks; 0 = not armed. Data-path writers use Volatile/Interlocked.
    private long _lastSentAuthenticated;
    private long _lastReceivedAuthenticated;
    private long _newHandshakeDeadline;
    private long _keepaliveDeadline;
    private int _wantHandshake;
    private bool _sentLastMinuteHandshake;
    private int _handshakeAttempts;
    // The retransmission timer of §6.4: armed by every initiation we send, disarmed only when a
    // handshake completes (our response arrives, or the peer's first data confirms its session),
    // not when a crossing initiation from the peer overwrites the Noise state.
    private bool _retransmitPending;
    private TimeSpan _lastInitiationSent = TimeSpan.MinValue;
    private TimeSpan _retransmitAt;
    private TimeSpan _zeroKeysAt;

    internal Peer(WireGuardEngine engine, NoisePublicKey publicKey)
    {
        _engine = engine;
        Keys = new PeerKeys(publicKey);
    }

    public NoisePublicKey PublicKey => Keys.Key;
    public PeerKeys Keys { get; }

    /// <summary>The I/O layer's per-peer state (endpoint and so on); the core never reads it.</summary>
    public object? Context { get; set; }

    /// <summary>Seconds between keepalives sent while the tunnel is otherwise idle; 0 = off.</summary>
    public int PersistentKeepaliveInterval { get; set; }

    public long RxBytes => Interlocked.Read(ref _rxBytes);
    public long TxBytes => Interlocked.Read(ref _txBytes);

    /// <summary>Wall-clock time of the last completed handshake, or null.</summary>
    public DateTimeOffset? LastHandshake
    {
        get
        {
            var ns = Interlocked.Read(ref _lastHandshakeUnixNanos);
            return ns == 0 ? null : DateTimeOffset.UnixEpoch.AddTicks(ns / 100);
        }
    }

    public long LastHandshakeUnixNanoseconds => Interlocked.Read(ref _lastHandshakeUnixNanos);

    /// <summary>Engine-clock time of the last authenticated packet from this peer, or null (path health for the I/O layer).</summary>
    public TimeSpan? LastReceived => Interlocked.Read(ref _lastReceivedAuthenticated) is var t && t != 0 ? TimeSpan.FromTicks(t) : null;

    public Keypair? CurrentKeypair => Volatile.Read(ref _current);
    public Keypair? PreviousKeypair => Volatile.Read(ref _previous);
    public Keypair? NextKeypair => Volatile.Read(ref _next);
    public HandshakeState HandshakeState { get { lock (_lock) { return _handshake.State; } } }
    public bool HasStagedPackets => Volatile.Read(ref _stagedCount) > 0;

    /// <summary>True when the data path asked for a new handshake that <see cref="UpdateTimers"/> will start.</summary>
    public bool HandshakeWanted => Volatile.Read(ref _wantHandshake) != 0;

    /// <summary>Encrypts one IP packet for this peer, or queues it and starts a handshake.</summary>
    public TunnelResult Encapsulate(ReadOnlySpan<byte> packet, Span<byte> output)
    {
        var now = _engine.Now;
        var keypair = Volatile.Read(ref _current);
        if (keypair is not null && keypair.CanSend(now))
        {
            var result = Seal(keypair, packet, output, now);
            if (result.Action == TunnelAction.SendToPeer)
            {
                OnDataSent(now);
                return result;
            }
        }

        Stage(packet);
        lock (_lock)
        {
            return InitiateLocked(output, now, isRetry: false);
        }
    }

    /// <summary>
    /// Sends the next queued packet if a session can carry it. The I/O layer calls this in a loop
    /// after a handshake completes, until it returns <see cref="TunnelAction.Done"/>.
    /// </summary>
    public TunnelResult SendStaged(Span<byte> output)
    {
        var now = _engine.Now;
        var keypair = Volatile.Read(ref _current);
        if (keypair is null || !keypair.CanSend(now) || !HasStagedPackets)
        {
            return TunnelResult.Done(this);
        }

        byte[] buffer;
        int length;
        lock (_stagedLock)
        {
            if (!_staged.TryDequeue(out var item))
            {
                return TunnelResult.Done(this);
            }

            (buffer, length) = item;
            _stagedCount = _staged.Count;
        }

        try
        {
            var result = Seal(keypair, buffer.AsSpan(0, length), output, now);
            if (result.Action == TunnelAction.SendToPeer)
            {
                OnDataSent(now);
            }

            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Evaluates the timers of §6 at the engine's current time and writes at most one message
    /// (a handshake initiation or a keepalive). Call it periodically (every ~100 ms) and again
    /// while it returns <see cref="TunnelAction.SendToPeer"/>.
    /// </summary>
    public TunnelResult UpdateTimers(Span<byte> output)
    {
        var now = _engine.Now;
        lock (_lock)
        {
            // Zero key material after 3 × Reject-After-Time without a new session (§6.3).
            if (_zeroKeysAt != TimeSpan.Zero && now >= _zeroKeysAt)
            {
                _zeroKeysAt = TimeSpan.Zero;
                ClearSessionLocked();
                return TunnelResult.Done(this);
            }

            // Retransmit the initiation after Rekey-Timeout + jitter; give up after Rekey-Attempt-Time (§6.4).
            if (_retransmitPending && now > _retransmitAt)
            {
                if (_handshakeAttempts >= Protocol.MaxTimerHandshakes)
                {
                    if (_handshake.State == HandshakeState.InitiationCreated)
                    {
                        _engine.RemoveIndex(_handshake.LocalIndex);
                        _handshake.Clear();
                    }

                    _retransmitPending = false;
                    _handshakeAttempts = 0;
                    Volatile.Write(ref _wantHandshake, 0);
                    DropStaged();
                    if (_zeroKeysAt == TimeSpan.Zero)
                    {
                        _zeroKeysAt = now + (Protocol.RejectAfterTime * 3);
                    }

                    return TunnelResult.Done(this);
                }

                _handshakeAttempts++;
                return InitiateLocked(output, now, isRetry: true);
            }

            if (_handshake.State != HandshakeState.InitiationCreated && Interlocked.Exchange(ref _wantHandshake, 0) != 0)
            {
                var result = InitiateLocked(output, now, isRetry: false);
                if (result.Action != TunnelAction.Done)
                {
                    return result;
                }
            }

            // Data sent and nothing authenticated heard back for Keepalive-Timeout + Rekey-Timeout.
            var newHandshake = Interlocked.Read(ref _newHandshakeDeadline);
            if (newHandshake != 0 && now.Ticks >= newHandshake)
            {
                Interlocked.Exchange(ref _newHandshakeDeadline, 0);
                var result = InitiateLocked(output, now, isRetry: false);
                if (result.Action != TunnelAction.Done)
                {
                    return result;
                }
            }
        }

        // Data received and nothing sent back for Keepalive-Timeout: send a keepalive (§6.5).
        var keepalive = Interlocked.Read(ref _keepaliveDeadline);
        if (keepalive != 0 && now.Ticks >= keepalive)
        {
            Interlocked.Exchange(ref _keepaliveDeadline, 0);
            var result = SendKeepalive(output, now);
            if (result.Action != TunnelAction.Done)
            {
                return result;
            }
        }

        // Persistent keepalive: a packet at least every interval, whatever else happens.
        var interval = PersistentKeepaliveInterval;
        if (interval > 0)
        {
            var last = Math.Max(Interlocked.Read(ref _lastSentAuthenticated), Interlocked.Read(ref _lastReceivedAuthenticated));
            if (last == 0 || now.Ticks - last >= TimeSpan.FromSeconds(interval).Ticks)
            {
                return SendKeepalive(output, now);
            }
        }

        return TunnelResult.Done(this);
    }

    /// <summary>Sends a keepalive now (an empty transport message), or starts a handshake if there is no session.</summary>
    public TunnelResult SendKeepalive(Span<byte> output) => SendKeepalive(output, _engine.Now);

    /// <summary>Forgets every session and handshake (after a key change or removal).</summary>
    public void ClearSession()
    {
        lock (_lock)
        {
            ClearSessionLocked();
        }
    }

    internal TunnelResult ConsumeInitiation(ReadOnlySpan<byte> message, ref InitiationScratch scratch, Span<byte> output, StaticIdentity identity)
    {
        var now = _engine.Now;
        lock (_lock)
        {
            var previousState = _handshake.State;
            var previousIndex = _handshake.LocalIndex;
            if (!_handshake.ConsumeInitiation(message, ref scratch, Keys, now))
            {
                return TunnelResult.Drop(DropReason.HandshakeRejected);
            }

            if (previousState is HandshakeState.InitiationCreated or HandshakeState.ResponseCreated)
            {
                _engine.RemoveIndex(previousIndex);
            }

            if (previousState == HandshakeState.InitiationCreated && _retransmitPending)
            {
                ResolveCrossedInitiationsLocked(identity, now);
            }

            Interlocked.Add(ref _rxBytes, message.Length);
            MarkReceivedLocked(now);

            var localIndex = _engine.AllocateIndex(this);
            if (!_handshake.CreateResponse(output, Keys, localIndex, _engine.Random))
            {
                _engine.RemoveIndex(localIndex);
                _handshake.Clear();
                return TunnelResult.Drop(DropReason.HandshakeRejected);
            }

            _cookies.AddMacs(output[..Messages.ResponseSize], Messages.RespMac1, Keys, now);
            if (!BeginSessionLocked(localIndex, now))
            {
                return TunnelResult.Drop(DropReason.HandshakeRejected);
            }

            Interlocked.Add(ref _txBytes, Messages.ResponseSize);
            Interlocked.Exchange(ref _lastSentAuthenticated, now.Ticks);
            return TunnelResult.SendToPeer(this, Messages.ResponseSize);
        }
    }

    /// <summary>
    /// Both ends initiated at once, and each just consumed the other's initiation: each is now the
    /// responder of a handshake the other abandoned, and the responses to both initiations will find
    /// no handshake waiting for them. The protocol recovers at the next retransmission, Rekey-Timeout
    /// later. Instead the end with the larger public key initiates again shortly (after
    /// <see cref="CrossedInitiationDelay"/>, so the new initiation's timestamp is past the one the peer
    /// just accepted), and the other stops retransmitting and answers it: one more round trip, not
    /// five seconds. Against an implementation without this rule nothing changes (its retransmission
    /// still comes).
    /// </summary>
    /// <summary>
    /// Longer than the whitening of TAI64N timestamps (2^24 ns ≈ 16.8 ms): a peer refuses an
    /// initiation whose timestamp is not newer than the last it accepted from us.
    /// </summary>
    private static readonly TimeSpan CrossedInitiationDelay = TimeSpan.FromMilliseconds(50);

    private void ResolveCrossedInitiationsLocked(StaticIdentity identity, TimeSpan now)
    {
        Span<byte> peerKey = stackalloc byte[NoisePublicKey.Size];
        PublicKey.CopyTo(peerKey);
        if (identity.PublicKey.AsSpan().SequenceCompareTo(peerKey) > 0)
        {
            _retransmitAt = now + CrossedInitiationDelay;
        }
        else
        {
            _retransmitPending = false;
        }
    }

    internal TunnelResult ConsumeResponse(ReadOnlySpan<byte> message, Span<byte> output, StaticIdentity identity)
    {
        var now = _engine.Now;
        Keypair? keypair;
        lock (_lock)
        {
            var receiver = Messages.ReadIndex(message, Messages.RespReceiver);
            if (_handshake.State != HandshakeState.InitiationCreated || receiver != _handshake.LocalIndex)
            {
                return TunnelResult.Drop(DropReason.UnknownIndex);
            }

            if (!_handshake.ConsumeResponse(message, identity, Keys))
            {
                return TunnelResult.Drop(DropReason.HandshakeRejected);
            }

            Interlocked.Add(ref _rxBytes, message.Length);
            MarkReceivedLocked(now);
            if (!BeginSessionLocked(receiver, now))
            {
                return TunnelResult.Drop(DropReason.HandshakeRejected);
            }

            keypair = _current;
        }

        // The initiator confirms the session at once: with queued data, or with a keepalive (§6.5).
        if (HasStagedPackets || keypair is null)
        {
            return TunnelResult.Done(this);
        }

        return Seal(keypair, ReadOnlySpan<byte>.Empty, output, now);
    }

    internal TunnelResult ConsumeCookieReply(ReadOnlySpan<byte> message)
    {
        lock (_lock)
        {
            return _cookies.ConsumeReply(message, Keys, _engine.Now)
                ? TunnelResult.Done()
                : TunnelResult.Drop(DropReason.AuthenticationFailed);
        }
    }

    internal TunnelResult ReceiveTransport(Keypair keypair, ReadOnlySpan<byte> datagram, Span<byte> output)
    {
        var now = _engine.Now;
        if (!keypair.CanReceive(now))
        {
            return TunnelResult.Drop(DropReason.KeypairExpired);
        }

        var counter = BinaryPrimitives.ReadUInt64LittleEndian(datagram[Messages.TransportCounter..]);
        var ciphertext = datagram[Messages.TransportData..];
        var plaintextLength = ciphertext.Length - Messages.TagSize;
        if (output.Length < plaintextLength)
        {
            return TunnelResult.Drop(DropReason.BufferTooSmall);
        }

        if (!keypair.Receive.Open(counter, ciphertext, output))
        {
            return TunnelResult.Drop(DropReason.AuthenticationFailed);
        }

        if (!keypair.AcceptCounter(counter))
        {
            return TunnelResult.Drop(DropReason.Replay);
        }

        Interlocked.Add(ref _rxBytes, datagram.Length);
        Interlocked.Exchange(ref _lastReceivedAuthenticated, now.Ticks);
        if (Interlocked.Read(ref _newHandshakeDeadline) != 0)
        {
            Interlocked.Exchange(ref _newHandshakeDeadline, 0);
        }

        if (ReferenceEquals(keypair, Volatile.Read(ref _next)))
        {
            PromoteNext(keypair);
        }

        // §6.2: the initiator rekeys before its session would stop receiving.
        if (keypair.IsInitiator && !_sentLastMinuteHandshake
            && now - keypair.Created >= Protocol.RejectAfterTime - Protocol.KeepaliveTimeout - Protocol.RekeyTimeout)
        {
            _sentLastMinuteHandshake = true;
            Volatile.Write(ref _wantHandshake, 1);
        }

        if (plaintextLength == 0)
        {
            return TunnelResult.Done(this);
        }

        if (Interlocked.Read(ref _keepaliveDeadline) == 0)
        {
            Interlocked.CompareExchange(ref _keepaliveDeadline, (now + Protocol.KeepaliveTimeout).Ticks, 0);
        }

        var packet = output[..plaintextLength];
        var length = IpPacket.TotalLength(packet);
        if (length < 0)
        {
            return TunnelResult.Drop(DropReason.InvalidInnerPacket, this);
        }

        if (!ReferenceEquals(_engine.AllowedIps.Lookup(IpPacket.Source(packet)), this))
        {
            return TunnelResult.Drop(DropReason.SourceNotAllowed, this);
        }

        return TunnelResult.WriteToTunnel(this, length);
    }

    private TunnelResult SendKeepalive(Span<byte> output, TimeSpan now)
    {
        var keypair = Volatile.Read(ref _current);
        if (keypair is not null && keypair.CanSend(now))
        {
            return Seal(keypair, ReadOnlySpan<byte>.Empty, output, now);
        }

        lock (_lock)
        {
            return InitiateLocked(output, now, isRetry: false);
        }
    }

    /// <summary>Writes a transport message (§5.4.6) carrying <paramref name="packet"/>, zero-padded to 16 bytes within the MTU.</summary>
    private TunnelResult Seal(Keypair keypair, ReadOnlySpan<byte> packet, Span<byte> output, TimeSpan now)
    {
        var padded = packet.Length + PaddingFor(packet.Length, _engine.Mtu);
        var total = Messages.TransportHeaderSize + padded + Messages.TagSize;
        if (output.Length < total)
        {
            return TunnelResult.Drop(DropReason.BufferTooSmall, this);
        }

        var counter = keypair.NextSendCounter();
        if (counter >= Protocol.RejectAfterMessages)
        {
            Volatile.Write(ref _wantHandshake, 1);
            return TunnelResult.Drop(DropReason.KeypairExpired, this);
        }

        Messages.WriteHeader(output, Messages.TypeTransport);
        Messages.WriteIndex(output, Messages.TransportReceiver, keypair.RemoteIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(output[Messages.TransportCounter..], counter);
        var body = output.Slice(Messages.TransportData, padded);
        packet.CopyTo(body);
        body[packet.Length..].Clear();
        keypair.Send.Seal(counter, body, output.Slice(Messages.TransportData, padded + Messages.TagSize));

        Interlocked.Add(ref _txBytes, total);
        Interlocked.Exchange(ref _lastSentAuthenticated, now.Ticks);
        if (Interlocked.Read(ref _keepaliveDeadline) != 0)
        {
            Interlocked.Exchange(ref _keepaliveDeadline, 0);
        }

        // §6.2: the initiator rekeys after Rekey-After-Time; either side after Rekey-After-Messages.
        if (counter >= Protocol.RekeyAfterMessages || (keypair.IsInitiator && now - keypair.Created >= Protocol.RekeyAfterTime))
        {
            Volatile.Write(ref _wantHandshake, 1);
        }

        return TunnelResult.SendToPeer(this, total);
    }

    private void OnDataSent(TimeSpan now)
    {
        if (Interlocked.Read(ref _newHandshakeDeadline) == 0)
        {
            Interlocked.CompareExchange(ref _newHandshakeDeadline, (now + Protocol.KeepaliveTimeout + Protocol.RekeyTimeout).Ticks, 0);
        }
    }

    /// <summary>Padding that brings a packet to a multiple of 16 bytes without passing the MTU (§5.4.6).</summary>
    internal static int PaddingFor(int length, int mtu)
    {
        var last = length;
        if (mtu > 0 && last > mtu)
        {
            last %= mtu;
        }

        var padded = (last + Protocol.PaddingMultiple - 1) & ~(Protocol.PaddingMultiple - 1);
        if (mtu > 0 && padded > mtu)
        {
            padded = mtu;
        }

        return Math.Max(0, padded - last);
    }

    private TunnelResult InitiateLocked(Span<byte> output, TimeSpan now, bool isRetry)
    {
        var identity = _engine.Identity;
        if (identity is null)
        {
            return TunnelResult.Drop(DropReason.NoPrivateKey, this);
        }

        if (output.Length < Messages.InitiationSize)
        {
            return TunnelResult.Drop(DropReason.BufferTooSmall, this);
        }

        if (!isRetry)
        {
            // One initiation per Rekey-Timeout unless it is the timer's own retransmission, whatever
            // the handshake state: a rekey asked for while an initiation was in flight must not start
            // a second handshake the moment the first completes.
            if (_lastInitiationSent != TimeSpan.MinValue && now - _lastInitiationSent < Protocol.RekeyTimeout)
            {
                return TunnelResult.Done(this);
            }

            _handshakeAttempts = 0;
        }

        if (_handshake.State is HandshakeState.InitiationCreated or HandshakeState.ResponseCreated)
        {
            _engine.RemoveIndex(_handshake.LocalIndex);
        }

        var localIndex = _engine.AllocateIndex(this);
        var message = output[..Messages.InitiationSize];
        if (!_handshake.CreateInitiation(message, identity, Keys, localIndex, _engine.UnixTimeNanoseconds, _engine.Random))
        {
            _engine.RemoveIndex(localIndex);
            _handshake.Clear();
            return TunnelResult.Drop(DropReason.HandshakeRejected, this);
        }

        _cookies.AddMacs(message, Messages.InitMac1, Keys, now);
        _lastInitiationSent = now;
        _retransmitAt = now + Protocol.RekeyTimeout + Jitter();
        _retransmitPending = true;
        Volatile.Write(ref _wantHandshake, 0);
        Interlocked.Add(ref _txBytes, Messages.InitiationSize);
        Interlocked.Exchange(ref _lastSentAuthenticated, now.Ticks);
        return TunnelResult.SendToPeer(this, Messages.InitiationSize);
    }

    private TimeSpan Jitter()
    {
        Span<byte> r = stackalloc byte[4];
        _engine.Random.Fill(r);
        var ms = BinaryPrimitives.ReadUInt32LittleEndian(r) % (uint)Protocol.RekeyTimeoutJitterMax.TotalMilliseconds;
        return TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>§5.4.5 and the keypair rotation of the reference implementations.</summary>
    private bool BeginSessionLocked(uint localIndex, TimeSpan now)
    {
        Span<byte> sendKey = stackalloc byte[32];
        Span<byte> receiveKey = stackalloc byte[32];
        var remoteIndex = _handshake.RemoteIndex;
        if (!_handshake.DeriveTransportKeys(sendKey, receiveKey, out var isInitiator))
        {
            return false;
        }

        var keypair = new Keypair(this, sendKey, receiveKey, isInitiator, localIndex, remoteIndex, now);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(sendKey);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(receiveKey);
        _engine.BindIndex(localIndex, keypair);

        var previous = _previous;
        var current = _current;
        var next = _next;
        if (isInitiator)
        {
            if (next is not null)
            {
                // An unconfirmed responder session becomes the fallback; the old current goes.
                Volatile.Write(ref _next, null);
                Volatile.Write(ref _previous, next);
                Retire(current);
            }
            else
            {
                Volatile.Write(ref _previous, current);
            }

            Retire(previous);
            Volatile.Write(ref _current, keypair);
            _retransmitPending = false;
            _engine.CountHandshakeCompleted();
        }
        else
        {
            // The responder may not send until the initiator's first message confirms the session.
            Volatile.Write(ref _next, keypair);
            Retire(next);
            Volatile.Write(ref _previous, null);
            Retire(previous);
        }

        _handshakeAttempts = 0;
        _sentLastMinuteHandshake = false;
        _zeroKeysAt = now + (Protocol.RejectAfterTime * 3);
        Interlocked.Exchange(ref _lastHandshakeUnixNanos, _engine.UnixTimeNanoseconds);
        return true;
    }

    private void PromoteNext(Keypair keypair)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_next, keypair))
            {
                return;
            }

            var old = _previous;
            Volatile.Write(ref _previous, _current);
            Retire(old);
            Volatile.Write(ref _current, keypair);
            Volatile.Write(ref _next, null);

            // The peer's first message on the session confirms the handshake (§5.4.6).
            _retransmitPending = false;
            _engine.CountHandshakeCompleted();
        }
    }

    private void MarkReceivedLocked(TimeSpan now)
    {
        Interlocked.Exchange(ref _lastReceivedAuthenticated, now.Ticks);
        Interlocked.Exchange(ref _newHandshakeDeadline, 0);
    }

    private void Retire(Keypair? keypair)
    {
        if (keypair is not null)
        {
            _engine.RemoveIndex(keypair.LocalIndex);
            keypair.Dispose();
        }
    }

    private void ClearSessionLocked()
    {
        Retire(Interlocked.Exchange(ref _previous, null));
        Retire(Interlocked.Exchange(ref _current, null));
        Retire(Interlocked.Exchange(ref _next, null));
        if (_handshake.State is HandshakeState.InitiationCreated or HandshakeState.ResponseCreated)
        {
            _engine.RemoveIndex(_handshake.LocalIndex);
        }

        _handshake.Clear();
        _handshakeAttempts = 0;
        _retransmitPending = false;
        _lastInitiationSent = TimeSpan.MinValue;
        Interlocked.Exchange(ref _newHandshakeDeadline, 0);
        Interlocked.Exchange(ref _keepaliveDeadline, 0);
        Volatile.Write(ref _wantHandshake, 0);
        DropStaged();
    }

    private void Stage(ReadOnlySpan<byte> packet)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(packet.Length, 1));
        packet.CopyTo(buffer);
        lock (_stagedLock)
        {
            while (_staged.Count >= Protocol.MaxStagedPackets)
            {
                ArrayPool<byte>.Shared.Return(_staged.Dequeue().Buffer);
            }

            _staged.Enqueue((buffer, packet.Length));
            _stagedCount = _staged.Count;
        }
    }

    private void DropStaged()
    {
        lock (_stagedLock)
        {
            while (_staged.TryDequeue(out var item))
            {
                ArrayPool<byte>.Shared.Return(item.Buffer);
            }

            _stagedCount = 0;
        }
    }
}
