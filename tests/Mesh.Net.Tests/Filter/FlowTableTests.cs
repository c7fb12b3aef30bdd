using Mesh.Net.Filter;
using static Mesh.Net.Tests.Filter.FilterPackets;
using static Mesh.Net.Tests.Filter.PacketFilterRuleTests;

namespace Mesh.Net.Tests.Filter;

public sealed class FlowTableTests
{
    private static string Host(int i) => $"100.{96 + (i >> 16)}.{(i >> 8) & 0xff}.{i & 0xff}";

    [Theory]
    [InlineData(1, 8)]
    [InlineData(1000, 1024)]
    [InlineData(65536, 65536)]
    public void Capacity_RoundsUpToPowerOfTwo(int requested, int capacity)
    {
        Assert.Equal(capacity, new FlowTable(requested).Capacity);
    }

    [Fact]
    public void ManyFlows_CountStaysWithinBound_NewestKept_OldestForgotten()
    {
        var flows = new FlowTable(1024);
        var filter = PacketFilter.Compile([], Local, flows);
        const int total = 100_000;
        for (int i = 0; i < total; i++)
        {
            filter.Outbound(UdpPacket(Self, 40000, Host(i), 53), i);
            Assert.True(flows.Count <= flows.Capacity);
        }

        Assert.Equal(flows.Capacity, flows.Count);
        Assert.True(filter.Inbound(UdpPacket(Host(total - 1), 53, Self, 40000), total).IsAccepted);
        Assert.False(filter.Inbound(UdpPacket(Host(0), 53, Self, 40000), total).IsAccepted);

        int remembered = 0;
        for (int i = 0; i < total; i++)
        {
            if (filter.Inbound(UdpPacket(Host(i), 53, Self, 40000), total).IsAccepted)
            {
                remembered++;
            }
        }

        Assert.InRange(remembered, 1, flows.Capacity);
    }

    [Fact]
    public void FullSet_EvictsTheFlowIdleLongest()
    {
        var flows = new FlowTable(FlowTable.Ways); // one set: eviction order is fully visible
        var filter = PacketFilter.Compile([], Local, flows);
        for (int i = 0; i < FlowTable.Ways; i++)
        {
            filter.Outbound(UdpPacket(Self, 40000 + i, Peer, 53), i);
        }

        filter.Outbound(UdpPacket(Self, 40000, Peer, 53), 100); // flow 0 is used again
        filter.Outbound(UdpPacket(Self, 50000, Peer, 53), 101); // a new flow pushes out flow 1

        Assert.True(filter.Inbound(UdpPacket(Peer, 53, Self, 40000), 102).IsAccepted);
        Assert.False(filter.Inbound(UdpPacket(Peer, 53, Self, 40001), 102).IsAccepted);
        Assert.True(filter.Inbound(UdpPacket(Peer, 53, Self, 40002), 102).IsAccepted);
        Assert.True(filter.Inbound(UdpPacket(Peer, 53, Self, 50000), 102).IsAccepted);
        Assert.Equal(FlowTable.Ways, flows.Count);
    }

    [Fact]
    public void Clear_ForgetsEverything()
    {
        var filter = NewFilter();
        filter.Outbound(UdpPacket(Self, 40000, Peer, 53), 0);
        filter.Flows.Clear();
        Assert.Equal(0, filter.Flows.Count);
        Assert.False(filter.Inbound(UdpPacket(Peer, 53, Self, 40000), 0).IsAccepted);
    }

    [Fact]
    public void Constructor_RejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlowTable(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlowTable(8, TimeSpan.Zero));
    }

    [Fact]
    public void ConcurrentOutboundAndInbound_EveryReplyPasses()
    {
        var filter = PacketFilter.Compile([Rule([Peer], "*", 22, 22)], Local, new FlowTable(1 << 20));
        const int threads = 4;
        const int perThread = 5000;
        var failures = new int[threads];
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                var syn = TcpPacket(Peer, 1, Self, 22);
                for (int i = 0; i < perThread; i++)
                {
                    int n = (id * perThread) + i;
                    filter.Outbound(UdpPacket(Self, 1000 + id, Host(n), 53), i);
                    if (!filter.Inbound(UdpPacket(Host(n), 53, Self, 1000 + id), i).IsAccepted
                        || !filter.Inbound(syn, i).IsAccepted
                        || filter.Inbound(UdpPacket(Host(n), 53, Self, 9), i).IsAccepted)
                    {
                        failures[id]++;
                    }
                }
            });
        }

        foreach (var worker in workers)
        {
            worker.Start();
        }

        foreach (var worker in workers)
        {
            worker.Join();
        }

        Assert.All(failures, f => Assert.Equal(0, f));
        Assert.Equal(threads * perThread, filter.Flows.Count);
        for (int n = 0; n < threads * perThread; n++)
        {
            Assert.True(filter.Inbound(UdpPacket(Host(n), 53, Self, 1000 + (n / perThread)), perThread).IsAccepted);
        }
    }

    [Fact]
    public void ConcurrentChurn_OnSmallTable_StaysBoundedAndConsistent()
    {
        var flows = new FlowTable(64);
        var filter = PacketFilter.Compile([], Local, flows);
        var workers = new Thread[4];
        Exception? failure = null;
        for (int t = 0; t < workers.Length; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                try
                {
                    for (int i = 0; i < 20_000; i++)
                    {
                        int n = (i * 7919) + id;
                        filter.Outbound(UdpPacket(Self, 2000, Host(n & 0xffff), 53), i);
                        filter.Inbound(UdpPacket(Host((n + 1) & 0xffff), 53, Self, 2000), i);
                        if (flows.Count > flows.Capacity)
                        {
                            throw new InvalidOperationException("table grew past its bound");
                        }
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
        }

        foreach (var worker in workers)
        {
            worker.Start();
        }

        foreach (var worker in workers)
        {
            worker.Join();
        }

        Assert.Null(failure);
        Assert.InRange(flows.Count, 1, flows.Capacity);
    }
}
