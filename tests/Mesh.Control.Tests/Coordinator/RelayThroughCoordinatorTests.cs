using System.Net;
using System.Net.Sockets;
using Mesh.Protocol.Relay;
using Mesh.Protocol.Stun;

namespace Mesh.Control.Tests.Coordinator;

/// <summary>The embedded relay and STUN server as the coordinator serves them: only the mesh's own nodes may relay.</summary>
public sealed class RelayThroughCoordinatorTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static Task<TestCoordinator> StartWithRelayAsync() => TestCoordinator.StartAsync(c =>
    {
        c.Derp.Server.Enabled = true;
        c.Derp.Server.StunListenAddr = "127.0.0.1:0";
    });

    [Fact]
    public async Task RegisteredNodes_ExchangePacketsThroughTheRelay()
    {
        await using var coordinator = await StartWithRelayAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(key);
        await b.RegisterAsync(key);

        var map = await a.MapAsync();
        var relayUrl = new Uri(map.RelayMap!.Regions.Single().Nodes.Single().Url);
        await using var relayA = await RelayClient.ConnectAsync(relayUrl, a.NodePrivate, cancellationToken: Token);
        await using var relayB = await RelayClient.ConnectAsync(relayUrl, b.NodePrivate, cancellationToken: Token);

        await relayA.SendAsync(b.NodeKey, new byte[] { 1, 2, 3 }, Token);
        var received = await relayB.ReceiveAsync(Token);
        Assert.Equal(RelayMessageKind.Packet, received.Kind);
        Assert.Equal(a.NodeKey, received.Peer);
        Assert.Equal(new byte[] { 1, 2, 3 }, received.Packet.ToArray());
        Assert.Equal(1, coordinator.Host.Relay!.PacketsForwarded);
    }

    [Fact]
    public async Task UnregisteredKey_IsRefusedByTheRelay()
    {
        await using var coordinator = await StartWithRelayAsync();
        using var stranger = coordinator.NewNode("stranger");
        var url = new Uri(coordinator.Url, "/derp");
        var e = await Assert.ThrowsAsync<RelayException>(async () =>
        {
            await using var client = await RelayClient.ConnectAsync(url, stranger.NodePrivate, cancellationToken: Token);
            await client.ReceiveAsync(Token);
        });
        Assert.Equal(RelayErrorCode.Unauthorized, e.Code);
    }

    [Fact]
    public async Task DeletedNode_IsDisconnectedFromTheRelay()
    {
        await using var coordinator = await StartWithRelayAsync();
        using var a = coordinator.NewNode("a");
        var id = (await a.RegisterAsync(await coordinator.CreateKeyAsync("alice"))).NodeId;
        await using var relay = await RelayClient.ConnectAsync(new Uri(coordinator.Url, "/derp"), a.NodePrivate, cancellationToken: Token);
        Assert.True(coordinator.Host.Relay!.IsConnected(a.NodeKey));

        await coordinator.Admin.DeleteNodeAsync(id, Token);

        var done = await Task.WhenAny(relay.Completion, Task.Delay(TimeSpan.FromSeconds(10), Token));
        Assert.Same(relay.Completion, done);
        Assert.False(coordinator.Host.Relay.IsConnected(a.NodeKey));
    }

    [Fact]
    public async Task DerpUrls_ExtraRelayMaps_FollowTheEmbeddedRegion_AndBadOnesAreSkipped()
    {
        static string Map(int id, string code) =>
            $$"""{"regions": [{"regionId": {{id}}, "regionCode": "{{code}}", "name": "{{code}} relays", "nodes": [{"name": "{{id}}a", "url": "https://relay-{{code}}.example.com/derp", "stunEndpoint": "relay-{{code}}.example.com:3478"}]}]}""";

        var directory = Directory.CreateTempSubdirectory("mesh-relaymaps-").FullName;
        try
        {
            // One map over HTTP, one in a file, one whose region id is the embedded relay's (999),
            // one that is not JSON, and one URL nobody answers.
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            using var http = new HttpListener();
            http.Prefixes.Add($"http://127.0.0.1:{port}/");
            http.Start();
            var serving = Task.Run(async () =>
            {
                var context = await http.GetContextAsync();
                var body = System.Text.Encoding.UTF8.GetBytes(Map(900, "eu"));
                await context.Response.OutputStream.WriteAsync(body, Token);
                context.Response.Close();
            }, Token);
            await File.WriteAllTextAsync(Path.Combine(directory, "us.json"), Map(901, "us"), Token);
            await File.WriteAllTextAsync(Path.Combine(directory, "clash.json"), Map(999, "clash"), Token);
            await File.WriteAllTextAsync(Path.Combine(directory, "broken.json"), "{regions: nope", Token);
            using var closed = new TcpListener(IPAddress.Loopback, 0);
            closed.Start();
            var closedPort = ((IPEndPoint)closed.LocalEndpoint).Port;
            closed.Stop();

            await using var coordinator = await TestCoordinator.StartAsync(c =>
            {
                c.Derp.Server.Enabled = true;
                c.Derp.Server.StunListenAddr = "127.0.0.1:0";
                c.Derp.Urls =
                [
                    $"http://127.0.0.1:{port}/map.json",
                    new Uri(Path.Combine(directory, "us.json")).ToString(),
                    new Uri(Path.Combine(directory, "clash.json")).ToString(),
                    new Uri(Path.Combine(directory, "broken.json")).ToString(),
                    $"http://127.0.0.1:{closedPort}/map.json",
                ];
            });
            await serving;
            using var node = coordinator.NewNode("n");
            await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
            var regions = (await node.MapAsync()).RelayMap!.Regions;
            Assert.Equal(["mesh", "eu", "us"], regions.Select(r => r.RegionCode));
            Assert.Equal("https://relay-eu.example.com/derp", regions[1].Nodes.Single().Url);
            Assert.Equal("relay-us.example.com:3478", regions[2].Nodes.Single().StunEndpoint);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Stun_AnswersOnBothPorts_AndTheRelayMapNamesThem()
    {
        await using var coordinator = await StartWithRelayAsync();
        using var node = coordinator.NewNode("n");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        var relayNode = (await node.MapAsync()).RelayMap!.Regions.Single().Nodes.Single();
        var port = coordinator.Host.StunPort!.Value;
        var alternate = coordinator.Host.StunAlternatePort!.Value;
        Assert.NotEqual(port, alternate);
        Assert.Equal($"127.0.0.1:{port}", relayNode.StunEndpoint);
        Assert.Equal($"127.0.0.1:{alternate}", relayNode.StunAlternateEndpoint);

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        foreach (var stun in new[] { port, alternate })
        {
            var mapped = await StunClient.QueryAsync(socket, new IPEndPoint(IPAddress.Loopback, stun), TimeSpan.FromSeconds(5), Token);
            Assert.Equal(socket.LocalEndPoint, mapped);
        }
    }

    [Fact]
    public async Task StunAlternatePortZero_OneStunEndpointInTheMap()
    {
        await using var coordinator = await TestCoordinator.StartAsync(c =>
        {
            c.Derp.Server.Enabled = true;
            c.Derp.Server.StunListenAddr = "127.0.0.1:0";
            c.Derp.Server.StunAlternatePort = 0;
        });
        using var node = coordinator.NewNode("n");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        var relayNode = (await node.MapAsync()).RelayMap!.Regions.Single().Nodes.Single();
        Assert.Equal($"127.0.0.1:{coordinator.Host.StunPort}", relayNode.StunEndpoint);
        Assert.Null(relayNode.StunAlternateEndpoint);
        Assert.Null(coordinator.Host.StunAlternatePort);
    }

    [Fact]
    public async Task StunAlternatePortTaken_StartFailsNamingTheKey()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        var directory = Directory.CreateTempSubdirectory("mesh-coord-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<Mesh.Control.Configuration.ConfigException>(() => TestCoordinator.StartAsync(
                c =>
                {
                    c.Derp.Server.Enabled = true;
                    c.Derp.Server.StunListenAddr = "127.0.0.1:0";
                    c.Derp.Server.StunAlternatePort = port;
                },
                directory));
            Assert.StartsWith($"derp.server.stun_alternate_port {port}: STUN cannot listen on udp 127.0.0.1:{port}", e.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
