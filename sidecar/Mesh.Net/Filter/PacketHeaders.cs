using System.Buffers.Binary;

namespace Mesh.Net.Filter;

/// <summary>Outcome of <see cref="PacketHeaders.Parse"/>.</summary>
internal enum ParseStatus : byte
{
    /// <summary>IP and transport headers read (transport fields are zero for protocols without ports).</summary>
    Ok,

    /// <summary>A fragment after the first: addresses and protocol are known, the transport header is not.</summary>
    NonFirstFragment,

    Malformed,
}

/// <summary>
/// The header fields the packet filter needs, read without allocating from an IPv4 or IPv6 packet.
/// For ICMP echo the identifier stands in for the source port (and the destination port is 0), so
/// echo flows key like UDP flows.
/// </summary>
internal struct PacketHeaders
{
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte IcmpV6 = 58;
    public const byte Sctp = 132;

    public const byte TcpSyn = 0x02;
    public const byte TcpAck = 0x10;

    public const byte IcmpEchoReply = 0;
    public const byte IcmpEchoRequest = 8;
    public const byte IcmpV6EchoRequest = 128;
    public const byte IcmpV6EchoReply = 129;

    // IPv4 (RFC 791 §3.1):
    //  0                   1                   2                   3
    //  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |Version|  IHL  |Type of Service|          Total Length         |
    // |         Identification        |Flags|      Fragment Offset    |
    // |  Time to Live |    Protocol   |         Header Checksum       |
    // |                       Source Address                          |
    // |                    Destination Address                        |
    // |                    Options (IHL > 5)                          |
    private const int V4MinHeader = 20;
    private const int V4TotalLength = 2;
    private const int V4FlagsFragment = 6;
    private const int V4Protocol = 9;
    private const int V4Source = 12;
    private const int V4Destination = 16;
    private const ushort V4FragmentOffsetMask = 0x1fff;

    // IPv6 (RFC 8200 §3), then zero or more extension headers (§4):
    // |Version| Traffic Class |           Flow Label                  |
    // |         Payload Length        |  Next Header  |   Hop Limit   |
    // |                 Source Address (16 bytes)                     |
    // |              Destination Address (16 bytes)                   |
    // Hop-by-Hop (0), Routing (43), Destination Options (60): | Next | Hdr Ext Len (8-octet units, not counting the first 8) | ...
    // Fragment (44): | Next | Reserved | Fragment Offset (13 bits) |Res|M| Identification (32) |
    // Authentication Header (51, RFC 4302): | Next | Payload Len (4-octet units, minus 2) | ...
    private const int V6Header = 40;
    private const int V6PayloadLength = 4;
    private const int V6NextHeader = 6;
    private const int V6Source = 8;
    private const int V6Destination = 24;
    private const byte V6HopByHop = 0;
    private const byte V6Routing = 43;
    private const byte V6Fragment = 44;
    private const byte V6Authentication = 51;
    private const byte V6DestinationOptions = 60;
    private const int V6FragmentHeader = 8;

    /// <summary>More extension headers than this is treated as malformed (no real stack sends so many).</summary>
    private const int MaxExtensionHeaders = 8;

    // TCP (RFC 9293 §3.1): ports at 0 and 2, data offset in the high nibble of byte 12, flags at 13.
    private const int TcpMinHeader = 20;
    private const int TcpDataOffset = 12;
    private const int TcpFlags = 13;

    // UDP (RFC 768) 8 bytes, SCTP common header (RFC 9260 §3.1) 12 bytes, ports first in both.
    private const int UdpHeader = 8;
    private const int SctpHeader = 12;

    // ICMP (RFC 792) and ICMPv6 (RFC 4443): | Type | Code | Checksum | 4 bytes (echo: Identifier, Sequence) |
    private const int IcmpHeader = 8;
    private const int IcmpIdentifier = 4;

    /// <summary>A quoted packet inside an ICMP error carries at least the first 8 transport bytes (RFC 792).</summary>
    private const int QuotedTransportBytes = 8;

    public int Family;
    public byte Protocol;
    public UInt128 Source;
    public UInt128 Destination;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte TcpFlagBits;
    public byte IcmpType;
    public bool HasPorts;

    /// <summary>The fragment offset in 8-byte units (non-first fragments only).</summary>
    public int FragmentOffset;

    /// <summary>Offset and length of the transport header and payload within the packet.</summary>
    public int TransportOffset;
    public int TransportLength;

    public readonly bool IsIcmp => Protocol == (Family == AddressRange.V4 ? Icmp : IcmpV6);

    public readonly bool IsTcpBareSyn => (TcpFlagBits & (TcpSyn | TcpAck)) == TcpSyn;

