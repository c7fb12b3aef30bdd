using System.Buffers.Binary;
using System.Net;

namespace Mesh.Net.Tests.Offload;

/// <summary>
/// Builds IPv4/IPv6 TCP and UDP packets for the offload tests, and checks checksums the slow,
/// obvious way (RFC 1071: add 16-bit big-endian words one by one, fold, complement) — independent
/// of <c>InternetChecksum</c>, which the code under test uses.
/// </summary>
internal static class OffloadPackets
{
    public const byte Fin = 0x01;
    public const byte Syn = 0x02;
    public const byte Psh = 0x08;
    public const byte Ack = 0x10;
    public const byte Cwr = 0x80;

    public static readonly IPAddress V4A = IPAddress.Parse("100.64.0.1");
    public static readonly IPAddress V4B = IPAddress.Parse("100.64.0.2");
    public static readonly IPAddress V6A = IPAddress.Parse("fd7a:115c:a1e0::1");
    public static readonly IPAddress V6B = IPAddress.Parse("fd7a:115c:a1e0::2");

    /// <summary>The TCP timestamps option padded to 12 bytes (NOP, NOP, kind 8, length 10).</summary>
    public static byte[] Timestamps(uint value, uint echo)
    {
        var option = new byte[12];
        option[0] = 1;
        option[1] = 1;
        option[2] = 8;
        option[3] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(4), value);
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(8), echo);
        return option;
    }

    public static byte[] Payload(int length, int seed)
    {
        var payload = new byte[length];
        new Random(seed).NextBytes(payload);
        return payload;
    }

    /// <summary>A TCP packet with a correct checksum (or, with <paramref name="partial"/>, only the pseudo-header sum, as the kernel leaves it).</summary>
    public static byte[] Tcp(IPAddress source, IPAddress destination, ushort sourcePort, ushort destinationPort, uint seq, uint ack,
        byte flags, ReadOnlySpan<byte> payload, byte[]? options = null, ushort ipId = 0x1234, bool partial = false, byte tos = 0, byte ttl = 64)
    {
        options ??= [];
        var v4 = source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        var ipLength = v4 ? 20 : 40;
        var tcpLength = 20 + options.Length;
        var packet = new byte[ipLength + tcpLength + payload.Length];
        WriteIp(packet, source, destination, 6, ipId, tos, ttl);
        var tcp = packet.AsSpan(ipLength);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], ack);
        tcp[12] = (byte)(tcpLength / 4 << 4);
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 502);
        options.CopyTo(tcp[20..]);
        payload.CopyTo(tcp[tcpLength..]);
        var pseudo = PseudoSum(packet);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], partial ? Fold(pseudo) : (ushort)~Fold(pseudo + Sum(tcp)));
        return packet;
    }

    /// <summary>A UDP packet whose checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL).</summary>
    public static byte[] PartialUdp(IPAddress source, IPAddress destination, ReadOnlySpan<byte> payload)
    {
        var v4 = source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        var ipLength = v4 ? 20 : 40;
        var packet = new byte[ipLength + 8 + payload.Length];
        WriteIp(packet, source, destination, 17, 7, 0, 64);
        var udp = packet.AsSpan(ipLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp, 5353);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], 53);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udp.Length);
        payload.CopyTo(udp[8..]);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], Fold(PseudoSum(packet)));
        return packet;
    }

    /// <summary>A frame as an offloading TUN reads it: the 10-byte virtio_net_hdr (little-endian), then the packet.</summary>
    public static byte[] Frame(byte flags, byte gsoType, ushort headerLength, ushort gsoSize, ushort checksumStart, ushort checksumOffset, byte[] packet)
    {
        var frame = new byte[10 + packet.Length];
        frame[0] = flags;
        frame[1] = gsoType;
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(2), headerLength);
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(4), gsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(6), checksumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(8), checksumOffset);
        packet.CopyTo(frame, 10);
        return frame;
    }

    public static bool IsV4(ReadOnlySpan<byte> packet) => packet[0] >> 4 == 4;

    public static int IpHeaderLength(ReadOnlySpan<byte> packet) => IsV4(packet) ? (packet[0] & 0xf) * 4 : 40;

    public static int TcpHeaderLength(ReadOnlySpan<byte> packet) => (packet[IpHeaderLength(packet) + 12] >> 4) * 4;

    public static ReadOnlySpan<byte> TcpPayload(ReadOnlySpan<byte> packet) => packet[(IpHeaderLength(packet) + TcpHeaderLength(packet))..];

    public static uint Seq(ReadOnlySpan<byte> packet) => BinaryPrimitives.ReadUInt32BigEndian(packet[(IpHeaderLength(packet) + 4)..]);

    public static byte Flags(ReadOnlySpan<byte> packet) => packet[IpHeaderLength(packet) + 13];

    public static ushort IpId(ReadOnlySpan<byte> packet) => BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);

    /// <summary>The length the IP header claims: IPv4 total length, or IPv6 payload length plus 40.</summary>
    public static int IpLength(ReadOnlySpan<byte> packet) => IsV4(packet)
        ? BinaryPrimitives.ReadUInt16BigEndian(packet[2..])
        : BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) + 40;

    /// <summary>True when the IPv4 header checksum verifies (always true for IPv6, which has none).</summary>
    public static bool IpChecksumValid(ReadOnlySpan<byte> packet) => !IsV4(packet) || Fold(Sum(packet[..IpHeaderLength(packet)])) == 0xffff;

    /// <summary>True when the transport checksum (TCP or UDP) verifies over the pseudo-header and the segment.</summary>
    public static bool TransportChecksumValid(ReadOnlySpan<byte> packet) =>
        Fold(PseudoSum(packet) + Sum(packet[IpHeaderLength(packet)..])) == 0xffff;

    /// <summary>The slow sum: 16-bit big-endian words, an odd last byte padded with zero.</summary>
    public static ulong Sum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        for (var i = 0; i < data.Length; i += 2)
        {
            sum += (ulong)(data[i] << 8) + (i + 1 < data.Length ? data[i + 1] : 0u);
        }

        return sum;
    }

    public static ushort Fold(ulong sum)
    {
        while (sum > 0xffff)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }

        return (ushort)sum;
    }

    private static ulong PseudoSum(ReadOnlySpan<byte> packet)
    {
        var ipLength = IpHeaderLength(packet);
        var transportLength = (ulong)(packet.Length - ipLength);
        return IsV4(packet)
            ? Sum(packet[12..20]) + packet[9] + transportLength
            : Sum(packet[8..40]) + packet[6] + transportLength;
    }

    private static void WriteIp(byte[] packet, IPAddress source, IPAddress destination, byte protocol, ushort id, byte tos, byte ttl)
    {
        if (source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            packet[0] = 0x45;
            packet[1] = tos;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), id);
            packet[6] = 0x40; // DF
            packet[8] = ttl;
            packet[9] = protocol;
            source.GetAddressBytes().CopyTo(packet, 12);
            destination.GetAddressBytes().CopyTo(packet, 16);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), (ushort)~Fold(Sum(packet.AsSpan(0, 20))));
        }
        else
        {
            packet[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(packet.Length - 40));
            packet[6] = protocol;
            packet[7] = ttl;
            source.GetAddressBytes().CopyTo(packet, 8);
            destination.GetAddressBytes().CopyTo(packet, 24);
        }
    }
}
