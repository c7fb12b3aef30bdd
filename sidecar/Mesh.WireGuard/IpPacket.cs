using System.Buffers.Binary;

namespace Mesh.WireGuard;

/// <summary>
/// Just enough of IPv4 (RFC 791) and IPv6 (RFC 8200) headers for cryptokey routing: the version,
/// the total length, and the source and destination addresses.
/// <code>
/// IPv4: byte 0 high nibble = 4; bytes 2..4 total length; 12..16 source; 16..20 destination
/// IPv6: byte 0 high nibble = 6; bytes 4..6 payload length (+40); 8..24 source; 24..40 destination
/// </code>
/// </summary>
public static class IpPacket
{
    public const int IPv4HeaderMin = 20;
    public const int IPv6Header = 40;

    public static int Version(ReadOnlySpan<byte> packet) => packet.IsEmpty ? 0 : packet[0] >> 4;

    /// <summary>The destination address bytes (4 or 16), or empty when the packet is not IP.</summary>
    public static ReadOnlySpan<byte> Destination(ReadOnlySpan<byte> packet) => Version(packet) switch
    {
        4 when packet.Length >= IPv4HeaderMin => packet.Slice(16, 4),
        6 when packet.Length >= IPv6Header => packet.Slice(24, 16),
        _ => default,
    };

    public static ReadOnlySpan<byte> Source(ReadOnlySpan<byte> packet) => Version(packet) switch
    {
        4 when packet.Length >= IPv4HeaderMin => packet.Slice(12, 4),
        6 when packet.Length >= IPv6Header => packet.Slice(8, 16),
        _ => default,
    };

    /// <summary>
    /// The packet's length from its own header, or -1 when the header is not a valid IPv4/IPv6
    /// header or claims more bytes than <paramref name="packet"/> holds (the rest is padding).
    /// </summary>
    public static int TotalLength(ReadOnlySpan<byte> packet)
    {
        switch (Version(packet))
        {
            case 4 when packet.Length >= IPv4HeaderMin:
                {
                    int length = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
                    return length >= IPv4HeaderMin && length <= packet.Length ? length : -1;
                }

            case 6 when packet.Length >= IPv6Header:
                {
                    var length = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) + IPv6Header;
                    return length <= packet.Length ? length : -1;
                }

            default:
                return -1;
        }
    }
}
