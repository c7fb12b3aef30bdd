using System.Net;
using Mesh.Net.Linux;
using static Mesh.Net.Tests.Linux.LinuxTestSupport;

namespace Mesh.Net.Tests.Linux;

/// <summary>UDP GSO sends (one slot, several datagrams) and UDP GRO receives over loopback.</summary>
public sealed class UdpOffloadTests
{
    private const int Segment = 1000;

    /// <summary>Fills slot 0 with <paramref name="count"/> datagrams of <see cref="Segment"/> bytes (the last <paramref name="lastLength"/>), each starting with its index.</summary>
    private static int FillRun(PacketBatch batch, int count, int lastLength, UdpEndpoint destination)
    {
        var buffer = batch.GetBuffer(0);
        var length = 0;
        for (var i = 0; i < count; i++)
        {
            var size = i == count - 1 ? lastLength : Segment;
            buffer.Slice(length, size).Fill((byte)(i + 100));
            buffer[length] = (byte)i;
            length += size;
        }

        batch.SetLength(0, length);
        batch.SetEndpoint(0, destination);
        batch.SetSegmentSize(0, Segment);
        return length;
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void SendBatch_GsoSlot_ArrivesAsSeparateDatagramsAtAPlainSocket(string loopback)
    {
        using var sender = new BatchUdpSocket();
        using var receiver = new BatchUdpSocket();
        Assert.True(sender.GsoEnabled, "this kernel has no UDP_SEGMENT");
        using var outgoing = PacketBatch.Create(2, 65535);
        using var incoming = PacketBatch.Create(16, 2000);
        FillRun(outgoing, 5, 333, UdpEndpoint.FromIPEndPoint(new IPEndPoint(IPAddress.Parse(loopback), receiver.LocalPort)));

        Assert.Equal(5, sender.SendBatch(outgoing, 1, out var bytes));
        Assert.Equal((4 * Segment) + 333, bytes);

        var lengths = new List<int>();
        using var watchdog = new Timer(_ => receiver.Dispose(), null, Deadline, Timeout.InfiniteTimeSpan);
        while (lengths.Count < 5)
        {
            var n = receiver.ReceiveBatch(incoming);
            Assert.True(n > 0, $"received {lengths.Count} of 5 datagrams before the deadline");
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(0, incoming.GetSegmentSize(i));
                var datagram = incoming.GetDatagram(i);
                Assert.Equal(lengths.Count, datagram[0]);
                Assert.True(datagram[1..].ToArray().All(b => b == lengths.Count + 100));
                lengths.Add(datagram.Length);
            }
        }

        Assert.Equal([Segment, Segment, Segment, Segment, 333], lengths);
    }

    [Fact]
    public void ReceiveBatch_WithGro_GsoRunArrivesAsOneSlotWithItsSegmentSize()
    {
        using var sender = new BatchUdpSocket();
        using var receiver = new BatchUdpSocket();
        Assert.True(receiver.TryEnableGro(), "this kernel has no UDP_GRO");
        using var outgoing = PacketBatch.Create(2, 65535);
        using var incoming = PacketBatch.Create(4, 65535);
        var length = FillRun(outgoing, 20, 17, UdpEndpoint.FromIPEndPoint(new IPEndPoint(IPAddress.Loopback, receiver.LocalPort)));

        Assert.Equal(20, sender.SendBatch(outgoing, 1));

        var received = new List<byte>();
        var segmentSizes = new List<int>();
        using var watchdog = new Timer(_ => receiver.Dispose(), null, Deadline, Timeout.InfiniteTimeSpan);
        while (received.Count < length)
        {
            var n = receiver.ReceiveBatch(incoming);
            Assert.True(n > 0, $"received {received.Count} of {length} bytes before the deadline");
            for (var i = 0; i < n; i++)
            {
                received.AddRange(incoming.GetDatagram(i).ToArray());
                segmentSizes.Add(incoming.GetSegmentSize(i));
            }
        }

        Assert.Equal(outgoing.GetDatagram(0).ToArray(), received.ToArray());
        Assert.Contains(Segment, segmentSizes); // at least one slot came coalesced
    }
}
