using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Mesh;

/// <summary>
/// Subnet routers and exit nodes with the real coordinator and agents: networks that live only
/// behind one node (a namespace of their own, 198.19.x.0/24) become reachable from the mesh once an
/// admin approves the route, through the router's forwarding and masquerading.
/// </summary>
[Trait("Category", "Mesh")]
public sealed class MeshRoutingTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SubnetRouter_ExposesItsLocalNetwork_OnlyAfterTheRouteIsApproved()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables", "sysctl");
        await using var lab = await MeshLab.StartAsync();
        var names = TestNames.Create();
        await using var server = await NetNs.CreateAsync(names.Namespace("srv"), Token);
        var key = await lab.CreateKeyAsync("alice");
        var router = await lab.AddNodeAsync("r", key, ns => ConnectBehindAsync(ns, server, names, "198.19.1"), "--advertise-routes", "198.19.1.0/24");
        var client = await lab.AddNodeAsync("c", key, "--accept-routes");
        await lab.WaitForFullMeshAsync();
        Assert.True((await client.PingAsync(router.V4!, Token)).Succeeded, "c → r over the mesh");

        // Advertised but not approved: no route, nothing gets through.
        var before = await client.Namespace.ExecAsync(["ping", "-4", "-c", "1", "-W", "2", "198.19.1.10"], Token);
        Assert.False(before.Succeeded, "198.19.1.10 answered before the route was approved");
        Assert.DoesNotContain("198.19.1.0/24", await client.Namespace.CheckAsync(["ip", "route"], Token));

        await lab.OperatorAsync("routes", "enable", "-r", await RouteIdAsync(lab, "r", "198.19.1.0/24"));
        var reached = await Eventually.TryAsync(async ct => (await client.Namespace.ExecAsync(["ping", "-4", "-c", "1", "-W", "2", "198.19.1.10"], ct)).Succeeded, TimeSpan.FromSeconds(20), Token);
        Assert.True(reached, $"c → 198.19.1.10 behind r: no reply after the route was approved\n{await lab.DescribeAsync()}");

        // The server has no route back to the mesh: it answers the router, which masquerades.
        Assert.Equal(IPAddress.Parse("198.19.1.1"), await ConnectFromAsync(client, server, IPAddress.Parse("198.19.1.10"), 8080));
        var nat = await router.Namespace.CheckAsync(["iptables", "-t", "nat", "-S"], Token);
        Assert.Contains("-A mesh-nat-mesh0 -s 100.64.0.0/10 -d 198.19.1.0/24 -j MASQUERADE", nat);
        Assert.Equal("1", (await router.Namespace.CheckAsync(["cat", "/proc/sys/net/ipv4/ip_forward"], Token)).Trim());

        // A clean shutdown leaves nothing behind.
        await router.StopAsync();
        await AssertNoLeftoversAsync(router.Namespace);
    }

    [Fact]
    public async Task ExitNode_CarriesAllTraffic_WhileTheClientKeepsTalkingToTheCoordinator()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables", "sysctl");
        await using var lab = await MeshLab.StartAsync();
        var names = TestNames.Create();
        await using var internet = await NetNs.CreateAsync(names.Namespace("inet"), Token);
        var key = await lab.CreateKeyAsync("alice");
        var exit = await lab.AddNodeAsync("x", key, ns => ConnectBehindAsync(ns, internet, names, "198.19.2"), "--advertise-exit-node");

        // The client's underlay is reached through a default route (a router on the LAN at
        // 198.18.2.254), so switching the default into the tunnel would cut it off from the
        // coordinator and its peers unless the agent keeps them outside.
        await lab.Lan.CheckAsync(["ip", "addr", "add", "198.18.2.254/24", "dev", "br0"], Token);
        await lab.Lan.CheckAsync(["sysctl", "-qw", "net.ipv4.ip_forward=1"], Token);
        await lab.Lan.CheckAsync(["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"], Token);
        await lab.Lan.CheckAsync(["sysctl", "-qw", "net.ipv4.conf.br0.send_redirects=0"], Token);
        var client = await lab.AddNodeAsync("c", key, async ns =>
        {
            var link = (await ns.CheckAsync(["ip", "-o", "-4", "addr", "show", "to", "198.18.2.0/24"], Token)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            await ns.CheckAsync(["ip", "route", "del", "198.18.2.0/24", "dev", link], Token);
            await ns.CheckAsync(["ip", "route", "add", "198.18.2.254", "dev", link], Token);
            await ns.CheckAsync(["ip", "route", "add", "default", "via", "198.18.2.254", "dev", link], Token);
        }, "--exit-node", "x");
        await lab.WaitForFullMeshAsync();
        Assert.True((await client.PingAsync(exit.V4!, Token)).Succeeded, "c → x over the mesh");

        // Not approved yet: refused, and the client runs without an exit node.
        Assert.True(await Eventually.TryAsync(() => client.Process!.Stdout.Contains("is not an approved exit node", StringComparison.Ordinal), TimeSpan.FromSeconds(10), Token), client.Process!.Stdout);
        Assert.False((await client.Namespace.ExecAsync(["ping", "-4", "-c", "1", "-W", "2", "198.19.2.10"], Token)).Succeeded, "198.19.2.10 answered without an exit node");

        await lab.OperatorAsync("routes", "enable", "-r", await RouteIdAsync(lab, "x", "0.0.0.0/0"));
        await lab.OperatorAsync("routes", "enable", "-r", await RouteIdAsync(lab, "x", "::/0"));
        var reached = await Eventually.TryAsync(async ct => (await client.Namespace.ExecAsync(["ping", "-4", "-c", "1", "-W", "2", "198.19.2.10"], ct)).Succeeded, TimeSpan.FromSeconds(20), Token);
        Assert.True(reached, $"c → 198.19.2.10 through exit node x: no reply\n{await lab.DescribeAsync()}");
        Assert.Equal(IPAddress.Parse("198.19.2.1"), await ConnectFromAsync(client, internet, IPAddress.Parse("198.19.2.10"), 8080));

        var routes = await client.Namespace.CheckAsync(["ip", "route"], Token);
        Assert.Contains("0.0.0.0/1 dev mesh0", routes);
        Assert.Contains("128.0.0.0/1 dev mesh0", routes);
        Assert.Contains($"{MeshLab.CoordinatorAddress} via 198.18.2.254", routes);

        // Still in touch with the coordinator: a node that joins now shows up in the client's status,
        // and the client reaches it (its first packets to d may leave through the exit node before
        // d's endpoint is pinned — a one-way path that must not keep the two apart).
        var late = await lab.AddNodeAsync("d", key);
        var sees = await Eventually.TryAsync(async ct => (await client.StatusAsync(ct)).Peers.Any(p => p.Name == "d"), TimeSpan.FromSeconds(20), Token);
        Assert.True(sees, $"c does not see the new node d while using the exit node\n{await lab.DescribeAsync()}");
        var reachesLate = await Eventually.TryAsync(async ct => (await client.PingAsync(late.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(20), Token);
        Assert.True(reachesLate, $"c → d (joined late) got no reply\nc: {(await client.CliAsync(Token, "status", "--json")).Stdout}\nd: {(await late.CliAsync(Token, "status", "--json")).Stdout}\n{await lab.DescribeAsync()}");
        Assert.True((await late.PingAsync(client.V4!, Token, count: 3)).Succeeded, $"d → c got no reply\n{await lab.DescribeAsync()}");

        // Nothing left behind by either side.
        await client.StopAsync();
        var after = await client.Namespace.CheckAsync(["ip", "route"], Token);
        Assert.DoesNotContain("0.0.0.0/1", after);
        Assert.DoesNotContain($"{MeshLab.CoordinatorAddress} via", after);
        Assert.Contains("default via 198.18.2.254", after);
        await exit.StopAsync();
        await AssertNoLeftoversAsync(exit.Namespace);
    }

    /// <summary>A network only <paramref name="node"/> reaches: PREFIX.1 on its side, PREFIX.10 in <paramref name="behind"/> (which has no other route).</summary>
    private static async Task ConnectBehindAsync(NetNs node, NetNs behind, TestNames names, string prefix)
    {
        var near = names.Link(behind.Name[^3..] + "n");
        var far = names.Link(behind.Name[^3..] + "f");
        await node.CheckAsync(["ip", "link", "add", near, "type", "veth", "peer", "name", far, "netns", behind.Name], Token);
        await node.CheckAsync(["ip", "addr", "add", $"{prefix}.1/24", "dev", near], Token);
        await node.CheckAsync(["ip", "link", "set", near, "up"], Token);
        await behind.CheckAsync(["ip", "addr", "add", $"{prefix}.10/24", "dev", far], Token);
        await behind.CheckAsync(["ip", "link", "set", far, "up"], Token);
    }

    /// <summary>Opens a TCP connection from the node to a listener in <paramref name="target"/>; returns the source address the listener saw.</summary>
    private static async Task<IPAddress> ConnectFromAsync(MeshNode from, NetNs target, IPAddress address, int port)
    {
        using var listener = target.CreateSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, port));
        listener.Listen(1);
        using var client = from.Namespace.CreateSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(new IPEndPoint(address, port), timeout.Token);
        using var accepted = await listener.AcceptAsync(timeout.Token);
        return ((IPEndPoint)accepted.RemoteEndPoint!).Address;
    }

    private static async Task<string> RouteIdAsync(MeshLab lab, string node, string prefix)
    {
        using var json = JsonDocument.Parse(await lab.OperatorAsync("routes", "list", "-o", "json"));
        var route = json.RootElement.EnumerateArray().FirstOrDefault(r => r.GetProperty("node").GetString() == node && r.GetProperty("prefix").GetString() == prefix);
        Assert.True(route.ValueKind == JsonValueKind.Object, $"no route {prefix} of {node} in `routes list`: {json.RootElement}");
        return route.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task AssertNoLeftoversAsync(NetNs ns)
    {
        foreach (var tool in new[] { "iptables-save", "ip6tables-save" })
        {
            var rules = await ns.ExecAsync([tool], Token);
            Assert.DoesNotContain("mesh-", rules.Stdout);
        }

        Assert.Equal("0", (await ns.CheckAsync(["cat", "/proc/sys/net/ipv4/ip_forward"], Token)).Trim());
        Assert.Equal("0", (await ns.CheckAsync(["cat", "/proc/sys/net/ipv6/conf/all/forwarding"], Token)).Trim());
    }
}
