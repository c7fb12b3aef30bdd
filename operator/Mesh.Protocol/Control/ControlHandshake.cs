using System.Buffers.Binary;
using System.Collections.Concurrent;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;
using Mesh.WireGuard.Noise;

namespace Mesh.Protocol.Control;

/// <summary>
/// The control channel between a node and the coordinator (DESIGN.md, security model): confidential
/// and authenticated even over plain HTTP. It is WireGuard's Noise_IKpsk2 handshake (the same code as
/// the data plane) run under its own identifier, so a control message can never pass for a tunnel
/// one: the node is the initiator with its machine key, the coordinator the responder with the key
/// it publishes at <see cref="ControlPaths.Key"/> and that nodes pin. One round trip
/// (<see cref="ControlPaths.Handshake"/>) yields a <see cref="ControlSession"/> with forward secrecy.
/// </summary>
public static class ControlChannel
{
    public static readonly NoiseProtocol Protocol = new(NoiseConstants.Construction, "MeshOperator control v1");
}

/// <summary>The node's side of a control handshake. One instance per attempt.</summary>
public sealed class ControlClientHandshake
{
    private readonly StaticIdentity _identity;
    private readonly PeerKeys _server;
    private readonly Handshake _handshake = new(ControlChannel.Protocol);
    private readonly CookieGenerator _macs = new();
    private readonly TimeProvider _time;
    private readonly IRandomSource _random;

    public ControlClientHandshake(ReadOnlySpan<byte> machinePrivateKey, MachineKey serverKey, TimeProvider? time = null, IRandomSource? random = null)
    {
        _identity = new StaticIdentity(machinePrivateKey);
        _server = new PeerKeys(serverKey.Value);
        _time = time ?? TimeProvider.System;
        _random = random ?? SystemRandomSource.Instance;
        if (!_server.SetLocalIdentity(_identity))
        {
            throw new ControlProtocolException("the coordinator's key is not a valid Curve25519 public key");
        }

        MachineKey = new MachineKey(new NoisePublicKey(_identity.PublicKey));
    }

    public MachineKey MachineKey { get; }

    public byte[] CreateInitiation()
    {
        var message = new byte[Messages.InitiationSize];
        Span<byte> r = stackalloc byte[4];
        _random.Fill(r);
        var index = BinaryPrimitives.ReadUInt32LittleEndian(r) | 1;
        var unixNanos = (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100;
        if (!_handshake.CreateInitiation(message, _identity, _server, index, unixNanos, _random))
        {
            throw new ControlProtocolException("could not create a control handshake initiation");
        }

        _macs.AddMacs(message, Messages.InitMac1, _server, TimeSpan.Zero);
        return message;
    }

    /// <summary>Consumes the coordinator's response and returns the session; throws when it does not authenticate.</summary>
    public ControlSession Complete(ReadOnlySpan<byte> response)
    {
        if (response.Length != Messages.ResponseSize || Messages.ReadType(response) != Messages.TypeResponse
            || !CookieChecker.CheckMac1(response, Messages.RespMac1, _identity.Mac1Key)
            || Messages.ReadIndex(response, Messages.RespReceiver) != _handshake.LocalIndex)
        {
            throw new ControlProtocolException("the coordinator's handshake response is malformed");
        }

        var localIndex = _handshake.LocalIndex;
        if (!_handshake.ConsumeResponse(response, _identity, _server))
        {
            throw new ControlProtocolException("the coordinator's handshake response does not authenticate: is the pinned coordinator key right?");
        }

        var remoteIndex = _handshake.RemoteIndex;
        Span<byte> send = stackalloc byte[32];
        Span<byte> receive = stackalloc byte[32];
        _handshake.DeriveTransportKeys(send, receive, out _);
        var session = new ControlSession(send, receive, localIndex, remoteIndex, new MachineKey(_server.Key), _time);
        send.Clear();
        receive.Clear();
        return session;
    }
}

/// <summary>
/// The coordinator's side: accepts handshakes from any machine (a new node registers this way),
/// keeps the sessions by index, and forgets idle ones. A machine's last accepted handshake
/// timestamp is remembered while it has any session, so a replayed initiation is refused.
/// Thread-safe.
/// </summary>
public sealed class ControlServer : IDisposable
{
    /// <summary>A session unused for this long is forgotten; the node then handshakes again.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(30);

    private readonly StaticIdentity _identity;
    private readonly TimeProvider _time;
    private readonly IRandomSource _random;
    private readonly ConcurrentDictionary<uint, ControlSession> _sessions = new();
    private readonly ConcurrentDictionary<NoisePublicKey, MachineHandshake> _machines = new();
    private readonly long _clockOrigin;

    public ControlServer(ReadOnlySpan<byte> privateKey, TimeProvider? time = null, IRandomSource? random = null)
    {
        _identity = new StaticIdentity(privateKey);
        _time = time ?? TimeProvider.System;
        _random = random ?? SystemRandomSource.Instance;
        _clockOrigin = _time.GetTimestamp();
        PublicKey = new MachineKey(new NoisePublicKey(_identity.PublicKey));
    }

