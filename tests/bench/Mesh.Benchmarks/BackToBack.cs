using System.Buffers.Binary;
using System.Net;
using Mesh.WireGuard;

namespace Mesh.Benchmarks;

/// <summary>
/// Two engines that know each other as peers, wired together in memory: A is 100.64.0.1, B is
/// 100.64.0.2. Each side may have its own clock (the handshake benchmarks step them separately).
/// Randomness is the system CSPRNG, as in production, so a benchmark pays what the sidecar pays
/// for ephemeral keys and indices.
/// </summary>
internal sealed class BackToBack
{
    public const string AddressA = "100.64.0.1";
    public const string AddressB = "100.64.0.2";

    public BackToBack(ManualClock? clockA = null, ManualClock? clockB = null)
    {
        ClockA = clockA ?? new ManualClock();
        ClockB = clockB ?? ClockA;
        A = new WireGuardEngine(ClockA);
        B = new WireGuardEngine(ClockB);
        A.SetPrivateKey(FixedKey(0xA1));
        B.SetPrivateKey(FixedKey(0xB2));
        PeerOfA = A.AddPeer(new NoisePublicKey(B.Identity!.PublicKey));
        PeerOfB = B.AddPeer(new NoisePublicKey(A.Identity!.PublicKey));
        A.AllowedIps.Insert(IPAddress.Parse(AddressB), 32, PeerOfA);
        B.AllowedIps.Insert(IPAddress.Parse(AddressA), 32, PeerOfB);
    }

    public ManualClock ClockA { get; }
    public ManualClock ClockB { get; }
    public WireGuardEngine A { get; }
    public WireGuardEngine B { get; }

    /// <summary>A's view of B.</summary>
    public Peer PeerOfA { get; }

    /// <summary>B's view of A.</summary>
    public Peer PeerOfB { get; }

    /// <summary>The UDP source A's datagrams arrive from, as B sees it (address and port).</summary>
    public static byte[] SourceA { get; } = [198, 18, 0, 1, 0xCA, 0x6C];

    /// <summary>The UDP source B's datagrams arrive from, as A sees it.</summary>
    public static byte[] SourceB { get; } = [198, 18, 0, 2, 0xCA, 0x6C];

    /// <summary>
    /// Runs initiation, response and A's confirming keepalive, so both sides end with a current
    /// keypair (B's promoted from "next" by the keepalive) and can send at once.
    /// </summary>
    public void CompleteHandshake()
    {
        var buffer = new byte[2048];
        var initiation = Expect(PeerOfA.SendKeepalive(buffer), TunnelAction.SendToPeer, "initiation");
        var response = Expect(B.Decapsulate(buffer.AsSpan(0, initiation), SourceA, buffer), TunnelAction.SendToPeer, "response");
        var keepalive = Expect(A.Decapsulate(buffer.AsSpan(0, response), SourceB, buffer), TunnelAction.SendToPeer, "keepalive");
        Expect(B.Decapsulate(buffer.AsSpan(0, keepalive), SourceA, buffer), TunnelAction.Done, "keepalive receipt");
        if (PeerOfA.CurrentKeypair is null || PeerOfB.CurrentKeypair is null)
        {
            throw new InvalidOperationException("Handshake finished without a current keypair on both sides.");
        }
    }

    /// <summary>Throws unless <paramref name="result"/> is <paramref name="action"/>; returns its length.</summary>
    public static int Expect(TunnelResult result, TunnelAction action, string what) =>
        result.Action == action ? result.Length : throw new InvalidOperationException($"{what}: expected {action}, got {result}.");

    /// <summary>An IPv4/UDP packet of exactly <paramref name="totalLength"/> bytes.</summary>
    public static byte[] Ipv4Packet(string source, string destination, int totalLength)
    {
        var packet = new byte[totalLength];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)totalLength);
        packet[8] = 64;
        packet[9] = 17;
        IPAddress.Parse(source).TryWriteBytes(packet.AsSpan(12), out _);
        IPAddress.Parse(destination).TryWriteBytes(packet.AsSpan(16), out _);
        for (var i = 20; i < packet.Length; i++)
        {
            packet[i] = (byte)i;
        }

        return packet;
    }

    private static byte[] FixedKey(byte fill)
    {
        var key = new byte[32];
        key.AsSpan().Fill(fill);
        return key;
    }
}
