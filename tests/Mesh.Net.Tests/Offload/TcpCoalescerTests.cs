using System.Buffers.Binary;
using Mesh.Net.Offload;
using static Mesh.Net.Tests.Offload.OffloadPackets;

namespace Mesh.Net.Tests.Offload;

public sealed class TcpCoalescerTests
{
    private const int Mss = 1000;

    /// <summary>Records what would reach the TUN, each write as a full frame (header + packet).</summary>
    private sealed class RecordingWriter : ITunFrameWriter
    {
        public List<byte[]> Frames { get; } = [];

        public void WriteFrame(ReadOnlySpan<byte> frame) => Frames.Add(frame.ToArray());

        public void WritePacket(ReadOnlySpan<byte> packet)
        {
            var frame = new byte[10 + packet.Length];
            packet.CopyTo(frame.AsSpan(10));
            Frames.Add(frame);
        }

        public byte[] Packet(int index) => Frames[index][10..];

        public byte GsoType(int index) => Frames[index][1];
    }

    /// <summary>Consecutive full segments of one flow, as a sender's TSO cut them.</summary>
    private static List<byte[]> Segments(int count, uint seq = 1000, bool v4 = true, int lastLength = Mss, byte lastFlags = Ack | Psh,
        ushort sourcePort = 40000, byte[]? options = null, int seed = 0)
    {
        options ??= Timestamps(100, 200);
        var list = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var last = i == count - 1;
            list.Add(Tcp(v4 ? V4A : V6A, v4 ? V4B : V6B, sourcePort, 5201, seq, 555, last ? lastFlags : Ack,
                Payload(last ? lastLength : Mss, seed + i), options, ipId: (ushort)(10 + i)));
            seq += (uint)(last ? lastLength : Mss);
        }

