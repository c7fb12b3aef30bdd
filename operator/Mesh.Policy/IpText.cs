using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Policy;

/// <summary>
/// Strict text forms of addresses and prefixes. IPv4 and IPv6 share one 128-bit space: an IPv4 address
/// a.b.c.d is stored as ::ffff:a.b.c.d, and an IPv6 prefix never covers that block, so "::/0" does not
/// match IPv4 addresses (as in Tailscale, where the families are separate).
/// </summary>
internal static class IpText
{
    private static readonly UInt128 V4Base = (UInt128)0xFFFF << 32;
    private static readonly IpRange V4Block = new(V4Base, V4Base | 0xFFFF_FFFF);

    public static bool IsV4(UInt128 value) => value >> 32 == 0xFFFF;

    public static UInt128 FromV4(uint v4) => V4Base | v4;

    /// <summary>Parses a dotted-quad IPv4 or an IPv6 address; rejects shorthand forms like "1" or "1.2.3".</summary>
    public static bool TryParseAddress(string text, out UInt128 value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text) || text.Contains('%', StringComparison.Ordinal))
        {
            return false;
        }

        if (text.Contains(':', StringComparison.Ordinal))
        {
            if (!IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            v6.TryWriteBytes(bytes, out _);
            value = new UInt128(
                System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes),
                System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
            return true;
        }

        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        uint v = 0;
        foreach (var p in parts)
        {
            if (p.Length is 0 or > 3 || (p.Length > 1 && p[0] == '0') || !p.All(char.IsAsciiDigit))
            {
                return false;
            }

            var octet = int.Parse(p, CultureInfo.InvariantCulture);
            if (octet > 255)
            {
                return false;
            }

            v = (v << 8) | (uint)octet;
        }

        value = FromV4(v);
        return true;
    }

    /// <summary>
    /// Parses "addr" or "addr/bits" into the set it covers. Host bits below the mask are cleared, as Tailscale does.
    /// </summary>
    public static bool TryParsePrefix(string text, out IpSet set, out string canonical)
    {
        set = IpSet.Empty;
        canonical = "";
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addrText = slash < 0 ? text : text[..slash];
        if (!TryParseAddress(addrText, out var addr))
        {
            return false;
        }

        var v4 = IsV4(addr) && !addrText.Contains(':', StringComparison.Ordinal);
        var maxBits = v4 ? 32 : 128;
        var bits = maxBits;
        if (slash >= 0)
        {
            var bitsText = text[(slash + 1)..];
            if (bitsText.Length is 0 or > 3 || !bitsText.All(char.IsAsciiDigit) || (bitsText.Length > 1 && bitsText[0] == '0'))
            {
                return false;
            }

            bits = int.Parse(bitsText, CultureInfo.InvariantCulture);
            if (bits > maxBits)
            {
                return false;
            }
        }

        var bits128 = v4 ? 96 + bits : bits;
        var hostMask = bits128 == 128 ? UInt128.Zero : UInt128.MaxValue >> bits128;
        var first = addr & ~hostMask;
        var range = new IpRange(first, first | hostMask);
        set = v4 ? IpSet.Of(range) : IpSet.Of(range).Except(IpSet.Of(V4Block));
        canonical = bits == maxBits ? Format(first) : Format(first) + "/" + bits.ToString(CultureInfo.InvariantCulture);
        if (!v4 && set.IsEmpty)
        {
            // An IPv6 spelling of the IPv4-mapped block: treat it as the IPv4 addresses it names.
            set = IpSet.Of(range);
        }

        return true;
    }

    public static string Format(UInt128 value)
    {
        if (IsV4(value))
        {
            var v = (uint)(value & 0xFFFF_FFFF);
            return string.Create(CultureInfo.InvariantCulture, $"{v >> 24}.{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}");
        }

        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)(value >> 64));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], (ulong)value);
        return new IPAddress(bytes).ToString();
    }

    /// <summary>Splits a range into the fewest CIDR blocks, as (first address, prefix length in the 128-bit space).</summary>
    public static IEnumerable<(UInt128 First, int Bits)> ToPrefixes(IpRange range)
    {
        var first = range.First;
        while (true)
        {
            // The largest block aligned at 'first' that does not pass 'Last'.
            var size = first == 0 ? 128 : (int)UInt128.TrailingZeroCount(first);
            while (size > 0 && BlockLast(first, size) > range.Last)
            {
                size--;
            }

            yield return (first, 128 - size);
            var last = BlockLast(first, size);
            if (last >= range.Last)
            {
                yield break;
            }

            first = last + 1;
        }
    }

    private static UInt128 BlockLast(UInt128 first, int size) =>
        size == 128 ? UInt128.MaxValue : first + ((UInt128.One << size) - 1);

    public static string FormatPrefix(UInt128 first, int bits128)
    {
        if (IsV4(first) && bits128 >= 96)
        {
            return bits128 == 128 ? Format(first) : Format(first) + "/" + (bits128 - 96).ToString(CultureInfo.InvariantCulture);
        }

        return bits128 == 128 ? Format(first) : Format(first) + "/" + bits128.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>One range as Tailscale writes it: an address, a CIDR, or "first-last".</summary>
    public static IEnumerable<string> FormatRange(IpRange range)
    {
        // Never let one text span the IPv4 block boundary.
        foreach (var part in SplitFamilies(range))
        {
            if (part.First == part.Last)
            {
                yield return Format(part.First);
                continue;
            }

            using var e = ToPrefixes(part).GetEnumerator();
            e.MoveNext();
            var one = e.Current;
            if (!e.MoveNext())
            {
                yield return FormatPrefix(one.First, one.Bits);
            }
            else
            {
                yield return Format(part.First) + "-" + Format(part.Last);
            }
        }
    }

    public static IEnumerable<IpRange> SplitFamilies(IpRange range)
    {
        if (range.Last < V4Block.First || range.First > V4Block.Last)
        {
            yield return range;
            yield break;
        }

        if (range.First < V4Block.First)
        {
            yield return new IpRange(range.First, V4Block.First - 1);
        }

        yield return new IpRange(UInt128.Max(range.First, V4Block.First), UInt128.Min(range.Last, V4Block.Last));
        if (range.Last > V4Block.Last)
        {
            yield return new IpRange(V4Block.Last + 1, range.Last);
        }
    }
}