    /// <summary>
    /// Reads <paramref name="packet"/>. A <paramref name="quoted"/> packet is the copy of an
    /// offending packet inside an ICMP error: its length fields describe the original, not the
    /// quote, and only 8 transport bytes are guaranteed, so both checks are relaxed.
    /// </summary>
    public static ParseStatus Parse(ReadOnlySpan<byte> packet, bool quoted, out PacketHeaders headers)
    {
        headers = default;
        if (packet.IsEmpty)
        {
            return ParseStatus.Malformed;
        }

        int version = packet[0] >> 4;
        int transport;
        int end;
        if (version == 4)
        {
            if (packet.Length < V4MinHeader)
            {
                return ParseStatus.Malformed;
            }

            int headerLength = (packet[0] & 0x0f) * 4;
            int total = BinaryPrimitives.ReadUInt16BigEndian(packet[V4TotalLength..]);
            if (headerLength < V4MinHeader || headerLength > packet.Length)
            {
                return ParseStatus.Malformed;
            }

            if (quoted)
            {
                end = packet.Length;
            }
            else if (total < headerLength || total > packet.Length)
            {
                return ParseStatus.Malformed;
            }
            else
            {
                end = total;
            }

            headers.Family = AddressRange.V4;
            headers.Protocol = packet[V4Protocol];
            headers.Source = BinaryPrimitives.ReadUInt32BigEndian(packet[V4Source..]);
            headers.Destination = BinaryPrimitives.ReadUInt32BigEndian(packet[V4Destination..]);
            transport = headerLength;
            int fragmentOffset = BinaryPrimitives.ReadUInt16BigEndian(packet[V4FlagsFragment..]) & V4FragmentOffsetMask;
            if (fragmentOffset != 0)
            {
                headers.FragmentOffset = fragmentOffset;
                return ParseStatus.NonFirstFragment;
            }
        }
        else if (version == 6)
        {
            if (packet.Length < V6Header)
            {
                return ParseStatus.Malformed;
            }

            int payload = BinaryPrimitives.ReadUInt16BigEndian(packet[V6PayloadLength..]);
            if (quoted)
            {
                end = packet.Length;
            }
            else if (V6Header + payload > packet.Length)
            {
                return ParseStatus.Malformed;
            }
            else
            {
                end = V6Header + payload;
            }

            headers.Family = AddressRange.V6;
            headers.Source = BinaryPrimitives.ReadUInt128BigEndian(packet[V6Source..]);
            headers.Destination = BinaryPrimitives.ReadUInt128BigEndian(packet[V6Destination..]);
            byte next = packet[V6NextHeader];
            transport = V6Header;
            for (int n = 0; ; n++)
            {
                if (n == MaxExtensionHeaders)
                {
                    return ParseStatus.Malformed;
                }

                int length;
                if (next is V6HopByHop or V6Routing or V6DestinationOptions)
                {
                    if (transport + 2 > end)
                    {
                        return ParseStatus.Malformed;
                    }

                    length = (packet[transport + 1] + 1) * 8;
                }
                else if (next == V6Authentication)
                {
                    if (transport + 2 > end)
                    {
                        return ParseStatus.Malformed;
                    }

                    length = (packet[transport + 1] + 2) * 4;
                }
                else if (next == V6Fragment)
                {
                    if (transport + V6FragmentHeader > end)
                    {
                        return ParseStatus.Malformed;
                    }

                    length = V6FragmentHeader;
                    int fragmentOffset = BinaryPrimitives.ReadUInt16BigEndian(packet[(transport + 2)..]) >> 3;
                    if (fragmentOffset != 0)
                    {
                        headers.Protocol = packet[transport];
                        headers.FragmentOffset = fragmentOffset;
                        return ParseStatus.NonFirstFragment;
                    }
                }
                else
                {
                    break;
                }

                next = packet[transport];
                transport += length;
                if (transport > end)
                {
                    return ParseStatus.Malformed;
                }
            }

            headers.Protocol = next;
        }
        else
        {
            return ParseStatus.Malformed;
        }

        headers.TransportOffset = transport;
        headers.TransportLength = end - transport;
        var l4 = packet[transport..end];
        switch (headers.Protocol)
        {
            case Tcp:
                if (quoted)
                {
                    return l4.Length < QuotedTransportBytes ? ParseStatus.Malformed : ReadPorts(l4, ref headers);
                }

                if (l4.Length < TcpMinHeader || (l4[TcpDataOffset] >> 4) * 4 < TcpMinHeader)
                {
                    return ParseStatus.Malformed;
                }

                headers.TcpFlagBits = l4[TcpFlags];
                return ReadPorts(l4, ref headers);
            case Udp:
                return l4.Length < UdpHeader ? ParseStatus.Malformed : ReadPorts(l4, ref headers);
            case Sctp:
                return l4.Length < (quoted ? QuotedTransportBytes : SctpHeader) ? ParseStatus.Malformed : ReadPorts(l4, ref headers);
            default:
                if (!headers.IsIcmp)
                {
                    return ParseStatus.Ok;
                }

                if (l4.Length < IcmpHeader)
                {
                    return ParseStatus.Malformed;
                }

                headers.IcmpType = l4[0];
                if (IsEcho(headers.Family, headers.IcmpType))
                {
                    headers.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(l4[IcmpIdentifier..]);
                }

                return ParseStatus.Ok;
        }
    }

    public static bool IsEcho(int family, byte type) => family == AddressRange.V4
        ? type is IcmpEchoRequest or IcmpEchoReply
        : type is IcmpV6EchoRequest or IcmpV6EchoReply;

    /// <summary>
    /// ICMP errors that quote an offending packet: IPv4 destination unreachable (3), time exceeded
    /// (11), parameter problem (12); ICMPv6 types 1-4 (RFC 4443 §3). Redirects and source quench are
    /// not errors here: they steer routing and are filtered like any other ICMP.
    /// </summary>
    public static bool IsIcmpError(int family, byte type) => family == AddressRange.V4
        ? type is 3 or 11 or 12
        : type is >= 1 and <= 4;

    /// <summary>Where the quoted packet of an ICMP error starts, relative to the ICMP header.</summary>
    public const int IcmpQuoteOffset = IcmpHeader;

    private static ParseStatus ReadPorts(ReadOnlySpan<byte> l4, ref PacketHeaders headers)
    {
        headers.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(l4);
        headers.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]);
        headers.HasPorts = true;
        return ParseStatus.Ok;
    }
}
