using BenchmarkDotNet.Attributes;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;
using Mesh.WireGuard.Noise;

namespace Mesh.Benchmarks;

/// <summary>
/// Handshake cost (whitepaper §5.4.2–§5.4.3): the responder consuming an initiation and writing its
/// response — the work an attacker can make a node do per packet until it turns cookies on, and
/// the figure micro.sh reports as handshakes per second per core — the initiator creating an
/// initiation, and bare X25519 operations for reference: a shared secret (the responder computes
/// es, ee and se; ss is cached per peer) and a public key (the responder's new ephemeral), each
/// through our NSec-based wrapper and as libsodium's bare function, so the wrapper's share of a
/// handshake is visible.
/// </summary>
/// <remarks>
/// The responder accepts an initiation only if its TAI64N timestamp is newer than the last one
/// from that peer and at least <see cref="Protocol.HandshakeInitiationRate"/> has passed on its
/// clock. So a ring of initiations is built in advance with the initiator's clock stepped between
/// them, the responder's clock is stepped by the rate limit before each one, and at each wrap the
/// responder's last-accepted timestamp is rewound (<see cref="Rewind.InitiationTimestamp"/>).
/// </remarks>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    private const int RingSize = 256;

    private BackToBack _pair = null!;
    private byte[][] _initiations = null!;
    private byte[] _output = null!;
    private int _next;

    private byte[] _privateKey = null!;
    private byte[] _publicKey = null!;
    private byte[] _shared = null!;

    [GlobalSetup]
    public void Setup()
    {
        // Separate clocks: the initiator's moves by Rekey-Timeout per initiation (its own pacing),
        // the responder's by the flood limit per initiation consumed.
        _pair = new BackToBack(new ManualClock(), new ManualClock());
        _output = new byte[2048];
        _initiations = new byte[RingSize][];
        for (var i = 0; i < RingSize; i++)
        {
            _initiations[i] = NextInitiation();
        }

        // The first must be answered with a 92-byte response (§5.4.3); then rewind for the run.
        _pair.ClockB.Advance(Protocol.HandshakeInitiationRate);
        var length = BackToBack.Expect(_pair.B.Decapsulate(_initiations[0], BackToBack.SourceA, _output), TunnelAction.SendToPeer, "response");
        if (length != Messages.ResponseSize)
        {
            throw new InvalidOperationException($"Response is {length} bytes, expected {Messages.ResponseSize}.");
        }

        Rewind.InitiationTimestamp(_pair.PeerOfB);
        _next = 0;

        _privateKey = new byte[X25519.KeySize];
        _publicKey = new byte[X25519.KeySize];
        _shared = new byte[X25519.KeySize];
        X25519.GeneratePrivateKey(_privateKey);
        _pair.B.Identity!.PublicKey.CopyTo(_publicKey, 0);
        if (Libsodium.Init() < 0)
        {
            throw new InvalidOperationException("sodium_init failed.");
        }
    }

    [Benchmark]
    public int ConsumeInitiation()
    {
        if (_next == RingSize)
        {
            _next = 0;
            Rewind.InitiationTimestamp(_pair.PeerOfB);
        }

        _pair.ClockB.Advance(Protocol.HandshakeInitiationRate);
        var result = _pair.B.Decapsulate(_initiations[_next++], BackToBack.SourceA, _output);
        return result.Action == TunnelAction.SendToPeer ? result.Length : Fail(result);
    }

    [Benchmark]
    public int CreateInitiation()
    {
        // With no session, a keepalive request starts a handshake: the sidecar's own path to an initiation.
        _pair.ClockA.Advance(Protocol.RekeyTimeout);
        var result = _pair.PeerOfA.SendKeepalive(_output);
        return result.Action == TunnelAction.SendToPeer ? result.Length : Fail(result);
    }

    [Benchmark(Description = "X25519.SharedSecret (raw)")]
    public bool SharedSecret() => X25519.SharedSecret(_privateKey, _publicKey, _shared);

    [Benchmark(Description = "X25519.PublicKey (raw)")]
    public byte PublicKey()
    {
        X25519.PublicKey(_privateKey, _shared);
        return _shared[0];
    }

    [Benchmark(Description = "crypto_scalarmult_curve25519 (libsodium)")]
    public unsafe int LibsodiumScalarMult()
    {
        fixed (byte* q = _shared, n = _privateKey, p = _publicKey)
        {
            return Libsodium.ScalarMult(q, n, p);
        }
    }

    [Benchmark(Description = "crypto_scalarmult_curve25519_base (libsodium)")]
    public unsafe int LibsodiumScalarMultBase()
    {
        fixed (byte* q = _shared, n = _privateKey)
        {
            return Libsodium.ScalarMultBase(q, n);
        }
    }

    private byte[] NextInitiation()
    {
        _pair.ClockA.Advance(Protocol.RekeyTimeout);
        var length = BackToBack.Expect(_pair.PeerOfA.SendKeepalive(_output), TunnelAction.SendToPeer, "initiation");
        if (length != Messages.InitiationSize)
        {
            throw new InvalidOperationException($"Initiation is {length} bytes, expected {Messages.InitiationSize}.");
        }

        return _output.AsSpan(0, length).ToArray();
    }

    private static int Fail(TunnelResult result) => throw new InvalidOperationException($"Unexpected result {result}: the benchmark is no longer measuring the success path.");
}