        return list;
    }

    private static (TcpCoalescer Coalescer, RecordingWriter Writer) Create()
    {
        var writer = new RecordingWriter();
        return (new TcpCoalescer(writer), writer);
    }

    /// <summary>A merged frame: header fields right, TCP checksum partial (completing it gives a valid one), and it re-segments into the originals' payloads.</summary>
    private static void AssertMerged(byte[] frame, IReadOnlyList<byte[]> originals)
    {
        var packet = frame[10..];
        var v4 = IsV4(packet);
        Assert.Equal(1, frame[0]); // NEEDS_CSUM
        Assert.Equal(v4 ? 1 : 4, frame[1]); // GSO_TCPV4 / GSO_TCPV6
        var headerLength = IpHeaderLength(packet) + TcpHeaderLength(packet);
        Assert.Equal(headerLength, BinaryPrimitives.ReadUInt16LittleEndian(frame.AsSpan(2)));
        Assert.Equal(TcpPayload(originals[0]).Length, BinaryPrimitives.ReadUInt16LittleEndian(frame.AsSpan(4)));
        Assert.Equal(IpHeaderLength(packet), BinaryPrimitives.ReadUInt16LittleEndian(frame.AsSpan(6)));
        Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(frame.AsSpan(8)));
        Assert.Equal(packet.Length, IpLength(packet));
        Assert.True(IpChecksumValid(packet));
        Assert.Equal(Seq(originals[0]), Seq(packet));

        // What the kernel does with NEEDS_CSUM: sum from csum_start over the partial field, complement.
        var completed = (byte[])packet.Clone();
        var at = IpHeaderLength(packet);
        BinaryPrimitives.WriteUInt16BigEndian(completed.AsSpan(at + 16), (ushort)~Fold(Sum(completed.AsSpan(at))));
        Assert.True(TransportChecksumValid(completed), "the partial checksum does not complete to a valid one");

        var payload = originals.SelectMany(o => TcpPayload(o).ToArray()).ToArray();
        Assert.Equal(payload, TcpPayload(packet).ToArray());
        var flags = originals.Aggregate((byte)0, (f, o) => (byte)(f | Flags(o)));
        Assert.Equal(flags, Flags(packet));
    }

    [Fact]
    public void Add_ConsecutiveSegmentsOneFlow_OneSuperPacket()
    {
        var (coalescer, writer) = Create();
        var segments = Segments(5);

        segments.ForEach(s => coalescer.Add(s));
        Assert.Single(writer.Frames); // PSH on the last segment closes the merge: written at once
        coalescer.Flush();

        Assert.Single(writer.Frames);
        AssertMerged(writer.Frames[0], segments);
    }

    [Fact]
    public void Add_V6Segments_OneSuperPacket()
    {
        var (coalescer, writer) = Create();
        var segments = Segments(4, v4: false, lastLength: 333, lastFlags: Ack);

        segments.ForEach(s => coalescer.Add(s));
        coalescer.Flush();

        Assert.Single(writer.Frames);
        AssertMerged(writer.Frames[0], segments);
    }

    [Fact]
    public void Add_PshInTheMiddle_EndsTheSuperPacketThere()
    {
        var (coalescer, writer) = Create();
        var first = Segments(3, lastFlags: Ack | Psh);
        var second = Segments(3, seq: 4000, lastFlags: Ack, seed: 10);

        first.Concat(second).ToList().ForEach(s => coalescer.Add(s));
        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        AssertMerged(writer.Frames[0], first);
        AssertMerged(writer.Frames[1], second);
    }

    [Fact]
    public void Add_ShortSegment_EndsTheSuperPacketAfterIt()
    {
        var (coalescer, writer) = Create();
        var first = Segments(3, lastLength: 10, lastFlags: Ack);
        var second = Segments(2, seq: 1000 + (2 * Mss) + 10, lastFlags: Ack, seed: 20);

        first.Concat(second).ToList().ForEach(s => coalescer.Add(s));
        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        AssertMerged(writer.Frames[0], first);
        AssertMerged(writer.Frames[1], second);
    }

    [Fact]
    public void Add_LongerSegmentThanTheFirst_NotMerged()
    {
        var (coalescer, writer) = Create();
        var small = Tcp(V4A, V4B, 40000, 5201, 1000, 555, Ack, Payload(500, 1), Timestamps(100, 200));
        var big = Tcp(V4A, V4B, 40000, 5201, 1500, 555, Ack, Payload(1000, 2), Timestamps(100, 200));

        coalescer.Add(small);
        coalescer.Add(big);
        coalescer.Flush();

        Assert.Equal([small, big], writer.Frames.Select((_, i) => writer.Packet(i)).ToArray());
        Assert.All(writer.Frames, f => Assert.Equal(0, f[1]));
    }

    [Fact]
    public void Add_SequenceGap_TwoWrites()
    {
        var (coalescer, writer) = Create();
        var a = Segments(2, lastFlags: Ack);
        var b = Segments(2, seq: 1000 + (3 * Mss), lastFlags: Ack, seed: 5);

        a.Concat(b).ToList().ForEach(s => coalescer.Add(s));
        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        AssertMerged(writer.Frames[0], a);
        AssertMerged(writer.Frames[1], b);
    }

    [Fact]
    public void Add_DifferentTimestamps_NotMerged()
    {
        var (coalescer, writer) = Create();
        var a = Tcp(V4A, V4B, 40000, 5201, 1000, 555, Ack, Payload(Mss, 1), Timestamps(100, 200));
        var b = Tcp(V4A, V4B, 40000, 5201, 2000, 555, Ack, Payload(Mss, 2), Timestamps(101, 200));

        coalescer.Add(a);
        coalescer.Add(b);
        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        Assert.Equal(a, writer.Packet(0));
        Assert.Equal(b, writer.Packet(1));
    }

    [Fact]
    public void Add_TwoFlowsInterleaved_EachMergedInOrder()
    {
        var (coalescer, writer) = Create();
        var a = Segments(4, lastFlags: Ack, sourcePort: 1111);
        var b = Segments(4, seq: 9_000_000, lastFlags: Ack, sourcePort: 2222, seed: 50);

        for (var i = 0; i < 4; i++)
        {
            coalescer.Add(a[i]);
            coalescer.Add(b[i]);
        }

        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        var byPort = writer.Frames.ToDictionary(f => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(10 + 20)));
        AssertMerged(byPort[1111], a);
        AssertMerged(byPort[2222], b);
    }

    [Fact]
    public void Add_PureAckOfAHeldFlow_HeldSegmentsWrittenFirst()
    {
        var (coalescer, writer) = Create();
        var data = Segments(2, lastFlags: Ack);
        var ack = Tcp(V4A, V4B, 40000, 5201, 3000, 556, Ack, [], Timestamps(100, 200));

        coalescer.Add(data[0]);
        coalescer.Add(data[1]);
        coalescer.Add(ack);
        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        AssertMerged(writer.Frames[0], data);
        Assert.Equal(ack, writer.Packet(1));
    }

    [Fact]
    public void Add_SingleSegmentAndNonTcp_WrittenUnchangedWithZeroHeader()
    {
        var (coalescer, writer) = Create();
        var udp = PartialUdp(V4A, V4B, Payload(100, 3));
        var syn = Tcp(V4A, V4B, 40000, 5201, 1, 0, Syn, []);
        var lone = Segments(1, lastFlags: Ack)[0];

        coalescer.Add(udp);
        Assert.Single(writer.Frames); // non-TCP goes straight through
        coalescer.Add(syn);
        coalescer.Add(lone);
        coalescer.Flush();

        Assert.Equal([udp, syn, lone], writer.Frames.Select((_, i) => writer.Packet(i)).ToArray());
        Assert.All(writer.Frames, f => Assert.Equal(new byte[10], f[..10]));
    }

    [Fact]
    public void Add_UpTo64KiB_ThenStartsAnother()
    {
        var (coalescer, writer) = Create();
        var segments = Segments(70, lastFlags: Ack);

        segments.ForEach(s => coalescer.Add(s));
        coalescer.Flush();

        Assert.Equal(2, writer.Frames.Count);
        var firstCount = TcpPayload(writer.Frames[0][10..]).Length / Mss;
        Assert.True(writer.Frames[0].Length - 10 <= 65535);
        AssertMerged(writer.Frames[0], segments.Take(firstCount).ToList());
        AssertMerged(writer.Frames[1], segments.Skip(firstCount).ToList());
    }

    [Fact]
    public void Add_MoreFlowsThanSlots_EveryPacketWrittenOncePerFlowInOrder()
    {
        var (coalescer, writer) = Create();
        var flows = Enumerable.Range(0, TcpCoalescer.MaxFlows + 3).Select(f => Segments(3, seq: 100, lastFlags: Ack, sourcePort: (ushort)(3000 + f), seed: f * 10)).ToList();

        for (var i = 0; i < 3; i++)
        {
            flows.ForEach(f => coalescer.Add(f[i]));
        }

        coalescer.Flush();

        // Per flow, the payload that reached the TUN is the flow's bytes, in order, once.
        foreach (var flow in flows)
        {
            var port = BinaryPrimitives.ReadUInt16BigEndian(flow[0].AsSpan(20));
            var written = writer.Frames.Where(f => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(30)) == port).SelectMany(f => TcpPayload(f[10..]).ToArray());
            Assert.Equal(flow.SelectMany(s => TcpPayload(s).ToArray()), written);
        }
    }

    [Fact]
    public void SuperPacket_SegmentedAgain_GivesBackTheOriginalSegments()
    {
        var (coalescer, writer) = Create();
        var segments = Segments(6, lastLength: 77, lastFlags: Ack | Psh);
        segments.ForEach(s => coalescer.Add(s));
        coalescer.Flush();

        Assert.Equal(SegmentStatus.Segmented, TcpSegmenter.Start(writer.Frames[0], out _, out var segmenter));
        var output = new byte[2000];
        for (var i = 0; i < segments.Count; i++)
        {
            var n = segmenter.Next(output);
            Assert.Equal(segments[i], output[..n]);
        }

        Assert.Equal(0, segmenter.Next(output));
    }

    [Fact]
    public void AddAndFlush_DoNotAllocate()
    {
        var writer = new CountingWriter();
        var coalescer = new TcpCoalescer(writer);
        var segments = Segments(40, lastFlags: Ack).Concat(Segments(3, sourcePort: 7, lastFlags: Ack)).ToArray();
        Run();

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            Run();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(22, writer.Writes);

        void Run()
        {
            foreach (var s in segments)
            {
                coalescer.Add(s);
            }

            coalescer.Flush();
        }
    }

    private sealed class CountingWriter : ITunFrameWriter
    {
        public int Writes { get; private set; }

        public void WriteFrame(ReadOnlySpan<byte> frame) => Writes++;

        public void WritePacket(ReadOnlySpan<byte> packet) => Writes++;
    }
}
