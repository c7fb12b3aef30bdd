using System.Net;
using Mesh.Sidecar.Dns;

namespace Mesh.Sidecar.Tests.Dns;

/// <summary>The zone's answering rules, without sockets.</summary>
public sealed class MagicDnsZoneTests
{
    private static readonly IPAddress WebV4 = IPAddress.Parse("100.64.0.1");
    private static readonly IPAddress WebV6 = IPAddress.Parse("fd7a:115c:a1e0::1");

    private static MagicDnsZone Zone() => new(new MagicDnsRecords(
        "Mesh.Internal.",
        [
            new MagicDnsNode("web", [WebV4, WebV6]),
            new MagicDnsNode("api.mesh.internal.", [IPAddress.Parse("100.64.0.3")]),
            new MagicDnsNode("web", [WebV4, IPAddress.Parse("100.64.0.4")]),
        ],
        [
            new MagicDnsExtraRecord("a.b.mesh.internal", MagicDnsRecordType.A, IPAddress.Parse("100.64.0.5")),
            new MagicDnsExtraRecord("db.corp.test", MagicDnsRecordType.Aaaa, IPAddress.Parse("fd7a:115c:a1e0::6")),
        ],
        [],
        []));

    [Fact]
    public void Node_Addresses_BySameNameMerged()
    {
        var result = Zone().Lookup("web.mesh.internal", ZoneQueryType.A);

        Assert.Equal(ZoneResultKind.Answer, result.Kind);
        Assert.Equal([WebV4, IPAddress.Parse("100.64.0.4")], result.Addresses);
    }

    [Fact]
    public void Any_ReturnsBothFamilies()
    {
        var result = Zone().Lookup("web", ZoneQueryType.Any);

        Assert.Equal([WebV4, IPAddress.Parse("100.64.0.4"), WebV6], result.Addresses);
    }

