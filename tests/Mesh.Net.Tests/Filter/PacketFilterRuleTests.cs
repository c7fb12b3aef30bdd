using System.Net;
using Mesh.Net.Filter;
using static Mesh.Net.Tests.Filter.FilterPackets;

namespace Mesh.Net.Tests.Filter;

public sealed class PacketFilterRuleTests
{
    internal const string Self = "100.64.0.1";
    internal const string Self6 = "fd7a:115c:a1e0::1";
    internal const string Peer = "100.64.0.2";
    internal const string Peer6 = "fd7a:115c:a1e0::2";
    internal const string Other = "100.64.0.3";

    internal static readonly IPNetwork[] Local = [IPNetwork.Parse(Self + "/32"), IPNetwork.Parse(Self6 + "/128")];

    internal static FilterRuleSpec Rule(string[] sources, string destination, int first, int last, params int[] protocols) =>
        new(sources, [new FilterDestination(destination, first, last)], protocols.Length == 0 ? null : protocols);

    internal static PacketFilter NewFilter(params FilterRuleSpec[] rules) => PacketFilter.Compile(rules, Local);

    private static FilterVerdict In(PacketFilter filter, byte[] packet) => filter.Inbound(packet, 0);

    [Theory]
    [InlineData(Peer, true)]
    [InlineData(Other, false)]
    [InlineData("100.64.0.0/30", true)]
    [InlineData("100.64.0.0/31", false)]
    [InlineData("100.64.0.5/30", false)] // host bits ignored: 100.64.0.4/30 contains .5, not .2
    [InlineData("100.64.0.2-100.64.0.2", true)]
    [InlineData("100.64.0.1-100.64.0.9", true)]
    [InlineData("100.64.0.3-100.64.0.9", false)]
    [InlineData("*", true)]
    [InlineData(Peer6, false)]
    public void Source_Forms_MatchAsExpected(string source, bool accepted)
    {
        var filter = NewFilter(Rule([source], "*", 22, 22));
        var verdict = In(filter, TcpPacket(Peer, 40000, Self, 22));
        Assert.Equal(accepted, verdict.IsAccepted);
        Assert.Equal(accepted ? FilterReason.Rule : FilterReason.NoRule, verdict.Reason);
    }

    [Fact]
    public void Source_Ipv6CidrAndRange_Match()
    {
        var filter = NewFilter(
            Rule(["fd7a:115c:a1e0::/120"], "*", 80, 80),
            Rule(["fd7a:115c:a1e0::100-fd7a:115c:a1e0::1ff"], "*", 81, 81));
        Assert.True(In(filter, TcpPacket(Peer6, 1, Self6, 80)).IsAccepted);
        Assert.False(In(filter, TcpPacket("fd7a:115c:a1e0::100", 1, Self6, 80)).IsAccepted);
        Assert.True(In(filter, TcpPacket("fd7a:115c:a1e0::1ff", 1, Self6, 81)).IsAccepted);
        Assert.False(In(filter, TcpPacket("fd7a:115c:a1e0::200", 1, Self6, 81)).IsAccepted);
        Assert.False(In(filter, TcpPacket(Peer6, 1, Self6, 81)).IsAccepted);
    }

    [Fact]
    public void Star_CoversBothFamilies()
    {
        var filter = NewFilter(Rule(["*"], "*", 443, 443));
        Assert.True(In(filter, TcpPacket(Peer, 1, Self, 443)).IsAccepted);
        Assert.True(In(filter, TcpPacket(Peer6, 1, Self6, 443)).IsAccepted);
    }

    [Theory]
    [InlineData(999, false)]
    [InlineData(1000, true)]
    [InlineData(1500, true)]
    [InlineData(2000, true)]
    [InlineData(2001, false)]
    [InlineData(0, false)]
    [InlineData(65535, false)]
    public void PortRange_Boundaries(int port, bool accepted)
    {
        var filter = NewFilter(Rule([Peer], "*", 1000, 2000));
        Assert.Equal(accepted, In(filter, TcpPacket(Peer, 5000, Self, port)).IsAccepted);
        Assert.Equal(accepted, In(filter, UdpPacket(Peer, 5000, Self, port)).IsAccepted);
    }

    [Fact]
    public void PortRange_FullRangeAndZero()
    {
        var filter = NewFilter(Rule([Peer], "*", 0, 65535));
        Assert.True(In(filter, UdpPacket(Peer, 1, Self, 0)).IsAccepted);
        Assert.True(In(filter, UdpPacket(Peer, 1, Self, 65535)).IsAccepted);
    }

    [Fact]
    public void PortRanges_OfSeveralRulesAndEntries_Union()
    {
        var filter = NewFilter(
            new FilterRuleSpec([Peer], [new FilterDestination("*", 10, 20), new FilterDestination("*", 30, 40)]),
            Rule([Peer], "*", 21, 25));
        foreach (var (port, ok) in new[] { (9, false), (10, true), (25, true), (26, false), (29, false), (30, true), (40, true), (41, false) })
        {
            Assert.Equal(ok, In(filter, TcpPacket(Peer, 1, Self, port)).IsAccepted);
        }
    }

