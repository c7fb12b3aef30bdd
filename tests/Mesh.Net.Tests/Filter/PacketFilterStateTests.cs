using Mesh.Net.Filter;
using static Mesh.Net.Tests.Filter.FilterPackets;
using static Mesh.Net.Tests.Filter.PacketFilterRuleTests;

namespace Mesh.Net.Tests.Filter;

public sealed class PacketFilterStateTests
{
    private static readonly long Second = TimeSpan.TicksPerSecond;

    [Fact]
    public void TcpSyn_FromAllowedSource_Accepted_FromOtherDropped()
    {
        var filter = NewFilter(Rule([Peer], "*", 22, 22));
        Assert.Equal(FilterReason.Rule, filter.Inbound(TcpPacket(Peer, 50000, Self, 22, Syn), 0).Reason);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(TcpPacket(Other, 50000, Self, 22, Syn), 0).Reason);
    }

    [Theory]
    [InlineData(Ack)]
    [InlineData(Syn | Ack)]
    [InlineData(Rst)]
    [InlineData(Fin | Ack)]
    [InlineData(0)]
    public void TcpWithoutBareSyn_Accepted(byte flags)
    {
        var filter = NewFilter();
        Assert.Equal(FilterReason.TcpEstablished, filter.Inbound(TcpPacket(Other, 50000, Self, 22, flags), 0).Reason);
    }

    [Fact]
    public void TcpSynAck_ReplyToOurSyn_Accepted_WithNoRules()
    {
        var filter = NewFilter();
        filter.Outbound(TcpPacket(Self, 40000, Peer, 443, Syn), 0);
        Assert.True(filter.Inbound(TcpPacket(Peer, 443, Self, 40000, Syn | Ack), Second).IsAccepted);
    }

    [Fact]
    public void TcpSimultaneousOpen_BareSynReply_AcceptedOnlyForOurFlow()
    {
        var filter = NewFilter();
        filter.Outbound(TcpPacket(Self, 40000, Peer, 443, Syn), 0);
        Assert.Equal(FilterReason.Reply, filter.Inbound(TcpPacket(Peer, 443, Self, 40000, Syn), Second).Reason);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(TcpPacket(Peer, 443, Self, 40001, Syn), Second).Reason);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(TcpPacket(Other, 443, Self, 40000, Syn), Second).Reason);
    }

    [Fact]
    public void TcpOutboundNonSyn_DoesNotCreateFlow()
    {
        var filter = NewFilter();
        filter.Outbound(TcpPacket(Self, 22, Peer, 50000, Syn | Ack), 0);
        filter.Outbound(TcpPacket(Self, 22, Peer, 50000, Ack), 0);
        Assert.Equal(0, filter.Flows.Count);
        Assert.False(filter.Inbound(TcpPacket(Peer, 50000, Self, 22, Syn), 0).IsAccepted);
    }

    [Fact]
    public void UdpReply_AcceptedWithNoRules_OtherPortsAndHostsDropped()
    {
        var filter = NewFilter();
        filter.Outbound(UdpPacket(Self, 40000, Peer, 53), 0);
        Assert.Equal(FilterReason.Reply, filter.Inbound(UdpPacket(Peer, 53, Self, 40000), Second).Reason);
        Assert.False(filter.Inbound(UdpPacket(Peer, 54, Self, 40000), Second).IsAccepted);
        Assert.False(filter.Inbound(UdpPacket(Peer, 53, Self, 40001), Second).IsAccepted);
        Assert.False(filter.Inbound(UdpPacket(Other, 53, Self, 40000), Second).IsAccepted);
    }

    [Fact]
    public void UdpReply_Ipv6_Accepted()
    {
        var filter = NewFilter();
        filter.Outbound(UdpPacket(Self6, 40000, Peer6, 53), 0);
        Assert.True(filter.Inbound(UdpPacket(Peer6, 53, Self6, 40000), 0).IsAccepted);
    }

    [Fact]
    public void UdpReply_AtIdleTimeout_Accepted_AndRefreshesTheFlow()
    {
        var filter = PacketFilter.Compile([], Local, new FlowTable(idleTimeout: TimeSpan.FromMinutes(2)));
        long sent = 1000 * Second;
        long timeout = TimeSpan.FromMinutes(2).Ticks;
        filter.Outbound(UdpPacket(Self, 40000, Peer, 53), sent);

        Assert.True(filter.Inbound(UdpPacket(Peer, 53, Self, 40000), sent + timeout).IsAccepted);

        // That reply counted as traffic: the flow now lives a full timeout after it.
        Assert.True(filter.Inbound(UdpPacket(Peer, 53, Self, 40000), sent + (2 * timeout)).IsAccepted);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(UdpPacket(Peer, 53, Self, 40000), sent + (3 * timeout) + 1).Reason);
    }

    [Fact]
    public void UdpReply_OneTickAfterTimeout_Dropped()
    {
        var filter = NewFilter();
        filter.Outbound(UdpPacket(Self, 40000, Peer, 53), 0);
        long late = TimeSpan.FromMinutes(2).Ticks + 1;
        Assert.Equal(FilterReason.NoRule, filter.Inbound(UdpPacket(Peer, 53, Self, 40000), late).Reason);
    }

    [Fact]
    public void UdpFlow_KeptAliveByOutboundTraffic()
    {
        var filter = NewFilter();
        for (int minute = 0; minute <= 10; minute++)
        {
            filter.Outbound(UdpPacket(Self, 40000, Peer, 53), minute * 60 * Second);
        }

        Assert.True(filter.Inbound(UdpPacket(Peer, 53, Self, 40000), 12 * 60 * Second).IsAccepted);
        Assert.False(filter.Inbound(UdpPacket(Peer, 53, Self, 40000), (12 * 60 * Second) + TimeSpan.FromMinutes(2).Ticks + 1).IsAccepted);
    }

    [Fact]
    public void EchoReply_ToOurRequest_Accepted_OtherIdentifierOrHostDropped()
    {
        var filter = NewFilter();
        filter.Outbound(Echo(Self, Peer, request: true, identifier: 77), 0);
        Assert.Equal(FilterReason.Reply, filter.Inbound(Echo(Peer, Self, request: false, identifier: 77), Second).Reason);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(Echo(Peer, Self, request: false, identifier: 78), Second).Reason);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(Echo(Other, Self, request: false, identifier: 77), Second).Reason);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(Echo(Peer, Self, request: true, identifier: 77), Second).Reason);
    }

    [Fact]
    public void EchoReply_Ipv6_ToOurRequest_Accepted()
    {
        var filter = NewFilter();
        filter.Outbound(Echo(Self6, Peer6, request: true, identifier: 5), 0);
        Assert.True(filter.Inbound(Echo(Peer6, Self6, request: false, identifier: 5), 0).IsAccepted);
        Assert.False(filter.Inbound(Echo(Peer6, Self6, request: false, identifier: 6), 0).IsAccepted);
    }

    [Fact]
    public void EchoReply_Unsolicited_Dropped()
    {
        Assert.Equal(FilterReason.NoRule, NewFilter(Rule(["*"], "*", 0, 65535)).Inbound(Echo(Peer, Self, false, 1), 0).Reason);
    }

    [Fact]
    public void IcmpError_AboutOurUdpFlow_Accepted_AboutUnknownFlowDropped()
    {
        var filter = NewFilter();
        var sent = UdpPacket(Self, 40000, Peer, 53);
        filter.Outbound(sent, 0);
        Assert.Equal(FilterReason.IcmpRelated, filter.Inbound(IcmpError(Peer, Self, 3, sent, code: 3), 0).Reason);

        var unknown = UdpPacket(Self, 40001, Peer, 53);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(IcmpError(Peer, Self, 3, unknown, code: 3), 0).Reason);
    }

    [Fact]
    public void IcmpError_FromRouterOnPath_AboutOurFlow_Accepted()
    {
        var filter = NewFilter();
        var sent = UdpPacket(Self, 40000, "10.33.0.5", 53);
        filter.Outbound(sent, 0);
        Assert.True(filter.Inbound(IcmpError(Other, Self, 11, sent), 0).IsAccepted);
    }

    [Fact]
    public void IcmpV6PacketTooBig_AboutTcpWeSent_Accepted()
    {
        var filter = NewFilter();
        var segment = TcpPacket(Self6, 22, Peer6, 50000, Ack);
        Assert.Equal(FilterReason.IcmpRelated, filter.Inbound(IcmpError(Peer6, Self6, 2, segment), 0).Reason);

        var notOurs = TcpPacket(Peer6, 22, "fd7a:115c:a1e0::99", 50000, Ack);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(IcmpError(Peer6, Self6, 2, notOurs), 0).Reason);
    }

    [Fact]
    public void IcmpError_AboutOurReplyToAllowedFlow_Accepted()
    {
        var filter = NewFilter(Rule([Peer], "*", 53, 53, 17));
        var reply = UdpPacket(Self, 53, Peer, 40000);
        Assert.True(filter.Inbound(IcmpError(Peer, Self, 3, reply, code: 3), 0).IsAccepted);
        var reply2 = UdpPacket(Self, 53, Other, 40000);
        Assert.False(filter.Inbound(IcmpError(Other, Self, 3, reply2, code: 3), 0).IsAccepted);
    }

    [Fact]
    public void IcmpError_AboutOurEchoRequest_Accepted()
    {
        var filter = NewFilter();
        var ping = Echo(Self, "10.9.9.9", request: true, identifier: 3);
        filter.Outbound(ping, 0);
        Assert.True(filter.Inbound(IcmpError(Peer, Self, 3, ping, code: 1), 0).IsAccepted);
        Assert.False(filter.Inbound(IcmpError(Peer, Self, 3, Echo(Self, "10.9.9.9", true, 4), code: 1), 0).IsAccepted);
    }

    [Fact]
    public void IcmpError_TruncatedQuote_Malformed()
    {
        var filter = NewFilter();
        var error = IcmpMessage(Peer, Self, 3, 3);
        Assert.Equal(FilterReason.Malformed, filter.Inbound(error, 0).Reason);
    }

    [Fact]
    public void IcmpRedirect_IsNotAnError_NeedsRule()
    {
        var filter = NewFilter();
        filter.Outbound(UdpPacket(Self, 40000, Peer, 53), 0);
        Assert.Equal(FilterReason.NoRule, filter.Inbound(IcmpError(Peer, Self, 5, UdpPacket(Self, 40000, Peer, 53)), 0).Reason);
    }

    [Fact]
    public void NonFirstFragment_ForUs_Accepted_NotForUs_Dropped()
    {
        var filter = NewFilter();
        var tail = Ip(Peer, Self, Udp, new byte[64], fragmentOffset: 185);
        Assert.Equal(FilterReason.Fragment, filter.Inbound(tail, 0).Reason);
        Assert.Equal(FilterReason.NotForUs, filter.Inbound(Ip(Peer, "100.64.9.9", Udp, new byte[64], fragmentOffset: 185), 0).Reason);
        var tail6 = Ip(Peer6, Self6, Udp, new byte[64], fragmentOffset: 100, moreFragments: true);
        Assert.Equal(FilterReason.Fragment, filter.Inbound(tail6, 0).Reason);
    }

    [Fact]
    public void FirstFragment_FilteredByItsHeader()
    {
        var filter = NewFilter(Rule([Peer, Peer6], "*", 53, 53));
        var udp = UdpPacket(Peer, 1, Self, 53)[20..];
        Assert.Equal(FilterReason.Rule, filter.Inbound(Ip(Peer, Self, Udp, udp, moreFragments: true), 0).Reason);
        var blocked = UdpPacket(Peer, 1, Self, 54)[20..];
        Assert.Equal(FilterReason.NoRule, filter.Inbound(Ip(Peer, Self, Udp, blocked, moreFragments: true), 0).Reason);
        var udp6 = UdpPacket(Peer6, 1, Self6, 53)[40..];
        Assert.Equal(FilterReason.Rule, filter.Inbound(Ip(Peer6, Self6, Udp, udp6, moreFragments: true), 0).Reason);
    }

    [Fact]
    public void FirstFragment_TooShortForTcpHeader_Malformed()
    {
        var filter = NewFilter(Rule(["*"], "*", 0, 65535));
        var tiny = Ip(Peer, Self, Tcp, TcpPacket(Peer, 1, Self, 22)[20..28], moreFragments: true);
        Assert.Equal(FilterReason.Malformed, filter.Inbound(tiny, 0).Reason);
    }

    [Fact]
    public void TcpFragment_AtOffsetOne_Dropped()
    {
        var filter = NewFilter();
        Assert.Equal(FilterReason.BadFragment, filter.Inbound(Ip(Peer, Self, Tcp, new byte[16], fragmentOffset: 1), 0).Reason);
        Assert.Equal(FilterReason.Fragment, filter.Inbound(Ip(Peer, Self, Udp, new byte[16], fragmentOffset: 1), 0).Reason);
    }

    [Fact]
    public void Ipv6ExtensionHeaders_WalkedToTransport()
    {
        var filter = NewFilter(Rule([Peer6], "*", 22, 22));
        var tcp = TcpPacket(Peer6, 1, Self6, 22)[40..];
        Assert.Equal(FilterReason.Rule, filter.Inbound(Ip(Peer6, Self6, Tcp, tcp, v6Extensions: 2), 0).Reason);
        var other = TcpPacket(Peer6, 1, Self6, 23)[40..];
        Assert.Equal(FilterReason.NoRule, filter.Inbound(Ip(Peer6, Self6, Tcp, other, v6Extensions: 2), 0).Reason);
        Assert.Equal(FilterReason.Malformed, filter.Inbound(Ip(Peer6, Self6, Tcp, tcp, v6Extensions: 9), 0).Reason);
    }

    [Fact]
    public void TrailingPadding_Ignored()
    {
        var filter = NewFilter(Rule([Peer], "*", 53, 53));
        var packet = UdpPacket(Peer, 1, Self, 53);
        var padded = new byte[packet.Length + 12];
        packet.CopyTo(padded, 0);
        Assert.True(filter.Inbound(padded, 0).IsAccepted);
    }

    [Fact]
    public void WithRules_KeepsFlows_AndAppliesNewRules()
    {
        var before = NewFilter(Rule([Peer], "*", 22, 22));
        before.Outbound(UdpPacket(Self, 40000, Peer, 53), 0);
        var after = before.WithRules([Rule([Other], "*", 22, 22)], Local);
        Assert.Same(before.Flows, after.Flows);
        Assert.True(after.Inbound(UdpPacket(Peer, 53, Self, 40000), Second).IsAccepted);
        Assert.False(after.Inbound(TcpPacket(Peer, 1, Self, 22), Second).IsAccepted);
        Assert.True(after.Inbound(TcpPacket(Other, 1, Self, 22), Second).IsAccepted);
    }

    [Fact]
    public void ReplyToForwardedFlow_PassesWithoutDestinationCheck()
    {
        // A subnet router forwards a LAN host's packet into the mesh; the reply comes back to it.
        var filter = NewFilter();
        filter.Outbound(UdpPacket("10.33.0.5", 40000, Peer, 53), 0);
        Assert.Equal(FilterReason.Reply, filter.Inbound(UdpPacket(Peer, 53, "10.33.0.5", 40000), 0).Reason);
        Assert.Equal(FilterReason.NotForUs, filter.Inbound(UdpPacket(Peer, 53, "10.33.0.6", 40000), 0).Reason);
    }
}
