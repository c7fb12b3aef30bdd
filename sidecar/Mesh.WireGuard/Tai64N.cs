using System.Buffers.Binary;

namespace Mesh.WireGuard;

/// <summary>
/// The TAI64N timestamp carried, encrypted, in a handshake initiation. The responder keeps the
/// greatest timestamp it has seen per peer and drops initiations that are not strictly newer,
/// which stops a captured initiation from being replayed (whitepaper §5.1, §5.4.2).
/// </summary>
/// <remarks>
/// <para>
/// Wire format (12 bytes, https://cr.yp.to/libtai/tai64.html):
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              seconds label (uint64, big-endian)               |
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                nanoseconds (uint32, big-endian)               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </para>
/// <para>
/// The seconds label is 2^62 + 10 + Unix seconds, the constant used by the reference
/// implementations (wireguard-go <c>tai64n/tai64n.go</c> <c>base = 0x400000000000000a</c>; the
/// Linux module's <c>noise.c</c> <c>tai64n_now</c>). The 10 is the TAI−UTC offset of 1972; leap
/// seconds since then are ignored, exactly as the peers we interoperate with ignore them. Only the
/// ordering between two stamps from the same sender matters, so this is harmless.
/// </para>
/// <para>
/// The nanoseconds are whitened: rounded down to a multiple of 2^24 ns (about 16.8 ms), as
/// wireguard-go (<c>whitenerMask = 0x1000000 - 1</c>) and the Linux module
/// (<c>rounddown_pow_of_two(NSEC_PER_SEC / INITIATIONS_PER_SECOND)</c>) do, so that the stamp does not
/// leak the sender's fine clock or act as a fingerprint. Initiations are rate-limited well below
/// one per 16.8 ms, so the coarse stamps still strictly increase.
/// </para>
/// <para>Pure: the time comes in as an argument; nothing here reads a clock.</para>
/// </remarks>
public static class Tai64N
{
    /// <summary>Encoded size in bytes.</summary>
    public const int Size = 12;

    /// <summary>2^62 + 10: TAI64 label of the Unix epoch as the reference implementations write it.</summary>
    public const ulong EpochLabel = 0x400000000000000aUL;

    /// <summary>Low nanosecond bits cleared by whitening (2^24 − 1).</summary>
    public const uint WhitenerMask = 0x00ff_ffff;

    private const int SecondsOffset = 0;
    private const int NanosecondsOffset = 8;
    private const long NanosecondsPerSecond = 1_000_000_000;

    /// <summary>
    /// Writes the whitened TAI64N stamp of <paramref name="unixTimeNanoseconds"/> (nanoseconds since
    /// 1970-01-01T00:00:00Z) into the first <see cref="Size"/> bytes of <paramref name="destination"/>.
    /// </summary>
    public static void Write(Span<byte> destination, long unixTimeNanoseconds)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"Destination must hold at least {Size} bytes.", nameof(destination));
        }

        // Floor division, so instants before 1970 still order correctly.
        var seconds = Math.DivRem(unixTimeNanoseconds, NanosecondsPerSecond, out var nanoseconds);
        if (nanoseconds < 0)
        {
            seconds--;
            nanoseconds += NanosecondsPerSecond;
        }

        BinaryPrimitives.WriteUInt64BigEndian(destination[SecondsOffset..], EpochLabel + (ulong)seconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[NanosecondsOffset..], (uint)nanoseconds & ~WhitenerMask);
    }

    /// <summary>
    /// True when <paramref name="candidate"/> is strictly later than <paramref name="previous"/>
    /// (big-endian byte comparison of the whole 12-byte stamp). Both must be exactly <see cref="Size"/> bytes.
    /// </summary>
    public static bool IsAfter(ReadOnlySpan<byte> candidate, ReadOnlySpan<byte> previous)
    {
        if (candidate.Length != Size)
        {
            throw new ArgumentException($"A TAI64N stamp is exactly {Size} bytes.", nameof(candidate));
        }

        if (previous.Length != Size)
        {
            throw new ArgumentException($"A TAI64N stamp is exactly {Size} bytes.", nameof(previous));
        }

        return candidate.SequenceCompareTo(previous) > 0;
    }
}
