using Mesh.Net.Offload;
using static Mesh.Net.Tests.Offload.OffloadPackets;

namespace Mesh.Net.Tests.Offload;

public sealed class TcpSegmenterTests
{
    private const byte NeedsChecksum = 1;
    private const byte GsoTcpV4 = 1;
    private const byte GsoTcpV6 = 4;
    private const byte GsoUdpL4 = 5;

    /// <summary>Segments a super-packet built as the kernel hands it over (checksum partial) and returns the segments.</summary>
    private static List<byte[]> Split(byte[] superPacket, ushort gsoSize, byte? gsoType = null)
    {
        var ipLength = IpHeaderLength(superPacket);
        var frame = Frame(NeedsChecksum, gsoType ?? (IsV4(superPacket) ? GsoTcpV4 : GsoTcpV6),
            (ushort)(ipLength + TcpHeaderLength(superPacket)), gsoSize, (ushort)ipLength, 16, superPacket);
        var status = TcpSegmenter.Start(frame, out _, out var segmenter);
        Assert.Equal(SegmentStatus.Segmented, status);
        var segments = new List<byte[]>();
        var output = new byte[2000];
        int n;
        while ((n = segmenter.Next(output)) > 0)
        {
            segments.Add(output.AsSpan(0, n).ToArray());
        }

        return segments;
    }

    private static void AssertSegmentsOf(byte[] superPacket, List<byte[]> segments, int gsoSize)
    {
        var payload = TcpPayload(superPacket).ToArray();
        var expectedCount = (payload.Length + gsoSize - 1) / gsoSize;
        Assert.Equal(expectedCount, segments.Count);
        var joined = new List<byte>();
        var flags = Flags(superPacket);
        for (var i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            var first = i == 0;
            var last = i == segments.Count - 1;
            Assert.Equal(s.Length, IpLength(s));
            Assert.True(IpChecksumValid(s), $"segment {i}: IPv4 header checksum");
            Assert.True(TransportChecksumValid(s), $"segment {i}: TCP checksum");
            Assert.Equal(Seq(superPacket) + (uint)(i * gsoSize), Seq(s));
            Assert.Equal(last ? payload.Length - (i * gsoSize) : gsoSize, TcpPayload(s).Length);
            var expectedFlags = flags;
            if (!last)
            {
                expectedFlags &= unchecked((byte)~(Fin | Psh));
            }

            if (!first)
            {
                expectedFlags &= unchecked((byte)~Cwr);
            }

            Assert.Equal(expectedFlags, Flags(s));
            if (IsV4(s))
            {
                Assert.Equal((ushort)(IpId(superPacket) + i), IpId(s));
            }

            // Everything but lengths, ID, checksums, seq and flags is the super-packet's header.
            var tcpAt = IpHeaderLength(s);
            Assert.Equal(superPacket.AsSpan(tcpAt + 20, TcpHeaderLength(superPacket) - 20).ToArray(), s.AsSpan(tcpAt + 20, TcpHeaderLength(s) - 20).ToArray());
            Assert.Equal(superPacket.AsSpan(tcpAt, 4).ToArray(), s.AsSpan(tcpAt, 4).ToArray());
            joined.AddRange(TcpPayload(s).ToArray());
        }

        Assert.Equal(payload, joined.ToArray());
    }

    [Fact]
    public void Segment_V4WithTimestampsNotMultipleOfMss_FixesEverySegment()
    {
        var superPacket = Tcp(V4A, V4B, 40000, 5201, 1_000_000, 77, Ack | Psh | Fin | Cwr, Payload(10_000, 1), Timestamps(5, 6), ipId: 0xfffe, partial: true);

        var segments = Split(superPacket, 1368);

        AssertSegmentsOf(superPacket, segments, 1368);
        Assert.Equal(8, segments.Count);
        Assert.Equal(0x0004, IpId(segments[6])); // the ID wraps past 0xffff
    }

    [Fact]
    public void Segment_V6OddLength_FixesPayloadLengthsAndChecksums()
    {
        var superPacket = Tcp(V6A, V6B, 443, 51000, uint.MaxValue - 1500, 9, Ack | Psh, Payload(4097, 2), Timestamps(1, 2), partial: true);

        var segments = Split(superPacket, 1000);

        AssertSegmentsOf(superPacket, segments, 1000);
        Assert.Equal(5, segments.Count);
        Assert.Equal(97, TcpPayload(segments[4]).Length);
    }

    [Fact]
    public void Segment_PayloadExactMultipleOfMss_AllSegmentsFull()
    {
        var superPacket = Tcp(V4A, V4B, 1, 2, 7, 8, Ack, Payload(4000, 3), partial: true);

        var segments = Split(superPacket, 1000);

        AssertSegmentsOf(superPacket, segments, 1000);
        Assert.All(segments, s => Assert.Equal(1000, TcpPayload(s).Length));
    }

    [Fact]
    public void Segment_PayloadSmallerThanMss_OneSegmentKeepsAllFlags()
    {
        var superPacket = Tcp(V4A, V4B, 1, 2, 7, 8, Ack | Psh | Fin, Payload(333, 4), partial: true);

        var segments = Split(superPacket, 1000);

        AssertSegmentsOf(superPacket, segments, 1000);
        Assert.Equal(Ack | Psh | Fin, Flags(segments[0]));
    }

