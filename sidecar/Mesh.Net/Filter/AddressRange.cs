using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Net.Filter;

/// <summary>
/// An inclusive range of addresses of one family. Addresses are unsigned integers in network
/// order: IPv4 in the low 32 bits of a <see cref="UInt128"/>, IPv6 in all 128, so one set of
/// interval code serves both families. An IPv4-mapped IPv6 address (<c>::ffff:a.b.c.d</c>) is IPv6.
/// </summary>
internal readonly record struct AddressRange(int Family, UInt128 Start, UInt128 End)
{
    public const int V4 = 0;
    public const int V6 = 1;

    public static UInt128 MaxOf(int family) => family == V4 ? uint.MaxValue : UInt128.MaxValue;

    public bool IsWholeFamily => Start == UInt128.Zero && End == MaxOf(Family);

    public bool Contains(UInt128 address) => address >= Start && address <= End;

    /// <summary>
    /// Parses one SrcIPs/DstPorts entry: <c>*</c> (both families, two ranges), an address, a CIDR
    /// (host bits ignored, as the coordinator may send <c>100.64.0.7/10</c>), or <c>first-last</c>.
    /// Adds the result to <paramref name="into"/>; returns an explanation on failure, else null.
    /// </summary>
    public static string? TryParse(string text, List<AddressRange> into)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.AsSpan().Trim();
        if (s.SequenceEqual("*"))
        {
            into.Add(new AddressRange(V4, UInt128.Zero, MaxOf(V4)));
            into.Add(new AddressRange(V6, UInt128.Zero, MaxOf(V6)));
            return null;
        }

        int dash = s.IndexOf('-');
        if (dash >= 0)
        {
            if (!TryAddress(s[..dash], out int f1, out var a) || !TryAddress(s[(dash + 1)..], out int f2, out var b))
            {
                return "a range needs two addresses";
            }

            if (f1 != f2)
            {
                return "a range's ends must be of one family";
            }

            if (a > b)
            {
                return "a range's first address is above its last";
            }

            into.Add(new AddressRange(f1, a, b));
            return null;
        }

        int slash = s.IndexOf('/');
        if (slash >= 0)
        {
            if (!TryAddress(s[..slash], out int family, out var address))
            {
                return "not an address before '/'";
            }

            int bits = family == V4 ? 32 : 128;
            if (!int.TryParse(s[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int length) || length > bits)
            {
                return $"prefix length must be 0..{bits}";
            }

            var hostMask = length == bits ? UInt128.Zero : (MaxOf(family) >> length);
            var start = address & ~hostMask & MaxOf(family);
            into.Add(new AddressRange(family, start, start | hostMask));
            return null;
        }

        if (!TryAddress(s, out int fam, out var host))
        {
            return "not an address, CIDR, range or '*'";
        }

        into.Add(new AddressRange(fam, host, host));
        return null;
    }

    public static AddressRange FromNetwork(IPNetwork network)
    {
        var list = new List<AddressRange>(1);
        var error = TryParse(network.ToString(), list);
        if (error is not null)
        {
            throw new ArgumentException($"'{network}': {error}", nameof(network));
        }

        return list[0];
    }

    public static (int Family, UInt128 Value) FromAddress(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int written);
        return written == 4
            ? (V4, BinaryPrimitives.ReadUInt32BigEndian(bytes))
            : (V6, BinaryPrimitives.ReadUInt128BigEndian(bytes));
    }

    public static IPAddress ToAddress(int family, UInt128 value)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (family == V4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)value);
            return new IPAddress(bytes[..4]);
        }

        BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        return new IPAddress(bytes);
    }

    private static bool TryAddress(ReadOnlySpan<char> s, out int family, out UInt128 value)
    {
        family = 0;
        value = UInt128.Zero;
        if (s.IsEmpty || s.Contains('%') || !IPAddress.TryParse(s, out var address))
        {
            return false;
        }

        // IPAddress.TryParse accepts "1" or "1.2" as IPv4 shorthands; the coordinator never sends
        // those, and accepting them would hide typos.
        if (address.AddressFamily == AddressFamily.InterNetwork && s.Count('.') != 3)
        {
            return false;
        }

        (family, value) = FromAddress(address);
        return true;
    }
}

/// <summary>
/// An immutable set of addresses of both families as sorted, disjoint, merged ranges; lookup is a
/// binary search. Used for "is this destination ours".
/// </summary>
internal sealed class AddressSet
{
    private readonly UInt128[][] _starts;
    private readonly UInt128[][] _ends;

    public AddressSet(IEnumerable<AddressRange> ranges)
    {
        _starts = new UInt128[2][];
        _ends = new UInt128[2][];
        for (int family = 0; family < 2; family++)
        {
            var list = new List<AddressRange>();
            foreach (var range in ranges)
            {
                if (range.Family == family)
                {
                    list.Add(range);
                }
            }

            list.Sort((a, b) => a.Start.CompareTo(b.Start));
            var starts = new List<UInt128>();
            var ends = new List<UInt128>();
            foreach (var range in list)
            {
                int last = ends.Count - 1;
                if (last >= 0 && (ends[last] == UInt128.MaxValue || range.Start <= ends[last] + 1))
                {
                    if (range.End > ends[last])
                    {
                        ends[last] = range.End;
                    }
                }
                else
                {
                    starts.Add(range.Start);
                    ends.Add(range.End);
                }
            }

            _starts[family] = [.. starts];
            _ends[family] = [.. ends];
        }
    }

    public bool Contains(int family, UInt128 address)
    {
        var starts = _starts[family];
        int i = Intervals.Floor(starts, address);
        return i >= 0 && address <= _ends[family][i];
    }
}

internal static class Intervals
{
    /// <summary>Index of the last element ≤ <paramref name="value"/> in a sorted array, or -1.</summary>
    /// <remarks>
    /// Halving without an early exit, so the loop's only branch is its count and the comparison
    /// becomes a conditional move: on random addresses a classic binary search mispredicts about
    /// half its branches, which cost more than the comparisons (FilterBenchmarks).
    /// </remarks>
    public static int Floor(UInt128[] sorted, UInt128 value)
    {
        int n = sorted.Length;
        if (n == 0)
        {
            return -1;
        }

        int at = 0;
        while (n > 1)
        {
            int half = n >> 1;
            at = sorted[at + half] <= value ? at + half : at;
            n -= half;
        }

        return sorted[at] <= value ? at : -1;
    }
}
