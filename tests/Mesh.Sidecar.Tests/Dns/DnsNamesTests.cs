using System.Net;
using CsCheck;
using Mesh.Sidecar.Dns;

namespace Mesh.Sidecar.Tests.Dns;

public sealed class DnsNamesTests
{
    [Theory]
    [InlineData("100.64.0.1", "1.0.64.100.in-addr.arpa")]
    [InlineData("fd7a:115c:a1e0::53", "3.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa")]
    public void ReverseName_KnownAnswers(string address, string expected)
    {
        // The IPv4 form is RFC 1035 §3.5's example shape; the IPv6 one follows RFC 3596 §2.5.
        Assert.Equal(expected, DnsNames.ReverseName(IPAddress.Parse(address)));
        Assert.True(DnsNames.TryParseReverseName(expected.ToUpperInvariant() + ".", out var parsed));
        Assert.Equal(IPAddress.Parse(address), parsed);
    }

    [Fact]
    public void ReverseName_RoundTripsRandomAddresses()
    {
        Gen.Select(Gen.Bool, Gen.Byte.Array[16]).Sample(t =>
        {
            var address = t.Item1 ? new IPAddress(t.Item2[..4]) : new IPAddress(t.Item2);
            return DnsNames.TryParseReverseName(DnsNames.ReverseName(address), out var parsed) && address.Equals(parsed);
        });
    }

    [Theory]
    [InlineData("1.0.64.in-addr.arpa")]
    [InlineData("1.1.0.64.100.in-addr.arpa")]
    [InlineData("256.0.64.100.in-addr.arpa")]
    [InlineData("01.0.64.100.in-addr.arpa")]
    [InlineData("x.0.64.100.in-addr.arpa")]
    [InlineData("in-addr.arpa")]
    [InlineData("1.0.0.ip6.arpa")]
    [InlineData("g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa")]
    [InlineData("10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa")]
    [InlineData("web.mesh.internal")]
    public void TryParseReverseName_RejectsPartialOrInvalid(string name)
    {
        Assert.False(DnsNames.TryParseReverseName(name, out _));
    }

    [Theory]
    [InlineData("Web.Mesh.Internal.", "web.mesh.internal")]
    [InlineData(" _http._tcp.x ", "_http._tcp.x")]
    [InlineData(".", "")]
    public void Normalize_LowerCasesAndDropsTrailingDot(string name, string expected)
    {
        Assert.Equal(expected, DnsNames.Normalize(name, "name"));
    }

    [Fact]
    public void Normalize_LabelTooLong_Throws()
    {
        Assert.Throws<ArgumentException>(() => DnsNames.Normalize(new string('a', 64) + ".test", "name"));
    }
}
