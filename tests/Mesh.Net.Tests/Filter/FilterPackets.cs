using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Net.Tests.Filter;

/// <summary>
/// Builds IPv4 (RFC 791) and IPv6 (RFC 8200) packets with TCP, UDP, ICMP or any payload by hand,
/// for the packet filter tests. Checksums are left zero: the filter does not read them.
/// </summary>
internal static class FilterPackets
{
    public const byte Fin = 0x01;
    public const byte Syn = 0x02;
    public const byte Rst = 0x04;
    public const byte Ack = 0x10;

    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte IcmpV6 = 58;
    public const byte Gre = 47;

    public static byte[] TcpPacket(string source, int sourcePort, string destination, int destinationPort, byte flags = Syn)
    {
        var tcp = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(2), (ushort)destinationPort);
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(14), 65535);
        return Ip(source, destination, Tcp, tcp);
    }

    public static byte[] UdpPacket(string source, int sourcePort, string destination, int destinationPort, int payload = 4)
    {
        var udp = new byte[8 + payload];
        BinaryPrimitives.WriteUInt16BigEndian(udp, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), (ushort)destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length);
        return Ip(source, destination, Udp, udp);
    }

    /// <summary>An echo request or reply (ICMP types 8/0, ICMPv6 128/129 by the address family).</summary>
    public static byte[] Echo(string source, string destination, bool request, int identifier, int sequence = 1)
    {
        bool v6 = IsV6(source);
        var icmp = new byte[16];
        icmp[0] = v6 ? (byte)(request ? 128 : 129) : (byte)(request ? 8 : 0);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), (ushort)identifier);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), (ushort)sequence);
        return Ip(source, destination, v6 ? IcmpV6 : Icmp, icmp);
    }

    /// <summary>Any ICMP/ICMPv6 message with a type and code and 4 zero bytes.</summary>
    public static byte[] IcmpMessage(string source, string destination, byte type, byte code = 0)
    {
        var icmp = new byte[8];
        icmp[0] = type;
        icmp[1] = code;
        return Ip(source, destination, IsV6(source) ? IcmpV6 : Icmp, icmp);
    }

    /// <summary>
    /// An ICMP error of <paramref name="type"/> quoting the IP header and first 8 transport bytes of
    /// <paramref name="offending"/>, as a router or host sends it (RFC 792, RFC 4443 §2.4).
    /// </summary>
    public static byte[] IcmpError(string source, string destination, byte type, byte[] offending, byte code = 0)
    {
        int ipHeader = offending[0] >> 4 == 4 ? (offending[0] & 0x0f) * 4 : 40;
        int quoted = Math.Min(offending.Length, ipHeader + 8);
        var icmp = new byte[8 + quoted];
        icmp[0] = type;
        icmp[1] = code;
        offending.AsSpan(0, quoted).CopyTo(icmp.AsSpan(8));
        return Ip(source, destination, IsV6(source) ? IcmpV6 : Icmp, icmp);
    }

    public static byte[] Raw(string source, string destination, byte protocol, int payload = 8) =>
        Ip(source, destination, protocol, new byte[payload]);

    /// <summary>
    /// An IP packet around <paramref name="transport"/>. A fragment offset (in 8-byte units) or
    /// <paramref name="moreFragments"/> makes an IPv4 fragment, or an IPv6 packet with a Fragment
    /// header; <paramref name="v6Extensions"/> inserts that many Destination Options headers first.
    /// </summary>
    public static byte[] Ip(
        string source,
        string destination,
        byte protocol,
        ReadOnlySpan<byte> transport,
        int fragmentOffset = 0,
        bool moreFragments = false,
        int v6Extensions = 0)
    {
        var src = IPAddress.Parse(source);
        var dst = IPAddress.Parse(destination);
        bool fragment = fragmentOffset != 0 || moreFragments;
        if (src.AddressFamily == AddressFamily.InterNetwork)
        {
            var packet = new byte[20 + transport.Length];
            packet[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), 0x1234);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), (ushort)((moreFragments ? 0x2000 : 0) | fragmentOffset));
            packet[8] = 64;
            packet[9] = protocol;
            src.TryWriteBytes(packet.AsSpan(12), out _);
            dst.TryWriteBytes(packet.AsSpan(16), out _);
            transport.CopyTo(packet.AsSpan(20));
            return packet;
        }

        int extensions = (v6Extensions * 8) + (fragment ? 8 : 0);
        var v6 = new byte[40 + extensions + transport.Length];
        v6[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(v6.AsSpan(4), (ushort)(extensions + transport.Length));
        v6[7] = 64;
        src.TryWriteBytes(v6.AsSpan(8), out _);
        dst.TryWriteBytes(v6.AsSpan(24), out _);
        int offset = 40;
        int nextHeaderAt = 6;
        for (int i = 0; i < v6Extensions; i++)
        {
            v6[nextHeaderAt] = 60;
            nextHeaderAt = offset;
            v6[offset + 1] = 0;
            v6[offset + 2] = 1; // PadN option filling the 8 bytes
            v6[offset + 3] = 4;
            offset += 8;
        }

        if (fragment)
        {
            v6[nextHeaderAt] = 44;
            nextHeaderAt = offset;
            BinaryPrimitives.WriteUInt16BigEndian(v6.AsSpan(offset + 2), (ushort)((fragmentOffset << 3) | (moreFragments ? 1 : 0)));
            BinaryPrimitives.WriteUInt32BigEndian(v6.AsSpan(offset + 4), 0xabcdef);
            offset += 8;
        }

        v6[nextHeaderAt] = protocol;
        transport.CopyTo(v6.AsSpan(offset));
        return v6;
    }

    private static bool IsV6(string address) => address.Contains(':', StringComparison.Ordinal);
}
