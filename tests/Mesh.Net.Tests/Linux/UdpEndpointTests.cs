using System.Net;
using CsCheck;
using Mesh.Net.Linux;

namespace Mesh.Net.Tests.Linux;

public sealed class UdpEndpointTests
{
    [Theory]
    [InlineData("198.18.0.1:51820")]
    [InlineData("100.64.0.1:0")]
    [InlineData("255.255.255.255:65535")]
    [InlineData("[fd00::1]:51820")]
    [InlineData("[fd7a:115c:a1e0::53]:53")]
    [InlineData("[::]:1")]
    [InlineData("[fe80::1%3]:41641")]
    public void TryParse_ThenToString_RoundTrips(string text)
    {
        Assert.True(UdpEndpoint.TryParse(text, out var endpoint));
        Assert.Equal(text, endpoint.ToString());
    }

    [Fact]
    public void TryParse_V4Mapped_IsTheIPv4Endpoint()
    {
        Assert.True(UdpEndpoint.TryParse("[::ffff:198.18.0.1]:51820", out var mapped));
        Assert.True(UdpEndpoint.TryParse("198.18.0.1:51820", out var v4));
        Assert.Equal(v4, mapped);
        Assert.True(mapped.IsIPv4);
        Assert.Equal("198.18.0.1:51820", mapped.ToString());
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.18.0.1"), 51820), mapped.ToIPEndPoint());
    }

    [Theory]
    [InlineData("")]
    [InlineData("198.18.0.1")]
    [InlineData("198.18.0.1:")]
    [InlineData("198.18.0.1:65536")]
    [InlineData("198.18.0.1:-1")]
    [InlineData("198.18.0.1:+5")]
    [InlineData("198.18.0:5")]
    [InlineData("198.18.0.256:5")]
    [InlineData("010.0.0.1:5")]
    [InlineData("1:5")]
    [InlineData("fd00::1:51820")]
    [InlineData("[fd00::1]")]
    [InlineData("[fd00::1]51820")]
    [InlineData("[198.18.0.1]:5")]
    [InlineData("host.example:5")]
    [InlineData(" 198.18.0.1:5")]
    public void TryParse_Malformed_ReturnsFalse(string text)
    {
        Assert.False(UdpEndpoint.TryParse(text, out _));
    }

    [Fact]
    public void IPEndPoint_RoundTrips()
    {
        var v6 = new IPEndPoint(IPAddress.Parse("fd7a:115c:a1e0::1"), 41641);
        var v4 = new IPEndPoint(IPAddress.Parse("100.64.0.7"), 41641);
        Assert.Equal(v6, UdpEndpoint.FromIPEndPoint(v6).ToIPEndPoint());
        Assert.Equal(v4, UdpEndpoint.FromIPEndPoint(v4).ToIPEndPoint());
        Assert.False(UdpEndpoint.FromIPEndPoint(v6).IsIPv4);
        Assert.True(UdpEndpoint.FromIPEndPoint(v4).IsIPv4);
        Assert.Equal(UdpEndpoint.FromIPEndPoint(v4), UdpEndpoint.FromIPEndPoint(new IPEndPoint(v4.Address.MapToIPv6(), 41641)));
    }

    [Fact]
    public void Equality_ComparesAddressPortAndScope()
    {
        UdpEndpoint.TryParse("[fe80::1%3]:1", out var a);
        UdpEndpoint.TryParse("[fe80::1%4]:1", out var b);
        UdpEndpoint.TryParse("[fe80::1%3]:2", out var c);
        UdpEndpoint.TryParse("[fe80::1%3]:1", out var d);
        Assert.NotEqual(a, b);
        Assert.NotEqual(a, c);
        Assert.True(a == d);
        Assert.Equal(a.GetHashCode(), d.GetHashCode());
        Assert.True(a != b);
    }

    [Fact]
    public void RandomEndpoints_RoundTripThroughTextAndIPEndPoint()
    {
        Gen.Select(Gen.Byte.Array[16], Gen.UShort, Gen.Bool).Sample((bytes, port, v4) =>
        {
            IPAddress address = v4 ? new IPAddress(bytes[..4]) : new IPAddress(bytes);
            var endpoint = UdpEndpoint.FromIPEndPoint(new IPEndPoint(address, port));
            Assert.True(UdpEndpoint.TryParse(endpoint.ToString(), out var parsed), endpoint.ToString());
            Assert.Equal(endpoint, parsed);
            Assert.Equal(endpoint, UdpEndpoint.FromIPEndPoint(endpoint.ToIPEndPoint()));
            bool mapped = !v4 && bytes.AsSpan(0, 10).IndexOfAnyExcept((byte)0) < 0 && bytes[10] == 0xff && bytes[11] == 0xff;
            Assert.Equal(v4 || mapped, endpoint.IsIPv4);
        });
    }
}
