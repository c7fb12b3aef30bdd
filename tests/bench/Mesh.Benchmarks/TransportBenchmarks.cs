using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Mesh.WireGuard;

namespace Mesh.Benchmarks;

/// <summary>
/// The data path of an established session: one 1420-byte IPv4 packet (a full packet at the
/// default MTU) through <see cref="WireGuardEngine.Encapsulate"/>, <see cref="WireGuardEngine.Decapsulate"/>,
/// and both, next to a bare <see cref="ChaCha20Poly1305"/> encryption of the same size so the cost
/// of our framing, routing and bookkeeping over the cipher itself is visible (the Ratio column).
/// micro.sh turns the mean time per packet into Gbit/s per core.
/// </summary>
[MemoryDiagnoser]
public class TransportBenchmarks
{
    public const int PacketSize = 1420;

    // Datagrams pre-encrypted for the decapsulation benchmark. 1024 × 1452 B ≈ 1.5 MB: past L1/L2
    // like real receive buffers, small enough to build in a few milliseconds. The ring is replayed
    // by rewinding B's replay window at each wrap (one 1 KB clear per 1024 packets).
    private const int RingSize = 1024;

    private BackToBack _tunnel = null!;
    private byte[] _packet = null!;
    private byte[] _datagram = null!;
    private byte[] _inner = null!;
    private byte[][] _ring = null!;
    private Keypair _receiving = null!;
    private int _next;

    private ChaCha20Poly1305 _raw = null!;
    private byte[] _nonce = null!;
    private byte[] _ciphertext = null!;
    private byte[] _tag = null!;

    [GlobalSetup]
    public void Setup()
    {
        _tunnel = new BackToBack();
        _tunnel.CompleteHandshake();
        _packet = BackToBack.Ipv4Packet(BackToBack.AddressA, BackToBack.AddressB, PacketSize);
        _datagram = new byte[2048];
        _inner = new byte[2048];

        _ring = new byte[RingSize][];
        for (var i = 0; i < RingSize; i++)
        {
            var length = BackToBack.Expect(_tunnel.A.Encapsulate(_packet, _datagram), TunnelAction.SendToPeer, "ring encapsulation");
            _ring[i] = _datagram.AsSpan(0, length).ToArray();
        }

        // The datagram must be what the wire carries: header 16 + padded packet + tag 16.
        var expected = 16 + PacketSize + Peer.PaddingFor(PacketSize, _tunnel.A.Mtu) + 16;
        if (_ring[0].Length != expected)
        {
            throw new InvalidOperationException($"Transport datagram is {_ring[0].Length} bytes, expected {expected}.");
        }

        // One real decryption that must succeed and give back the packet, then rewind for the run.
        _receiving = _tunnel.PeerOfB.CurrentKeypair!;
        var inner = BackToBack.Expect(_tunnel.B.Decapsulate(_ring[0], BackToBack.SourceA, _inner), TunnelAction.WriteToTunnel, "ring decapsulation");
        if (!_inner.AsSpan(0, inner).SequenceEqual(_packet))
        {
            throw new InvalidOperationException("Decapsulated packet differs from the one sent.");
        }

        Rewind.ReceiveCounters(_receiving);
        _next = 0;

        var key = new byte[32];
        RandomNumberGenerator.Fill(key);
        _raw = new ChaCha20Poly1305(key);
        _nonce = new byte[12];
        _ciphertext = new byte[PacketSize];
        _tag = new byte[16];
    }

    [GlobalCleanup]
    public void Cleanup() => _raw.Dispose();

    [Benchmark(Baseline = true, Description = "ChaCha20Poly1305.Encrypt (raw)")]
    public byte RawEncrypt()
    {
        _raw.Encrypt(_nonce, _packet, _ciphertext, _tag);
        return _tag[0];
    }

    [Benchmark]
    public int Encapsulate()
    {
        var result = _tunnel.A.Encapsulate(_packet, _datagram);
        return result.Action == TunnelAction.SendToPeer ? result.Length : Fail(result);
    }

    [Benchmark]
    public int Decapsulate()
    {
        if (_next == RingSize)
        {
            _next = 0;
            Rewind.ReceiveCounters(_receiving);
        }

        var result = _tunnel.B.Decapsulate(_ring[_next++], BackToBack.SourceA, _inner);
        return result.Action == TunnelAction.WriteToTunnel ? result.Length : Fail(result);
    }

    [Benchmark]
    public int RoundTrip()
    {
        var sealedResult = _tunnel.A.Encapsulate(_packet, _datagram);
        if (sealedResult.Action != TunnelAction.SendToPeer)
        {
            return Fail(sealedResult);
        }

        var result = _tunnel.B.Decapsulate(_datagram.AsSpan(0, sealedResult.Length), BackToBack.SourceA, _inner);
        return result.Action == TunnelAction.WriteToTunnel ? result.Length : Fail(result);
    }

    // Kept out of line so the check costs the hot path one compare and branch.
    private static int Fail(TunnelResult result) => throw new InvalidOperationException($"Unexpected result {result}: the benchmark is no longer measuring the success path.");
}
