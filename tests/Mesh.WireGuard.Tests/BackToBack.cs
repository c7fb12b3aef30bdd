using System.Buffers.Binary;
using System.Net;
using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Tests;

/// <summary>Two engines wired to each other in memory, like two hosts on a perfect network.</summary>
internal sealed class BackToBack
{
    public BackToBack(bool presharedKey = false)
    {
        Span<byte> a = stackalloc byte[32];
        Span<byte> b = stackalloc byte[32];
        new SeededRandom(100).Fill(a);
        new SeededRandom(200).Fill(b);
        A = new WireGuardEngine(Clock, new SeededRandom(1));
        B = new WireGuardEngine(Clock, new SeededRandom(2));
        A.SetPrivateKey(a);
        B.SetPrivateKey(b);
        PeerOfA = A.AddPeer(new NoisePublicKey(B.Identity!.PublicKey)); // A's view of B
        PeerOfB = B.AddPeer(new NoisePublicKey(A.Identity!.PublicKey)); // B's view of A
        A.AllowedIps.Insert(IPAddress.Parse("100.64.0.2"), 32, PeerOfA);
        A.AllowedIps.Insert(IPAddress.Parse("fd7a:115c:a1e0::2"), 128, PeerOfA);
        B.AllowedIps.Insert(IPAddress.Parse("100.64.0.1"), 32, PeerOfB);
        B.AllowedIps.Insert(IPAddress.Parse("fd7a:115c:a1e0::1"), 128, PeerOfB);
        if (presharedKey)
        {
            var psk = new byte[32];
            new SeededRandom(300).Fill(psk);
            PeerOfA.Keys.SetPresharedKey(psk);
            PeerOfB.Keys.SetPresharedKey(psk);
        }
    }

    public ManualTimeProvider Clock { get; } = new();
    public WireGuardEngine A { get; }
    public WireGuardEngine B { get; }
    public Peer PeerOfA { get; }
    public Peer PeerOfB { get; }
    public static byte[] SourceA => [198, 18, 0, 1, 0xCA, 0x6C];
    public static byte[] SourceB => [198, 18, 0, 2, 0xCA, 0x6C];

    /// <summary>Delivers <paramref name="datagram"/> to <paramref name="to"/> and keeps ping-ponging replies until quiet; returns packets written to the receiving TUNs.</summary>
    public List<(WireGuardEngine Engine, byte[] Packet)> Deliver(WireGuardEngine to, byte[] datagram, int maxHops = 10)
    {
        var delivered = new List<(WireGuardEngine, byte[])>();
        var queue = new Queue<(WireGuardEngine, byte[])>();
        queue.Enqueue((to, datagram));
        var buffer = new byte[2048];
        while (queue.Count > 0 && maxHops-- > 0)
        {
            var (engine, data) = queue.Dequeue();
            var other = engine == A ? B : A;
            var result = engine.Decapsulate(data, engine == A ? SourceB : SourceA, buffer);
            switch (result.Action)
            {
                case TunnelAction.WriteToTunnel:
                    delivered.Add((engine, buffer[..result.Length]));
                    break;
                case TunnelAction.SendToPeer:
                case TunnelAction.SendToSource:
                    queue.Enqueue((other, buffer[..result.Length]));
                    break;
            }

            if (result.Peer is { } peer)
            {
                while (true)
                {
                    var staged = peer.SendStaged(buffer);
                    if (staged.Action != TunnelAction.SendToPeer)
                    {
                        break;
                    }

                    queue.Enqueue((other, buffer[..staged.Length]));
                }
            }
        }

        return delivered;
    }

    /// <summary>Sends an IP packet from one engine's TUN and returns the datagram to put on the wire (or null).</summary>
    public static byte[]? Send(WireGuardEngine from, byte[] packet)
    {
        var buffer = new byte[2048];
        var result = from.Encapsulate(packet, buffer);
        return result.Action == TunnelAction.SendToPeer ? buffer[..result.Length] : null;
    }

    public static byte[] Ipv4Packet(string source, string destination, int payloadLength, byte fill = 0xAB)
    {
        var packet = new byte[20 + payloadLength];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        packet[8] = 64;
        packet[9] = 17;
        IPAddress.Parse(source).TryWriteBytes(packet.AsSpan(12), out _);
        IPAddress.Parse(destination).TryWriteBytes(packet.AsSpan(16), out _);
        packet.AsSpan(20).Fill(fill);
        return packet;
    }

    public static byte[] Ipv6Packet(string source, string destination, int payloadLength)
    {
        var packet = new byte[40 + payloadLength];
        packet[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)payloadLength);
        packet[6] = 17;
        packet[7] = 64;
        IPAddress.Parse(source).TryWriteBytes(packet.AsSpan(8), out _);
        IPAddress.Parse(destination).TryWriteBytes(packet.AsSpan(24), out _);
        packet.AsSpan(40).Fill(0x5A);
        return packet;
    }

    public static byte[] PublicKeyOf(ReadOnlySpan<byte> privateKey)
    {
        var pub = new byte[32];
        X25519.PublicKey(privateKey, pub);
        return pub;
    }
}
