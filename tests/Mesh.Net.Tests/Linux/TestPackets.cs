using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Net.Tests.Linux;

/// <summary>Builds and picks apart the IPv4/IPv6 UDP packets the TUN tests inject and read (RFC 791, 8200, 768).</summary>
internal static class TestPackets
{
    private const int Ipv4HeaderLength = 20;
    private const int Ipv6HeaderLength = 40;
    private const int UdpHeaderLength = 8;
    private const byte ProtocolUdp = 17;

    public static byte[] Udp(IPEndPoint source, IPEndPoint destination, ReadOnlySpan<byte> payload)
    {
        bool v6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        int ipHeader = v6 ? Ipv6HeaderLength : Ipv4HeaderLength;
        int udpLength = UdpHeaderLength + payload.Length;
        byte[] packet = new byte[ipHeader + udpLength];
        Span<byte> src = stackalloc byte[16];
        Span<byte> dst = stackalloc byte[16];
        source.Address.TryWriteBytes(src, out int addressLength);
        destination.Address.TryWriteBytes(dst, out _);
        src = src[..addressLength];
        dst = dst[..addressLength];
        if (v6)
        {
            packet[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)udpLength);
            packet[6] = ProtocolUdp;
            packet[7] = 64;
            src.CopyTo(packet.AsSpan(8));
            dst.CopyTo(packet.AsSpan(24));
        }
        else
        {
            packet[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
            packet[8] = 64;
            packet[9] = ProtocolUdp;
            src.CopyTo(packet.AsSpan(12));
            dst.CopyTo(packet.AsSpan(16));
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Checksum(packet.AsSpan(0, Ipv4HeaderLength), 0));
        }
        Span<byte> udp = packet.AsSpan(ipHeader);
        BinaryPrimitives.WriteUInt16BigEndian(udp, (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], (ushort)destination.Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udpLength);
        payload.CopyTo(udp[UdpHeaderLength..]);
        // Pseudo-header: source, destination, zero + protocol, UDP length.
        uint pseudo = Sum(src) + Sum(dst) + ProtocolUdp + (uint)udpLength;
        ushort checksum = Checksum(udp, pseudo);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], checksum == 0 ? (ushort)0xffff : checksum);
        return packet;
    }

    /// <summary>The UDP datagram in <paramref name="packet"/>, if it is one.</summary>
    public static bool TryParseUdp(ReadOnlySpan<byte> packet, out IPEndPoint source, out IPEndPoint destination, out byte[] payload)
    {
        source = destination = new IPEndPoint(IPAddress.None, 0);
        payload = [];
        int header;
        IPAddress src, dst;
        if (packet.Length >= Ipv4HeaderLength && packet[0] >> 4 == 4)
        {
            header = (packet[0] & 0xf) * 4;
            if (packet[9] != ProtocolUdp)
            {
                return false;
            }
            src = new IPAddress(packet.Slice(12, 4));
            dst = new IPAddress(packet.Slice(16, 4));
        }
        else if (packet.Length >= Ipv6HeaderLength && packet[0] >> 4 == 6)
        {
            header = Ipv6HeaderLength;
            if (packet[6] != ProtocolUdp)
            {
                return false;
            }
            src = new IPAddress(packet.Slice(8, 16));
            dst = new IPAddress(packet.Slice(24, 16));
        }
        else
        {
            return false;
        }
        ReadOnlySpan<byte> udp = packet[header..];
        if (udp.Length < UdpHeaderLength)
        {
            return false;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(udp[4..]);
        source = new IPEndPoint(src, BinaryPrimitives.ReadUInt16BigEndian(udp));
        destination = new IPEndPoint(dst, BinaryPrimitives.ReadUInt16BigEndian(udp[2..]));
        payload = udp[UdpHeaderLength..length].ToArray();
        return true;
    }

    private static uint Sum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }
        if (data.Length % 2 == 1)
        {
            sum += (uint)data[^1] << 8;
        }
        return sum;
    }

    private static ushort Checksum(ReadOnlySpan<byte> data, uint initial)
    {
        ulong sum = initial + (ulong)Sum(data);
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}