    [Fact]
    public void Segment_RandomLengthsAndSizes_MatchTheModel()
    {
        var random = new Random(1234);
        for (var round = 0; round < 200; round++)
        {
            var v4 = random.Next(2) == 0;
            var options = random.Next(3) switch { 0 => [], 1 => Timestamps((uint)random.Next(), (uint)random.Next()), _ => new byte[] { 1, 1, 1, 0 } };
            var payloadLength = random.Next(1, 20_000);
            var gsoSize = (ushort)random.Next(1, 1400);
            var superPacket = Tcp(v4 ? V4A : V6A, v4 ? V4B : V6B, (ushort)random.Next(), (ushort)random.Next(), (uint)random.Next(), (uint)random.Next(),
                (byte)(Ack | (random.Next(2) == 0 ? Psh : 0) | (random.Next(4) == 0 ? Fin : 0)), Payload(payloadLength, round), options, (ushort)random.Next(), partial: true);

            AssertSegmentsOf(superPacket, Split(superPacket, gsoSize), gsoSize);
        }
    }

    [Fact]
    public void Start_PartialUdpWithoutGso_CompletesChecksumInPlace()
    {
        var packet = PartialUdp(V4A, V4B, Payload(101, 5));
        Assert.False(TransportChecksumValid(packet));
        var frame = Frame(NeedsChecksum, 0, 0, 0, 20, 6, packet);

        var status = TcpSegmenter.Start(frame, out var single, out _);

        Assert.Equal(SegmentStatus.Single, status);
        Assert.Equal(packet.Length, single.Length);
        Assert.True(TransportChecksumValid(single));
    }

    [Fact]
    public void Start_NonTcpPacketWithZeroHeader_ReturnedUnchanged()
    {
        var packet = PartialUdp(V6A, V6B, Payload(40, 6));
        var frame = Frame(0, 0, 0, 0, 0, 0, packet);

        var status = TcpSegmenter.Start(frame, out var single, out _);

        Assert.Equal(SegmentStatus.Single, status);
        Assert.Equal(packet, single.ToArray());
    }

    [Fact]
    public void Start_PartialTcpWithoutGso_CompletesChecksum()
    {
        var packet = Tcp(V6A, V6B, 22, 50000, 1, 2, Ack | Psh, Payload(77, 7), Timestamps(3, 4), partial: true);
        var frame = Frame(NeedsChecksum, 0, 0, 0, 40, 16, packet);

        Assert.Equal(SegmentStatus.Single, TcpSegmenter.Start(frame, out var single, out _));

        Assert.True(TransportChecksumValid(single));
    }

    [Theory]
    [InlineData(GsoTcpV6, 1000)] // a v4 packet under a v6 GSO type
    [InlineData(GsoTcpV4, 0)] // no segment size
    [InlineData(GsoUdpL4, 1000)] // UDP segmentation was not asked for
    public void Start_InconsistentHeader_IsMalformed(byte gsoType, int gsoSize)
    {
        var packet = Tcp(V4A, V4B, 1, 2, 3, 4, Ack, Payload(3000, 8), partial: true);
        var frame = Frame(NeedsChecksum, gsoType, 40, (ushort)gsoSize, 20, 16, packet);

        Assert.Equal(SegmentStatus.Malformed, TcpSegmenter.Start(frame, out _, out _));
    }

    [Fact]
    public void Start_TruncatedFrameOrChecksumPastTheEnd_IsMalformed()
    {
        Assert.Equal(SegmentStatus.Malformed, TcpSegmenter.Start(new byte[9], out _, out _));
        var packet = PartialUdp(V4A, V4B, Payload(10, 9));
        Assert.Equal(SegmentStatus.Malformed, TcpSegmenter.Start(Frame(NeedsChecksum, 0, 0, 0, (ushort)(packet.Length - 1), 6, packet), out _, out _));
    }

    [Fact]
    public void Segment_DoesNotAllocate()
    {
        var superPacket = Tcp(V4A, V4B, 40000, 5201, 1, 2, Ack, Payload(60_000, 10), Timestamps(1, 1), partial: true);
        var frame = Frame(NeedsChecksum, GsoTcpV4, 52, 1368, 20, 16, superPacket);
        var output = new byte[1500];
        Drain(frame, output);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            Drain(frame, output);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void Drain(byte[] frame, byte[] output)
        {
            var status = TcpSegmenter.Start(frame, out _, out var segmenter);
            var segments = 0;
            while (segmenter.Next(output) > 0)
            {
                segments++;
            }

            if (status != SegmentStatus.Segmented || segments != 44)
            {
                throw new InvalidOperationException($"{status}, {segments} segments");
            }
        }
    }

    [Fact]
    public void InternetChecksum_OddLengthsAndAllOffsets_MatchTheSlowSum()
    {
        var random = new Random(99);
        for (var length = 0; length < 70; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(Fold(Sum(data)), InternetChecksum.Fold(InternetChecksum.Add(0, data)));
        }

        // RFC 1071 §3's worked example: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2, its checksum 220d.
        Assert.Equal(0xddf2, InternetChecksum.Fold(InternetChecksum.Add(0, Convert.FromHexString("0001f203f4f5f6f7"))));
        Assert.Equal(0x220d, InternetChecksum.Finish(InternetChecksum.Add(0, Convert.FromHexString("0001f203f4f5f6f7"))));
    }
}
