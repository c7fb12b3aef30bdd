using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Mesh.Net.Offload;

/// <summary>
/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
/// big-endian words. Sums are kept unfolded in a 64-bit accumulator so pieces (pseudo-header,
/// header, payload) add up before one final fold.
/// </summary>
/// <remarks>
/// The sum is computed over native-endian words and swapped once at the end: the ones' complement
/// sum is byte-order independent up to that swap (RFC 1071 §2(B)). Eight bytes per step.
/// </remarks>
internal static class InternetChecksum
{
    /// <summary>Adds <paramref name="data"/> to <paramref name="sum"/> (a running native-endian sum); odd lengths pad with a zero byte.</summary>
    public static ulong Add(ulong sum, ReadOnlySpan<byte> data)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var w in words)
        {
            sum += (uint)w;
            sum += w >> 32;
        }

        var i = words.Length * 8;
        if (data.Length - i >= 4)
        {
            sum += MemoryMarshal.Read<uint>(data[i..]);
            i += 4;
        }

        if (data.Length - i >= 2)
        {
            sum += MemoryMarshal.Read<ushort>(data[i..]);
            i += 2;
        }

        if (i < data.Length)
        {
            // The odd byte is the high half of a big-endian word: its place in a native word.
            sum += BitConverter.IsLittleEndian ? data[i] : (ulong)data[i] << 8;
        }

        return sum;
    }

    /// <summary>Adds a 16-bit value given in host order (a length, a protocol number) to a native-endian sum.</summary>
    public static ulong AddHostWord(ulong sum, ushort value) =>
        sum + (BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value);

    /// <summary>Folds the sum to 16 bits, in network order as a host value (not complemented).</summary>
    public static ushort Fold(ulong sum)
    {
        sum = (sum & 0xffffffff) + (sum >> 32);
        sum = (sum & 0xffffffff) + (sum >> 32);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        var folded = (ushort)sum;
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(folded) : folded;
    }

    /// <summary>The checksum to store: the complement of the folded sum.</summary>
    public static ushort Finish(ulong sum) => (ushort)~Fold(sum);

    /// <summary>The pseudo-header sum of TCP/UDP over IPv4 (RFC 793 §3.1) or IPv6 (RFC 8200 §8.1).</summary>
    public static ulong PseudoHeader(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte protocol, int transportLength)
    {
        var sum = Add(Add(0, source), destination);
        sum = AddHostWord(sum, protocol);
        sum = AddHostWord(sum, (ushort)(transportLength >> 16));
        return AddHostWord(sum, (ushort)transportLength);
    }
}