    [Fact]
    public void NodeNameAlreadyQualified_IsNotQualifiedTwice()
    {
        var zone = Zone();

        Assert.Equal(ZoneResultKind.Answer, zone.Lookup("api.mesh.internal.", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.Answer, zone.Lookup("api", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NxDomain, zone.Lookup("api.mesh.internal.mesh.internal", ZoneQueryType.A).Kind);
    }

    [Fact]
    public void ExtraRecordBelowBase_MakesItsAncestorsExist()
    {
        var zone = Zone();

        Assert.Equal(ZoneResultKind.Answer, zone.Lookup("a.b.mesh.internal", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NoData, zone.Lookup("b.mesh.internal", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NoData, zone.Lookup("b", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NxDomain, zone.Lookup("c.b.mesh.internal", ZoneQueryType.A).Kind);
    }

    [Fact]
    public void ExtraRecordOutsideBase_OwnsOnlyItsExactName()
    {
        var zone = Zone();

        Assert.Equal([IPAddress.Parse("fd7a:115c:a1e0::6")], zone.Lookup("DB.corp.test.", ZoneQueryType.Aaaa).Addresses);
        Assert.Equal(ZoneResultKind.NoData, zone.Lookup("db.corp.test", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NotOurs, zone.Lookup("www.corp.test", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NotOurs, zone.Lookup("corp.test", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NotOurs, zone.Lookup("db", ZoneQueryType.A).Kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("internal")]
    [InlineData("example.test")]
    [InlineData("mesh.internal.evil.test")]
    [InlineData("xmesh.internal")]
    public void ForeignName_IsNotOurs(string name)
    {
        Assert.Equal(ZoneResultKind.NotOurs, Zone().Lookup(name, ZoneQueryType.A).Kind);
    }

    [Fact]
    public void ReverseNames_NodeAnswers_MeshMissIsNxDomain_OthersAreNotOurs()
    {
        var zone = Zone();

        Assert.Equal("web.mesh.internal", zone.Lookup("1.0.64.100.in-addr.arpa.", ZoneQueryType.Ptr).PtrTarget);
        Assert.Equal("web.mesh.internal", zone.Lookup(DnsNames.ReverseName(WebV6), ZoneQueryType.Ptr).PtrTarget);
        Assert.Equal(ZoneResultKind.NoData, zone.Lookup("1.0.64.100.in-addr.arpa", ZoneQueryType.A).Kind);
        Assert.Equal(ZoneResultKind.NxDomain, zone.Lookup("9.9.127.100.in-addr.arpa", ZoneQueryType.Ptr).Kind);
        Assert.Equal(ZoneResultKind.NxDomain, zone.Lookup(DnsNames.ReverseName(IPAddress.Parse("fd7a:115c:a1e0::99")), ZoneQueryType.Ptr).Kind);
        Assert.Equal(ZoneResultKind.NotOurs, zone.Lookup("1.0.168.192.in-addr.arpa", ZoneQueryType.Ptr).Kind);
        Assert.Equal(ZoneResultKind.NotOurs, zone.Lookup("64.100.in-addr.arpa", ZoneQueryType.Ptr).Kind);
    }

    [Fact]
    public void ExtraRecordAddresses_HaveNoReverseName()
    {
        // Extra records may share an address with a node or point anywhere; only nodes own PTRs.
        Assert.Equal(ZoneResultKind.NxDomain, Zone().Lookup("5.0.64.100.in-addr.arpa", ZoneQueryType.Ptr).Kind);
    }

    [Theory]
    [InlineData("bad name")]
    [InlineData("a..b")]
    [InlineData(".a")]
    public void Records_InvalidName_Throws(string name)
    {
        Assert.Throws<ArgumentException>(() => new MagicDnsRecords("mesh.internal", [new MagicDnsNode(name, [])], [], [], []));
    }

    [Fact]
    public void Records_ExtraRecordFamilyMismatch_Throws()
    {
        Assert.Throws<ArgumentException>(() => new MagicDnsRecords(
            "mesh.internal",
            [],
            [new MagicDnsExtraRecord("x.mesh.internal", MagicDnsRecordType.Aaaa, IPAddress.Parse("100.64.0.1"))],
            [],
            []));
    }

    [Fact]
    public void Records_RootBaseDomain_Throws()
    {
        Assert.Throws<ArgumentException>(() => new MagicDnsRecords(".", [], [], [], []));
    }

    [Theory]
    [InlineData("1.1.1.1", "1.1.1.1:53")]
    [InlineData(" 2001:db8::1 ", "[2001:db8::1]:53")]
    [InlineData("192.0.2.1:5353", "192.0.2.1:5353")]
    [InlineData("[2001:db8::1]:5353", "[2001:db8::1]:5353")]
    [InlineData("2001:db8::1:0", "[2001:db8::1:0]:53")]
    public void TryParseNameserver_AddressWithOrWithoutPort(string text, string expected)
    {
        Assert.True(MagicDnsRecords.TryParseNameserver(text, out var nameserver));
        Assert.Equal(IPEndPoint.Parse(expected), nameserver);
    }

    [Theory]
    [InlineData("")]
    [InlineData("dns.example.test")]
    [InlineData("https://dns.example.test/dns-query")]
    [InlineData("192.0.2.1:0")]
    [InlineData("[2001:db8::1]:0")]
    public void TryParseNameserver_Other_IsFalse(string text)
    {
        Assert.False(MagicDnsRecords.TryParseNameserver(text, out _));
    }

    [Fact]
    public void ExtraRecordParse_TypesAndErrors()
    {
        Assert.Equal(MagicDnsRecordType.Aaaa, MagicDnsExtraRecord.Parse("x.mesh.internal", "aaaa", "fd7a:115c:a1e0::9").Type);
        Assert.Equal(MagicDnsRecordType.A, MagicDnsExtraRecord.Parse("x.mesh.internal", "A", "100.64.0.9").Type);
        Assert.Throws<ArgumentException>(() => MagicDnsExtraRecord.Parse("x.mesh.internal", "CNAME", "y.mesh.internal"));
        Assert.Throws<ArgumentException>(() => MagicDnsExtraRecord.Parse("x.mesh.internal", "A", "fd7a:115c:a1e0::9"));
        Assert.Throws<ArgumentException>(() => MagicDnsExtraRecord.Parse("x.mesh.internal", "A", "nope"));
    }
}