    [Fact]
    public void DefaultProtocols_AreTcpUdpIcmpIcmpV6()
    {
        var filter = NewFilter(Rule(["*"], "*", 7, 7));
        Assert.True(In(filter, TcpPacket(Peer, 1, Self, 7)).IsAccepted);
        Assert.True(In(filter, UdpPacket(Peer, 1, Self, 7)).IsAccepted);
        Assert.True(In(filter, Echo(Peer, Self, request: true, identifier: 9)).IsAccepted);
        Assert.True(In(filter, Echo(Peer6, Self6, request: true, identifier: 9)).IsAccepted);
        Assert.False(In(filter, Raw(Peer, Self, 132)).IsAccepted); // SCTP is not a default
        Assert.Equal(FilterReason.NoRule, In(filter, Raw(Peer, Self, Gre)).Reason);
    }

    [Fact]
    public void EmptyProtocolList_MeansDefaults()
    {
        var filter = NewFilter(new FilterRuleSpec(["*"], [new FilterDestination("*", 7, 7)], []));
        Assert.True(In(filter, UdpPacket(Peer, 1, Self, 7)).IsAccepted);
    }

    [Fact]
    public void ProtocolList_OnlyListedProtocolsPass()
    {
        var filter = NewFilter(Rule(["*"], "*", 53, 53, 17));
        Assert.True(In(filter, UdpPacket(Peer, 1, Self, 53)).IsAccepted);
        Assert.Equal(FilterReason.NoRule, In(filter, TcpPacket(Peer, 1, Self, 53)).Reason);
        Assert.False(In(filter, Echo(Peer, Self, request: true, identifier: 1)).IsAccepted);
    }

    [Fact]
    public void Icmp_PortsIgnored_ButProtocolAndAddressesChecked()
    {
        var filter = NewFilter(Rule([Peer], Self, 22, 22), Rule([Peer6], "*", 1, 1, 6));
        Assert.True(In(filter, Echo(Peer, Self, request: true, identifier: 1)).IsAccepted);
        Assert.False(In(filter, Echo(Other, Self, request: true, identifier: 1)).IsAccepted);
        Assert.False(In(filter, Echo(Peer6, Self6, request: true, identifier: 1)).IsAccepted); // TCP only
        Assert.True(In(filter, IcmpMessage(Peer, Self, 13)).IsAccepted); // timestamp: informational, by rule
    }

    [Fact]
    public void IcmpV4Protocol_DoesNotAllowIcmpV6()
    {
        var filter = NewFilter(Rule(["*"], "*", 0, 65535, 1));
        Assert.True(In(filter, Echo(Peer, Self, true, 1)).IsAccepted);
        Assert.False(In(filter, Echo(Peer6, Self6, true, 1)).IsAccepted);
    }

    [Fact]
    public void OtherProtocol_NeedsListedProtocolAndAllPorts()
    {
        var open = NewFilter(Rule([Peer], "*", 0, 65535, Gre));
        var narrow = NewFilter(Rule([Peer], "*", 22, 22, Gre));
        var defaults = NewFilter(Rule([Peer], "*", 0, 65535));
        Assert.Equal(FilterReason.Rule, In(open, Raw(Peer, Self, Gre)).Reason);
        Assert.Equal(FilterReason.NoRule, In(narrow, Raw(Peer, Self, Gre)).Reason);
        Assert.Equal(FilterReason.NoRule, In(defaults, Raw(Peer, Self, Gre)).Reason);
        Assert.Equal(FilterReason.NoRule, In(open, Raw(Other, Self, Gre)).Reason);
    }

    [Fact]
    public void DstIp_Star_AllowsOnlyLocalAddresses()
    {
        var filter = NewFilter(Rule(["*"], "*", 22, 22));
        Assert.True(In(filter, TcpPacket(Peer, 1, Self, 22)).IsAccepted);
        Assert.Equal(FilterReason.NotForUs, In(filter, TcpPacket(Peer, 1, "100.64.0.77", 22)).Reason);
        Assert.Equal(FilterReason.NotForUs, In(filter, TcpPacket(Peer, 1, "100.64.0.77", 22, Ack)).Reason);
    }

    [Fact]
    public void DstIp_SelfAddress_OnlyThatAddress()
    {
        var filter = PacketFilter.Compile([Rule(["*"], Self, 22, 22)], [IPNetwork.Parse(Self + "/32"), IPNetwork.Parse("100.64.0.9/32")]);
        Assert.True(In(filter, TcpPacket(Peer, 1, Self, 22)).IsAccepted);
        Assert.Equal(FilterReason.NoRule, In(filter, TcpPacket(Peer, 1, "100.64.0.9", 22)).Reason);
    }