    public MachineKey PublicKey { get; }

    public int SessionCount => _sessions.Count;

    /// <summary>Consumes an initiation; on success returns the 92-byte response to send and the new session.</summary>
    public bool TryAccept(ReadOnlySpan<byte> initiation, out byte[] response, out ControlSession? session, out string error) =>
        TryAccept(initiation, out response, out session, out error, out _);

    /// <summary>
    /// As above; <paramref name="retryLater"/> is set when the initiation was refused only for coming
    /// too soon after the machine's previous one (within the 20 ms rate limit or the 2^24 ns TAI64N
    /// granularity): the node should try again a moment later.
    /// </summary>
    public bool TryAccept(ReadOnlySpan<byte> initiation, out byte[] response, out ControlSession? session, out string error, out bool retryLater)
    {
        retryLater = false;
        response = [];
        session = null;
        if (initiation.Length != Messages.InitiationSize || Messages.ReadType(initiation) != Messages.TypeInitiation)
        {
            error = $"a handshake initiation is {Messages.InitiationSize} bytes of type 1";
            return false;
        }

        if (!CookieChecker.CheckMac1(initiation, Messages.InitMac1, _identity.Mac1Key))
        {
            error = "the initiation is not addressed to this coordinator's key (mac1)";
            return false;
        }

        Span<byte> ck = stackalloc byte[32];
        Span<byte> h = stackalloc byte[32];
        Span<byte> machineStatic = stackalloc byte[32];
        var scratch = new InitiationScratch { ChainingKey = ck, Hash = h };
        if (!Handshake.DecryptInitiatorStatic(initiation, _identity, machineStatic, ref scratch, ControlChannel.Protocol))
        {
            error = "the initiation does not decrypt";
            return false;
        }

        var machineKey = new NoisePublicKey(machineStatic);
        var machine = _machines.GetOrAdd(machineKey, k => new MachineHandshake(k, _identity));
        lock (machine)
        {
            if (!machine.Handshake.ConsumeInitiation(initiation, ref scratch, machine.Keys, Elapsed))
            {
                error = "the initiation is a replay or comes too fast";
                retryLater = true;
                return false;
            }

            Span<byte> r = stackalloc byte[4];
            uint index;
            do
            {
                _random.Fill(r);
                index = BinaryPrimitives.ReadUInt32LittleEndian(r);
            }
            while (index == 0 || _sessions.ContainsKey(index));

            var message = new byte[Messages.ResponseSize];
            if (!machine.Handshake.CreateResponse(message, machine.Keys, index, _random))
            {
                error = "could not respond";
                return false;
            }

            machine.Macs.AddMacs(message, Messages.RespMac1, machine.Keys, TimeSpan.Zero);
            var remoteIndex = machine.Handshake.RemoteIndex;
            Span<byte> send = stackalloc byte[32];
            Span<byte> receive = stackalloc byte[32];
            machine.Handshake.DeriveTransportKeys(send, receive, out _);
            session = new ControlSession(send, receive, index, remoteIndex, new MachineKey(machineKey), _time);
            send.Clear();
            receive.Clear();
            _sessions[index] = session;
            response = message;
            error = string.Empty;
            return true;
        }
    }

    /// <summary>Finds the session a sealed message is addressed to.</summary>
    public bool TryGetSession(ReadOnlySpan<byte> sealedMessage, out ControlSession session)
    {
        session = null!;
        return ControlSession.TryReadReceiver(sealedMessage, out var index) && _sessions.TryGetValue(index, out session!);
    }

    /// <summary>Forgets sessions idle for longer than <see cref="IdleTimeout"/> and machines left without a session.</summary>
    public void Sweep()
    {
        var now = _time.GetUtcNow();
        foreach (var (index, session) in _sessions)
        {
            if (now - session.LastUsed > IdleTimeout && _sessions.TryRemove(index, out _))
            {
                session.Dispose();
            }
        }

        var live = new HashSet<NoisePublicKey>();
        foreach (var session in _sessions.Values)
        {
            live.Add(session.Peer.Value);
        }

        foreach (var key in _machines.Keys)
        {
            if (!live.Contains(key))
            {
                _machines.TryRemove(key, out _);
            }
        }
    }

    private TimeSpan Elapsed => _time.GetElapsedTime(_clockOrigin) + TimeSpan.FromSeconds(1);

    public void Dispose()
    {
        foreach (var session in _sessions.Values)
        {
            session.Dispose();
        }

        _sessions.Clear();
    }

    private sealed class MachineHandshake
    {
        public MachineHandshake(NoisePublicKey key, StaticIdentity identity)
        {
            Keys = new PeerKeys(key);
            Keys.SetLocalIdentity(identity);
        }

        public PeerKeys Keys { get; }
        public Handshake Handshake { get; } = new(ControlChannel.Protocol);
        public CookieGenerator Macs { get; } = new();
    }
}

/// <summary>The control channel could not be established or a message did not authenticate.</summary>
public sealed class ControlProtocolException(string message) : Exception(message);
