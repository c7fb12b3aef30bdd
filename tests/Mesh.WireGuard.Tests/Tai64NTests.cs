using CsCheck;

namespace Mesh.WireGuard.Tests;

public sealed class Tai64NTests
{
    // Expected stamps computed independently with Python 3:
    //   s, n = divmod(ns, 10**9); struct.pack('>QI', (0x400000000000000a + s) % 2**64, n & ~0xffffff).hex()
    [Theory]
    [InlineData(0L, "400000000000000a00000000")]
    [InlineData(999_999_999L, "400000000000000a3b000000")]
    [InlineData(1_700_000_000_123_456_789L, "400000006553f10a07000000")]
    [InlineData(-1L, "40000000000000093b000000")]
    [InlineData(-1_000_000_000L, "400000000000000900000000")]
    public void Write_KnownInstants_MatchesReferenceEncoding(long unixNanoseconds, string expectedHex)
    {
        Span<byte> stamp = stackalloc byte[Tai64N.Size];
        Tai64N.Write(stamp, unixNanoseconds);
        Assert.Equal(expectedHex, Convert.ToHexStringLower(stamp));
    }

    [Fact]
    public void Write_Nanoseconds_AreWhitenedTo2Pow24()
    {
        Span<byte> a = stackalloc byte[Tai64N.Size];
        Span<byte> b = stackalloc byte[Tai64N.Size];
        Tai64N.Write(a, 5_000_000_000L + 16_777_216);
        Tai64N.Write(b, 5_000_000_000L + 16_777_216 + 16_777_215);
        Assert.True(a.SequenceEqual(b));

        Tai64N.Write(b, 5_000_000_000L + 2 * 16_777_216);
        Assert.True(Tai64N.IsAfter(b, a));
    }

    [Fact]
    public void Write_ShortDestination_Throws()
    {
        var buffer = new byte[Tai64N.Size - 1];
        Assert.Throws<ArgumentException>(() => Tai64N.Write(buffer, 0));
    }

    [Fact]
    public void IsAfter_EqualStamps_False()
    {
        var a = new byte[Tai64N.Size];
        Tai64N.Write(a, 123_456_789_000);
        Assert.False(Tai64N.IsAfter(a, a));
    }

    [Fact]
    public void IsAfter_WrongLength_Throws()
    {
        var a = new byte[Tai64N.Size];
        Assert.Throws<ArgumentException>(() => Tai64N.IsAfter(a, new byte[11]));
        Assert.Throws<ArgumentException>(() => Tai64N.IsAfter(new byte[13], a));
    }

    [Fact]
    public void IsAfter_SecondsOutrankNanoseconds()
    {
        Span<byte> earlier = stackalloc byte[Tai64N.Size];
        Span<byte> later = stackalloc byte[Tai64N.Size];
        Tai64N.Write(earlier, 10_999_000_000);
        Tai64N.Write(later, 11_000_000_000);
        Assert.True(Tai64N.IsAfter(later, earlier));
        Assert.False(Tai64N.IsAfter(earlier, later));
    }

    /// <summary>The byte order agrees with time order once both instants are whitened.</summary>
    [Fact]
    public void IsAfter_RandomInstants_AgreesWithWhitenedTimeOrder()
    {
        Gen.Select(Gen.Long[-4_000_000_000_000_000_000, 4_000_000_000_000_000_000], Gen.Long[-3_000_000_000, 3_000_000_000])
            .Sample(
                (t, delta) =>
                {
                    var u = t + delta;
                    var a = new byte[Tai64N.Size];
                    var b = new byte[Tai64N.Size];
                    Tai64N.Write(a, t);
                    Tai64N.Write(b, u);
                    Assert.Equal(Whiten(u).CompareTo(Whiten(t)) > 0, Tai64N.IsAfter(b, a));
                    Assert.Equal(Whiten(t).CompareTo(Whiten(u)) > 0, Tai64N.IsAfter(a, b));
                },
                iter: 2000,
                threads: 1);
    }

    private static (long Seconds, long Nanoseconds) Whiten(long unixNanoseconds)
    {
        var seconds = Math.DivRem(unixNanoseconds, 1_000_000_000, out var ns);
        if (ns < 0)
        {
            seconds--;
            ns += 1_000_000_000;
        }

        return (seconds, ns & ~0xff_ffffL);
    }
}