    [Fact]
    public void DstIp_AnotherAddress_DoesNotOpenOurs()
    {
        var filter = NewFilter(Rule(["*"], "100.64.0.50", 22, 22));
        Assert.Equal(FilterReason.NoRule, In(filter, TcpPacket(Peer, 1, Self, 22)).Reason);
    }

    [Fact]
    public void DstIp_RoutedPrefix_AcceptedForSubnetRouter()
    {
        var filter = NewFilter(Rule([Peer], "10.33.0.0/16", 80, 80), Rule([Peer], Self, 22, 22), Rule([Other], "*", 23, 23));
        Assert.Equal(FilterReason.Rule, In(filter, TcpPacket(Peer, 1, "10.33.4.5", 80)).Reason);
        Assert.Equal(FilterReason.TcpEstablished, In(filter, TcpPacket(Peer, 1, "10.33.4.5", 80, Ack)).Reason);
        Assert.Equal(FilterReason.NoRule, In(filter, TcpPacket(Peer, 1, "10.33.4.5", 22)).Reason);
        Assert.Equal(FilterReason.NoRule, In(filter, TcpPacket(Other, 1, "10.33.4.5", 80)).Reason);
        Assert.Equal(FilterReason.Rule, In(filter, TcpPacket(Other, 1, "10.33.4.5", 23)).Reason); // '*' covers served routes
        Assert.Equal(FilterReason.NotForUs, In(filter, TcpPacket(Peer, 1, "10.34.0.1", 80)).Reason);
    }

    [Fact]
    public void NoLocalPrefixes_SkipsDestinationCheck()
    {
        var filter = PacketFilter.Compile([Rule(["*"], "*", 22, 22)]);
        Assert.True(filter.Inbound(TcpPacket(Peer, 1, "192.0.2.1", 22), 0).IsAccepted);
    }

    [Fact]
    public void EmptyRules_DropNewFlows_AcceptEstablishedTcp()
    {
        var filter = NewFilter();
        Assert.Equal(FilterReason.NoRule, In(filter, TcpPacket(Peer, 1, Self, 22)).Reason);
        Assert.Equal(FilterReason.NoRule, In(filter, UdpPacket(Peer, 1, Self, 53)).Reason);
        Assert.Equal(FilterReason.NoRule, In(filter, Echo(Peer, Self, true, 1)).Reason);
        Assert.Equal(FilterReason.TcpEstablished, In(filter, TcpPacket(Peer, 1, Self, 22, Ack)).Reason);
    }

    [Fact]
    public void ManyRulesAndSources_StillExact()
    {
        var rules = new List<FilterRuleSpec>();
        for (int r = 0; r < 1000; r++)
        {
            var sources = new string[20];
            for (int s = 0; s < sources.Length; s++)
            {
                int host = ((r * 7) + (s * 13)) % 4000;
                sources[s] = $"100.65.{host / 250}.{host % 250}";
            }

            rules.Add(Rule(sources, "*", 1000 + r, 1000 + r));
        }

        var filter = NewFilter([.. rules]);
        Assert.True(In(filter, TcpPacket("100.65.0.0", 1, Self, 1000)).IsAccepted); // rule 0, source 0
        Assert.True(In(filter, TcpPacket("100.65.0.13", 1, Self, 1000)).IsAccepted); // rule 0, source 1
        Assert.False(In(filter, TcpPacket("100.65.0.14", 1, Self, 1000)).IsAccepted);
        Assert.True(In(filter, TcpPacket("100.65.0.7", 1, Self, 1001)).IsAccepted); // rule 1, source 0
        Assert.False(In(filter, TcpPacket("100.65.0.7", 1, Self, 2000)).IsAccepted);
    }

    [Theory]
    [InlineData("100.64.0.0/33", "SrcIPs entry '100.64.0.0/33'")]
    [InlineData("not-an-ip", "SrcIPs entry 'not-an-ip'")]
    [InlineData("100.64.0.9-100.64.0.1", "first address is above its last")]
    [InlineData("100.64.0.1-fd7a::1", "one family")]
    [InlineData("10", "not an address")]
    [InlineData("", "not an address")]
    public void Compile_BadSource_NamesRuleAndEntry(string source, string expected)
    {
        var error = Assert.Throws<FilterRuleException>(() =>
            PacketFilter.Compile([Rule(["*"], "*", 1, 1), Rule([source], "*", 1, 1)]));
        Assert.Contains("rule 1", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("*", 10, 5)]
    [InlineData("*", -1, 5)]
    [InlineData("*", 1, 65536)]
    [InlineData("1.2.3", 1, 2)]
    public void Compile_BadDestination_Throws(string ip, int first, int last)
    {
        var error = Assert.Throws<FilterRuleException>(() => PacketFilter.Compile([Rule(["*"], ip, first, last)]));
        Assert.Contains("rule 0: DstPorts entry", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_BadProtocol_Throws()
    {
        var error = Assert.Throws<FilterRuleException>(() => PacketFilter.Compile([Rule(["*"], "*", 1, 1, 256)]));
        Assert.Contains("IPProto entry 256", error.Message, StringComparison.Ordinal);
    }
}
