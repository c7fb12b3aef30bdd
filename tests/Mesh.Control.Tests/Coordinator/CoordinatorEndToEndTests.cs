using System.Net;
using System.Net.Http.Json;
using Mesh.Control.Admin;
using Mesh.Protocol.Control;

namespace Mesh.Control.Tests.Coordinator;

/// <summary>
/// The coordinator as nodes see it: a real server on loopback, real control-channel clients, and
/// the database on disk. Registration, addresses, map streams, policy, routes and restarts.
/// </summary>
public sealed class CoordinatorEndToEndTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Register_WithPreAuthKey_GetsAddressesFromThePrefixes()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var node = coordinator.NewNode("web");
        var response = await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));

        Assert.True(response.Authorized);
        Assert.Equal("alice", response.User);
        Assert.Equal("web", response.Name);
        Assert.Equal(2, response.Addresses.Count);
        Assert.True(IPNetwork.Parse("100.64.0.0/10").Contains(IPAddress.Parse(response.Addresses[0].Split('/')[0])));
        Assert.True(IPNetwork.Parse("fd7a:115c:a1e0::/48").Contains(IPAddress.Parse(response.Addresses[1].Split('/')[0])));
    }

    [Fact]
    public async Task SingleUseKey_TenConcurrentRegistrations_ExactlyOneNode()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice");
        var nodes = Enumerable.Range(0, 10).Select(i => coordinator.NewNode($"n{i}")).ToList();
        var results = await Task.WhenAll(nodes.Select(async n =>
        {
            try
            {
                return (await n.RegisterAsync(key)).Authorized;
            }
            catch (ControlRequestException e) when (e.Status == 401)
            {
                Assert.Contains("already used", e.Message);
                return false;
            }
        }));

        Assert.Equal(1, results.Count(r => r));
        Assert.Single(await coordinator.Admin.ListNodesAsync(null, Token));
        nodes.ForEach(n => n.Dispose());
    }

    [Fact]
    public async Task BadKeys_AreRefusedWithAReason_AndWriteNothing()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var node = coordinator.NewNode("x");

        var unknown = await Assert.ThrowsAsync<ControlRequestException>(() => node.RegisterAsync("mskey-auth-AAAAAAAAAAAA-" + new string('b', 48)));
        Assert.Equal(401, unknown.Status);
        Assert.Contains("unknown", unknown.Message);

        var missing = await Assert.ThrowsAsync<ControlRequestException>(() => node.RegisterAsync(null));
        Assert.Contains("auth key is required", missing.Message);

        var key = await coordinator.CreateKeyAsync("alice");
        var prefix = (await coordinator.Admin.ListPreAuthKeysAsync("alice", Token)).Single().Prefix;
        await coordinator.Admin.ExpirePreAuthKeyAsync(prefix, Token);
        var expired = await Assert.ThrowsAsync<ControlRequestException>(() => node.RegisterAsync(key));
        Assert.Contains("expired", expired.Message);

        Assert.Empty(await coordinator.Admin.ListNodesAsync(null, Token));
    }

    [Fact]
    public async Task SameMachine_RegistersAgain_KeepsItsAddresses()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var node = coordinator.NewNode("laptop");
        var first = await node.RegisterAsync(key);

        node.NodeKey = coordinator.NewNode("other").NodeKey; // a fresh node key, same machine
        node.Reconnect();
        var second = await node.RegisterAsync(key);

        Assert.Equal(first.NodeId, second.NodeId);
        Assert.Equal(first.Addresses, second.Addresses);
        Assert.Single(await coordinator.Admin.ListNodesAsync(null, Token));
    }

    [Fact]
    public async Task Reconnect_RightAfterAHandshake_IsRetriedAndSucceeds()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var node = coordinator.NewNode("quick");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));

        // A handshake within the timestamp granularity of the previous one is answered 429; the client waits and retries.
        for (var i = 0; i < 5; i++)
        {
            node.Reconnect();
            Assert.Equal("quick", (await node.MapAsync()).Self!.Name);
        }
    }

    [Fact]
    public async Task MapStream_NodeJoiningAndLeaving_ReachesConnectedPeers()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        await a.RegisterAsync(key);
        await using var watchA = new StreamWatcher(a, a.MapRequest("198.18.0.1:41641"));
        await watchA.WaitAsync(w => w.Self is not null, "A's first full map");
        Assert.Empty(watchA.Peers);

        using var b = coordinator.NewNode("b");
        var registered = await b.RegisterAsync(key);
        await watchA.WaitAsync(w => w.Peers.ContainsKey(registered.NodeId), "B in A's map");

        await using (var watchB = new StreamWatcher(b, b.MapRequest("198.18.0.2:41641")))
        {
            await watchA.WaitAsync(w => w.Peers[registered.NodeId] is { Online: true } p && p.Endpoints.Contains("198.18.0.2:41641"), "B online with its endpoint");
            await watchB.WaitAsync(w => w.Peers.Values.Any(p => p.Name == "a" && p.Endpoints.Contains("198.18.0.1:41641")), "A in B's map with its endpoint");
        }

        await watchA.WaitAsync(w => !w.Peers[registered.NodeId].Online, "B offline after its stream closed");
        await coordinator.Admin.DeleteNodeAsync(registered.NodeId, Token);
        await watchA.WaitAsync(w => !w.Peers.ContainsKey(registered.NodeId), "B removed from A's map");
    }

    [Fact]
    public async Task PolicyChange_ReachesStreams_PeersAndFilters()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var aliceKey = await coordinator.CreateKeyAsync("alice", reusable: true);
        var bobKey = await coordinator.CreateKeyAsync("bob", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(aliceKey);
        var bId = (await b.RegisterAsync(bobKey)).NodeId;
        await using var watchA = new StreamWatcher(a, a.MapRequest());
        await watchA.WaitAsync(w => w.Peers.ContainsKey(bId), "B visible under the default allow-all policy");

        // Only bob may reach alice on 5432: alice's filter says so, and alice still sees bob (bob can reach her).
        await coordinator.Admin.SetPolicyAsync("""
            // HuJSON: comments and trailing commas
            {"acls": [{"action": "accept", "src": ["bob@example.com"], "dst": ["alice@example.com:5432"]},],}
            """, Token);
        await watchA.WaitAsync(w => w.Filter is { Count: > 0 } f && f.Any(r => r.DstPorts.Any(d => d.Ports.First == 5432)), "A's filter allows 5432");

        // Nobody may reach anybody: bob disappears from alice's map, and her filter is empty.
        await coordinator.Admin.SetPolicyAsync("""{"acls": []}""", Token);
        await watchA.WaitAsync(w => !w.Peers.ContainsKey(bId) && w.Filter is { Count: 0 }, "B gone and an empty filter");
    }

    [Fact]
    public async Task InvalidPolicy_IsRefused_AndTheLastGoodOneStays()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        await coordinator.Admin.SetPolicyAsync("""{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}]}""", Token);
        var e = await Assert.ThrowsAsync<AdminException>(() => coordinator.Admin.SetPolicyAsync("""{"acls": [{"action": "accept", "src": ["group:nope"], "dst": ["*:*"]}]}""", Token));
        Assert.Equal(400, e.Status);
        Assert.Contains("group:nope", e.Message);
        Assert.Contains("*:22", (await coordinator.Admin.GetPolicyAsync(Token)).Policy);
    }

    [Fact]
    public async Task Routes_ApprovedRoute_FlowsIntoPeersAllowedIps()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var router = coordinator.NewNode("router");
        using var client = coordinator.NewNode("client");
        var routerId = (await router.RegisterAsync(key)).NodeId;
        await client.RegisterAsync(key);
        await using var watch = new StreamWatcher(client, client.MapRequest());

        await router.Client.MapAsync(router.MapRequest() with { Hostinfo = new Hostinfo { Hostname = "router", RoutableIps = ["10.20.0.0/16"] } }, Token);
        var route = (await coordinator.Admin.ListRoutesAsync(Token)).Single();
        Assert.Equal("10.20.0.0/16", route.Prefix);
        Assert.False(route.Enabled);
        await watch.WaitAsync(w => w.Peers.ContainsKey(routerId), "router visible");
        Assert.DoesNotContain("10.20.0.0/16", watch.Peers[routerId].AllowedIps);

        await coordinator.Admin.SetRouteEnabledAsync(route.Id, true, Token);
        await watch.WaitAsync(w => w.Peers[routerId].AllowedIps.Contains("10.20.0.0/16"), "approved route in the router's allowed IPs");
    }

    [Fact]
    public async Task AutoApprovers_ApproveRoutesOfTaggedRouter()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        await coordinator.Admin.CreateUserAsync("alice", "alice@example.com", null, Token);
        await coordinator.Admin.SetPolicyAsync("""
            {
              "tagOwners": {"tag:router": ["alice@example.com"]},
              "autoApprovers": {"routes": {"10.0.0.0/8": ["tag:router"]}, "exitNode": ["tag:router"]},
              "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]
            }
            """, Token);
        var key = await coordinator.CreateKeyAsync("alice", false, false, null, "tag:router");
        using var router = coordinator.NewNode("router");
        await router.RegisterAsync(key);
        await router.Client.MapAsync(router.MapRequest() with { Hostinfo = new Hostinfo { Hostname = "router", RoutableIps = ["10.1.0.0/16", "192.168.9.0/24"], AdvertiseExitNode = true } }, Token);

        var routes = (await coordinator.Admin.ListRoutesAsync(Token)).ToDictionary(r => r.Prefix);
        Assert.True(routes["10.1.0.0/16"].Enabled);
        Assert.False(routes["192.168.9.0/24"].Enabled);
        Assert.True(routes["0.0.0.0/0"].Enabled);
    }

    [Fact]
    public async Task Restart_LosesNothing_AndNodesReconnect()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var node = coordinator.NewNode("db");
        var registered = await node.RegisterAsync(key);
        await coordinator.Admin.SetPolicyAsync("""{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:5432"]}]}""", Token);
        var controlKey = coordinator.Host.Control.PublicKey;

        await coordinator.RestartAsync();

        Assert.Equal(controlKey, coordinator.Host.Control.PublicKey);
        var nodes = await coordinator.Admin.ListNodesAsync(null, Token);
        Assert.Equal(registered.Addresses.Select(a => a.Split('/')[0]), Assert.Single(nodes).IpAddresses);
        Assert.Contains("5432", (await coordinator.Admin.GetPolicyAsync(Token)).Policy);
        Assert.Single(await coordinator.Admin.ListPreAuthKeysAsync(null, Token));

        // The old session is gone; the client handshakes again by itself.
        var map = await node.MapAsync();
        Assert.Equal(registered.NodeId, map.Self!.Id);
    }

    [Fact]
    public async Task LastSeen_OfTheLastMapRequest_ShownAndKeptAcrossARestart()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var node = coordinator.NewNode("db");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        await node.MapAsync("198.18.0.1:41641");

        // The second request changes nothing but when the node was seen.
        var before = DateTimeOffset.UtcNow;
        await node.MapAsync("198.18.0.1:41641");
        var after = DateTimeOffset.UtcNow;
        Assert.InRange(Assert.Single(await coordinator.Admin.ListNodesAsync(null, Token)).LastSeen!.Value, before, after);

        await coordinator.RestartAsync();

        var view = Assert.Single(await coordinator.Admin.ListNodesAsync(null, Token));
        Assert.False(view.Online);
        Assert.InRange(view.LastSeen!.Value, before, after);
    }

    [Fact]
    public async Task Map_WithAnotherMachinesNodeKey_Refused()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(key);
        await b.RegisterAsync(key);

        // B's machine asks for A's node: a node can only act as itself.
        var e = await Assert.ThrowsAsync<ControlRequestException>(() => b.Client.MapAsync(a.MapRequest(), Token));
        Assert.Equal(403, e.Status);
    }

    [Fact]
    public async Task ExpiredNode_DropsOutOfPeersMaps_AndMustReRegister()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(key);
        var bId = (await b.RegisterAsync(key)).NodeId;
        await using var watch = new StreamWatcher(a, a.MapRequest());
        await watch.WaitAsync(w => w.Peers.ContainsKey(bId), "B visible");

        await coordinator.Admin.ExpireNodeAsync(bId, null, Token);

        await watch.WaitAsync(w => !w.Peers.ContainsKey(bId), "expired B removed from A's map");
        var e = await Assert.ThrowsAsync<ControlRequestException>(() => b.MapAsync());
        Assert.Contains("expired", e.Message);
        Assert.True((await b.RegisterAsync(key)).Authorized);
    }

    [Fact]
    public async Task MalformedRequests_Get4xx_AndNothingIsWritten()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient { BaseAddress = coordinator.Url };

        var garbage = await http.PostAsync(ControlPaths.Handshake, new ByteArrayContent(new byte[148]), Token);
        Assert.Equal(HttpStatusCode.BadRequest, garbage.StatusCode);
        Assert.Contains("handshake refused", (await garbage.Content.ReadFromJsonAsync<ControlError>(Token))!.Error);

        var noSession = await http.PostAsync(ControlPaths.Register, new ByteArrayContent(new byte[64]), Token);
        Assert.Equal(HttpStatusCode.Unauthorized, noSession.StatusCode);

        var huge = await http.PostAsync(ControlPaths.Map, new ByteArrayContent(new byte[300 * 1024]), Token);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);

        using var node = coordinator.NewNode("bad-endpoints");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        var bad = await Assert.ThrowsAsync<ControlRequestException>(() => node.MapAsync("not-an-endpoint"));
        Assert.Equal(400, bad.Status);
        Assert.Contains("not-an-endpoint", bad.Message);
        Assert.Empty((await coordinator.Admin.ListNodesAsync(null, Token)).Single().AdvertisedRoutes);
    }
}
