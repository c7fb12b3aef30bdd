using System.Net;
using System.Text.Json;
using Mesh.Net.Linux;
using static Mesh.Net.Tests.Linux.LinuxTestSupport;

namespace Mesh.Net.Tests.Linux;

public sealed class RtNetlinkTests
{
    private static bool HasAddress(string device, string address, int prefixLength, out JsonElement info)
    {
        foreach (JsonElement link in IpJson("addr", "show", "dev", device).EnumerateArray())
        {
            foreach (JsonElement a in link.GetProperty("addr_info").EnumerateArray())
            {
                if (a.GetProperty("local").GetString() == address && a.GetProperty("prefixlen").GetInt32() == prefixLength)
                {
                    info = a;
                    return true;
                }
            }
        }
        info = default;
        return false;
    }

    private static JsonElement? FindRoute(string family, string device, string destination)
    {
        foreach (JsonElement route in IpJson(family, "route", "show", "dev", device).EnumerateArray())
        {
            if (route.GetProperty("dst").GetString() == destination)
            {
                return route;
            }
        }
        return null;
    }

    [Fact]
    public void AddAddress_IPv4AndIPv6_ReadBackThenDeleted()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("lioaddr0");
            using var netlink = new RtNetlink();

            netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.1.1"), 24);
            netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("fd7a:115c:a1e0::1"), 64);

            Assert.True(HasAddress("lioaddr0", "100.64.1.1", 24, out _));
            Assert.True(HasAddress("lioaddr0", "fd7a:115c:a1e0::1", 64, out JsonElement v6));
            // NODAD: usable at once, never "tentative".
            Assert.False(v6.TryGetProperty("tentative", out _));
            Assert.True(v6.TryGetProperty("nodad", out _), v6.ToString());

            netlink.DeleteAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.1.1"), 24);
            netlink.DeleteAddress(tun.InterfaceIndex, IPAddress.Parse("fd7a:115c:a1e0::1"), 64);
            Assert.False(HasAddress("lioaddr0", "100.64.1.1", 24, out _));
            Assert.False(HasAddress("lioaddr0", "fd7a:115c:a1e0::1", 64, out _));
        });
    }

    [Fact]
    public void AddAddress_Twice_ThrowsEexistNamingOperationAndInterface()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("lioaddr1");
            using var netlink = new RtNetlink();
            netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.0.1"), 32);

            var e = Assert.Throws<NetlinkException>(() => netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.0.1"), 32));

            Assert.Equal(17, e.Errno);
            Assert.Equal("EEXIST", e.ErrnoName);
            Assert.StartsWith("adding address 100.64.0.1/32 to lioaddr1: File exists (EEXIST)", e.Message);
        });
    }

    [Fact]
    public void AddRoute_IPv4AndIPv6_ReadBackIdempotentThenDeleted()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("lioroute0");
            using var netlink = new RtNetlink();
            int index = tun.InterfaceIndex;

            netlink.AddRoute(index, IPAddress.Parse("100.64.2.0"), 24, metric: 10);
            netlink.AddRoute(index, IPAddress.Parse("100.64.2.0"), 24, metric: 10); // again: not an error
            netlink.AddRoute(index, IPAddress.Parse("100.100.3.7"), 16); // host bits are cleared
            netlink.AddRoute(index, IPAddress.Parse("fd7a:115c:a1e0:2::"), 64);
            netlink.AddRoute(index, IPAddress.Parse("fd7a:115c:a1e0:2::"), 64);

            JsonElement? v4 = FindRoute("-4", "lioroute0", "100.64.2.0/24");
            Assert.NotNull(v4);
            Assert.Equal(10, v4.Value.GetProperty("metric").GetInt32());
            Assert.Equal("link", v4.Value.GetProperty("scope").GetString());
            Assert.NotNull(FindRoute("-4", "lioroute0", "100.100.0.0/16"));
            Assert.NotNull(FindRoute("-6", "lioroute0", "fd7a:115c:a1e0:2::/64"));
            Assert.Single(IpJson("-4", "route", "show", "100.64.2.0/24").EnumerateArray());

            netlink.DeleteRoute(index, IPAddress.Parse("100.64.2.0"), 24, metric: 10);
            netlink.DeleteRoute(index, IPAddress.Parse("fd7a:115c:a1e0:2::"), 64);
            Assert.Null(FindRoute("-4", "lioroute0", "100.64.2.0/24"));
            Assert.Null(FindRoute("-6", "lioroute0", "fd7a:115c:a1e0:2::/64"));

            var e = Assert.Throws<NetlinkException>(() => netlink.DeleteRoute(index, IPAddress.Parse("100.64.2.0"), 24));
            Assert.Equal("ESRCH", e.ErrnoName);
            Assert.StartsWith("deleting route 100.64.2.0/24 dev lioroute0", e.Message);
        });
    }

    [Fact]
    public void SetMtuAndLinkState_ReadBackFromIpLink()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liolink0", mtu: 1380);
            using var netlink = new RtNetlink();
            int index = netlink.GetInterfaceIndex("liolink0");
            Assert.Equal(tun.InterfaceIndex, index);
            Assert.Equal("liolink0", netlink.GetInterfaceName(index));

            JsonElement link = IpJson("link", "show", "dev", "liolink0")[0];
            Assert.Equal(index, link.GetProperty("ifindex").GetInt32());
            Assert.Equal(1380, link.GetProperty("mtu").GetInt32());
            Assert.Contains("UP", link.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));

            netlink.SetMtu(index, 1280);
            netlink.SetLinkUp(index, false);
            link = IpJson("link", "show", "dev", "liolink0")[0];
            Assert.Equal(1280, link.GetProperty("mtu").GetInt32());
            Assert.DoesNotContain("UP", link.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        });
    }

    [Fact]
    public void GetInterfaceIndex_Unknown_ThrowsEnodev()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var netlink = new RtNetlink();
            var e = Assert.Throws<NetlinkException>(() => netlink.GetInterfaceIndex("lionothere"));
            Assert.Equal("ENODEV", e.ErrnoName);
            Assert.StartsWith("looking up interface lionothere: No such device (ENODEV)", e.Message);
        });
    }

    [Fact]
    public void DeleteLink_RemovesInterface()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liodel0");
            using var netlink = new RtNetlink();

            netlink.DeleteLink(tun.InterfaceIndex);

            Assert.DoesNotContain("liodel0", IpJson("link", "show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString()));
            Assert.Throws<NetlinkException>(() => netlink.GetInterfaceIndex("liodel0"));
        });
    }

    [Fact]
    public void AddAddress_InvalidPrefix_ThrowsBeforeAskingTheKernel()
    {
        using var netlink = new RtNetlink();
        Assert.Throws<ArgumentOutOfRangeException>(() => netlink.AddAddress(1, IPAddress.Parse("100.64.0.1"), 33));
        Assert.Throws<ArgumentOutOfRangeException>(() => netlink.AddRoute(1, IPAddress.Parse("fd7a:115c:a1e0::"), 129));
    }
}
