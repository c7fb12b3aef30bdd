using CsCheck;
using Mesh.Net.Filter;
using static Mesh.Net.Tests.Filter.FilterPackets;
using static Mesh.Net.Tests.Filter.PacketFilterRuleTests;

namespace Mesh.Net.Tests.Filter;

public sealed class PacketFilterRobustnessTests
{
    private static readonly PacketFilter Open = NewFilter(Rule(["*"], "*", 0, 65535, 1, 6, 17, 58, 47, 132));

    private static IEnumerable<byte[]> ValidPackets() =>
    [
        TcpPacket(Peer, 1, Self, 22), TcpPacket(Peer6, 1, Self6, 22),
        UdpPacket(Peer, 1, Self, 53), UdpPacket(Peer6, 1, Self6, 53),
        Echo(Peer, Self, true, 1), Echo(Peer6, Self6, true, 1),
        IcmpError(Peer, Self, 3, UdpPacket(Self, 1, Peer, 53)),
        IcmpError(Peer6, Self6, 1, TcpPacket(Self6, 1, Peer6, 53)),
        Raw(Peer, Self, Gre), Raw(Peer6, Self6, 132, 12),
        Ip(Peer6, Self6, Udp, new byte[8], v6Extensions: 3),
        Ip(Peer, Self, Udp, new byte[8], fragmentOffset: 3),
    ];

    [Fact]
    public void RandomBytes_EveryLength0To100_NeverThrow()
    {
        var random = new Random(12345);
        var flows = Open.Flows;
        for (int length = 0; length <= 100; length++)
        {
            var buffer = new byte[length];
            for (int round = 0; round < 300; round++)
            {
                random.NextBytes(buffer);
                if (length > 0 && round % 3 != 0)
                {
                    // Mostly plausible versions, so the parser gets past the first byte.
                    buffer[0] = (byte)((round % 2 == 0 ? 0x40 : 0x60) | (buffer[0] & 0x0f));
                }

                var verdict = Open.Inbound(buffer, round);
                Assert.True(Enum.IsDefined(verdict.Reason));
                if (length < 20)
                {
                    Assert.Equal(FilterReason.Malformed, verdict.Reason);
                }

                Open.Outbound(buffer, round);
            }
        }

        Assert.True(flows.Count <= flows.Capacity);
    }

    [Fact]
    public void TruncatedValidPackets_AreMalformed_NeverThrow()
    {
        foreach (var packet in ValidPackets())
        {
            Assert.True(Open.Inbound(packet, 0).IsAccepted, $"the whole packet {Convert.ToHexString(packet)} passes");
            for (int length = 0; length < packet.Length; length++)
            {
                Assert.Equal(FilterReason.Malformed, Open.Inbound(packet.AsSpan(0, length), 0).Reason);
                Open.Outbound(packet.AsSpan(0, length), 0);
            }
        }
    }

    [Fact]
    public void MutatedValidPackets_NeverThrow()
    {
        var packets = ValidPackets().ToArray();
        Gen.Select(Gen.Int[0, packets.Length - 1], Gen.Select(Gen.Int[0, 200], Gen.Byte).Array[1, 6])
            .Sample(
                (which, edits) =>
                {
                    var packet = (byte[])packets[which].Clone();
                    foreach (var (at, value) in edits)
                    {
                        packet[at % packet.Length] = value;
                    }

                    var verdict = Open.Inbound(packet, 0);
                    Open.Outbound(packet, 0);
                    return Enum.IsDefined(verdict.Reason);
                },
                iter: 20_000);
    }

    [Fact]
    public void SteadyState_InboundAndOutbound_AllocateNothing()
    {
        var rules = new List<FilterRuleSpec>();
        for (int i = 0; i < 200; i++)
        {
            rules.Add(Rule([$"100.70.{i}.0/24", "fd7a:115c:a1e0::/64"], "*", 1000 + i, 1000 + i));
        }

        rules.Add(Rule([Peer, Peer6], "*", 22, 22));
        var filter = NewFilter([.. rules]);
        var syn = TcpPacket(Peer, 50000, Self, 22);
        var syn6 = TcpPacket(Peer6, 50000, Self6, 22);
        var ack = TcpPacket(Other, 50000, Self, 22, Ack);
        var query = UdpPacket(Self, 40000, Peer, 53);
        var reply = UdpPacket(Peer, 53, Self, 40000);
        var ping = Echo(Self, Peer, true, 1);
        var pong = Echo(Peer, Self, false, 1);
        var error = IcmpError(Peer, Self, 3, query, 3);

        long accepted = 0;
        void Run(int rounds)
        {
            for (int i = 0; i < rounds; i++)
            {
                filter.Outbound(query, i);
                filter.Outbound(ping, i);
                accepted += filter.Inbound(syn, i).IsAccepted ? 1 : 0;
                accepted += filter.Inbound(syn6, i).IsAccepted ? 1 : 0;
                accepted += filter.Inbound(ack, i).IsAccepted ? 1 : 0;
                accepted += filter.Inbound(reply, i).IsAccepted ? 1 : 0;
                accepted += filter.Inbound(pong, i).IsAccepted ? 1 : 0;
                accepted += filter.Inbound(error, i).IsAccepted ? 1 : 0;
            }
        }

        Run(1000);

        // A per-packet allocation shows in every block; a one-off by the runtime shows in one block
        // only. Steady state = some block of 10,000 rounds allocates nothing.
        var blocks = new List<long>();
        for (int block = 0; block < 3 && (blocks.Count == 0 || blocks[^1] != 0); block++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Run(10_000);
            blocks.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(blocks[^1] == 0, $"bytes allocated per block of 10,000 rounds: {string.Join(", ", blocks)}");
        Assert.Equal((1000 + (blocks.Count * 10_000)) * 6, accepted);
    }
}
