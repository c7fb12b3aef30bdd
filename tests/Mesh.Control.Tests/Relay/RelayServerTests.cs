using System.Net;
using System.Text;
using Mesh.Protocol;
using Mesh.Protocol.Relay;
using Mesh.WireGuard;

namespace Mesh.Control.Tests.Relay;

public class RelayServerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<RelayMessage> ReceiveWithin(RelayClient client, TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(10));
        return await client.ReceiveAsync(cts.Token);
    }

    [Fact]
    public async Task TwoClients_ExchangePacketsBothWays()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        var b = RelayTestNode.Create();
        await using var clientA = await host.ConnectAsync(a);
        await using var clientB = await host.ConnectAsync(b);
        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 2));
        Assert.Equal(host.Server.PublicKey, clientA.RelayKey);

        await clientA.SendAsync(b.Key, "hello b"u8.ToArray(), Ct);
        var atB = await ReceiveWithin(clientB);
        Assert.Equal(RelayMessageKind.Packet, atB.Kind);
        Assert.Equal(a.Key, atB.Peer);
        Assert.Equal("hello b", Encoding.UTF8.GetString(atB.Packet.Span));

        await clientB.SendAsync(a.Key, "hello a"u8.ToArray(), Ct);
        var atA = await ReceiveWithin(clientA);
        Assert.Equal(b.Key, atA.Peer);
        Assert.Equal("hello a", Encoding.UTF8.GetString(atA.Packet.Span));

        Assert.True(await Eventually.HoldsAsync(() => host.Server.PacketsForwarded == 2));
    }

    [Fact]
    public async Task ManyPackets_ArriveInOrderAndIntact()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        var b = RelayTestNode.Create();
        await using var clientA = await host.ConnectAsync(a);
        await using var clientB = await host.ConnectAsync(b);

        const int count = 100; // below the default queue capacity, so none may be dropped
        for (var i = 0; i < count; i++)
        {
            var packet = new byte[1 + (i * 97 % 1400)];
            packet[0] = (byte)i;
            await clientA.SendAsync(b.Key, packet, Ct);
        }

        for (var i = 0; i < count; i++)
        {
            var message = await ReceiveWithin(clientB);
            Assert.Equal(1 + (i * 97 % 1400), message.Packet.Length);
            Assert.Equal((byte)i, message.Packet.Span[0]);
        }
    }

    [Fact]
    public async Task UnauthorizedKey_IsRefusedWithUnauthorized()
    {
        var member = RelayTestNode.Create();
        var stranger = RelayTestNode.Create();
        await using var host = await RelayHost.StartAsync(key => key == member.Key);

        var refused = await Assert.ThrowsAsync<RelayException>(() => host.ConnectAsync(stranger));

        Assert.Equal(RelayErrorCode.Unauthorized, refused.Code);
        Assert.Contains(stranger.Key.ToString(), refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, host.Server.ConnectedClients);
        Assert.Equal(1, host.Server.ConnectionsRefused);
        await using var ok = await host.ConnectAsync(member);
        Assert.Equal(1, host.Server.ConnectedClients);
    }

    [Fact]
    public async Task ClientWithoutThePrivateKey_IsRefusedWithBadProof()
    {
        var victim = RelayTestNode.Create();
        var impostor = RelayTestNode.Create();
        await using var host = await RelayHost.StartAsync();

        await using var raw = await RawRelayConnection.HandshakeAsync(host, claimed: victim, prover: impostor);
        var (code, message) = await raw.ExpectErrorAsync();

        Assert.Equal(RelayErrorCode.BadProof, code);
        Assert.Contains("does not verify", message, StringComparison.Ordinal);
        Assert.Equal(0, host.Server.ConnectedClients);
        Assert.False(host.Server.IsConnected(victim.Key));
    }

    [Fact]
    public async Task SendToAbsentPeer_YieldsPeerGone()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        var absent = RelayTestNode.Create();
        await using var clientA = await host.ConnectAsync(a);

        await clientA.SendAsync(absent.Key, new byte[] { 1, 2, 3 }, Ct);
        var message = await ReceiveWithin(clientA);

        Assert.Equal(RelayMessageKind.PeerGone, message.Kind);
        Assert.Equal(absent.Key, message.Peer);
        Assert.Equal(RelayPeerGoneReason.NotConnected, message.Reason);
        Assert.Equal(1, host.Server.PacketsToAbsentPeers);
    }

    [Fact]
    public async Task PeerThatDisconnected_YieldsPeerGone()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        var b = RelayTestNode.Create();
        await using var clientA = await host.ConnectAsync(a);
        var clientB = await host.ConnectAsync(b);
        await clientB.DisposeAsync();
        Assert.True(await Eventually.HoldsAsync(() => !host.Server.IsConnected(b.Key)));

        await clientA.SendAsync(b.Key, new byte[] { 1 }, Ct);

        Assert.Equal(RelayMessageKind.PeerGone, (await ReceiveWithin(clientA)).Kind);
    }

    [Fact]
    public async Task SlowClient_QueueStaysBounded_AndDropsAreCounted()
    {
        const int capacity = 16;
        await using var host = await RelayHost.StartAsync(configure: o => o.SendQueueCapacity = capacity);
        var fast = RelayTestNode.Create();
        var slow = RelayTestNode.Create();
        await using var sender = await host.ConnectAsync(fast);
        await using var sluggard = await RawRelayConnection.HandshakeAsync(host, slow);
        Assert.Equal(RelayFrameType.ServerInfo, (await sluggard.ReceiveAsync()).Type);
        // From here on the slow client reads nothing: socket buffers fill, then its queue on the relay.

        var packet = new byte[16 * 1024];
        var maxDepth = 0;
        for (var sent = 0; host.Server.PacketsDropped < 1000 && sent < 20_000; sent++)
        {
            await sender.SendAsync(slow.Key, packet, Ct);
            maxDepth = Math.Max(maxDepth, host.Server.QueueDepth(slow.Key));
            Assert.True(host.Server.QueuedFrames <= capacity, $"{host.Server.QueuedFrames} frames queued, capacity {capacity}");
        }

        Assert.True(host.Server.PacketsDropped >= 1000, $"only {host.Server.PacketsDropped} drops");
        Assert.InRange(maxDepth, 1, capacity);
        Assert.True(host.Server.IsConnected(fast.Key));
        Assert.True(host.Server.IsConnected(slow.Key));

        // The fast client is not slowed or starved meanwhile: it still gets its own answers.
        Assert.True((await sender.PingAsync(Ct)) < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task MalformedFrame_ClosesOnlyThatConnection()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        var b = RelayTestNode.Create();
        var bad = RelayTestNode.Create();
        await using var clientA = await host.ConnectAsync(a);
        await using var clientB = await host.ConnectAsync(b);
        await using var raw = await RawRelayConnection.HandshakeAsync(host, bad);
        Assert.Equal(RelayFrameType.ServerInfo, (await raw.ReceiveAsync()).Type);
        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 3));

        // The length field says 100 bytes; the message carries 3.
        await raw.SendAsync([(byte)RelayFrameType.SendPacket, 0, 0, 0, 100, 1, 2, 3]);

        var (code, _) = await raw.ExpectErrorAsync();
        Assert.Equal(RelayErrorCode.ProtocolError, code);
        Assert.Equal((RelayFrameType)0, (await raw.ReceiveAsync()).Type); // then the close
        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 2));

        await clientA.SendAsync(b.Key, new byte[] { 42 }, Ct);
        Assert.Equal(42, (await ReceiveWithin(clientB)).Packet.Span[0]);
    }

    [Theory]
    [InlineData(new byte[] { 0x02, 0, 0, 0, 0 })] // ClientInfo again, empty
    [InlineData(new byte[] { 0x05, 0, 0, 0, 0 })] // RecvPacket is server → client only
    [InlineData(new byte[] { 0x04, 0, 0, 0, 1, 9 })] // SendPacket shorter than a key
    [InlineData(new byte[] { 0x7F, 0, 0, 0, 0 })] // unknown type
    [InlineData(new byte[] { 0x07, 0, 0, 0, 0 })] // Ping without its 8 bytes
    [InlineData(new byte[] { 0x06 })] // shorter than a header
    public async Task ProtocolViolation_GetsProtocolErrorAndClose(byte[] frame)
    {
        await using var host = await RelayHost.StartAsync();
        await using var raw = await RawRelayConnection.HandshakeAsync(host, RelayTestNode.Create());
        Assert.Equal(RelayFrameType.ServerInfo, (await raw.ReceiveAsync()).Type);

        await raw.SendAsync(frame);

        Assert.Equal(RelayErrorCode.ProtocolError, (await raw.ExpectErrorAsync()).Code);
        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 0));
    }

    [Fact]
    public async Task OversizedMessage_GetsProtocolErrorAndClose()
    {
        await using var host = await RelayHost.StartAsync();
        await using var raw = await RawRelayConnection.HandshakeAsync(host, RelayTestNode.Create());
        Assert.Equal(RelayFrameType.ServerInfo, (await raw.ReceiveAsync()).Type);

        await raw.SendAsync(new byte[RelayFrames.MaxFrameSize + 1]);

        Assert.Equal(RelayErrorCode.ProtocolError, (await raw.ExpectErrorAsync()).Code);
        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 0));
    }

    [Fact]
    public async Task GarbageInsteadOfClientInfo_IsRefused()
    {
        await using var host = await RelayHost.StartAsync();
        await using var raw = await RawRelayConnection.OpenAsync(host);
        Assert.Equal(RelayFrameType.ServerKey, (await raw.ReceiveAsync()).Type);

        await raw.SendAsync([1, 2, 3, 4, 5, 6, 7]);

        Assert.Equal(RelayErrorCode.ProtocolError, (await raw.ExpectErrorAsync()).Code);
        Assert.Equal(1, host.Server.ConnectionsRefused);
    }

    [Fact]
    public async Task SilentClient_IsRefusedAfterHandshakeTimeout()
    {
        await using var host = await RelayHost.StartAsync(configure: o => o.HandshakeTimeout = TimeSpan.FromMilliseconds(200));
        await using var raw = await RawRelayConnection.OpenAsync(host);
        Assert.Equal(RelayFrameType.ServerKey, (await raw.ReceiveAsync()).Type);

        Assert.Equal(RelayErrorCode.Timeout, (await raw.ExpectErrorAsync()).Code);
    }

    [Fact]
    public async Task NewerConnection_ReplacesTheOlder()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        var b = RelayTestNode.Create();
        await using var first = await host.ConnectAsync(a);
        await using var second = await host.ConnectAsync(a);
        await using var clientB = await host.ConnectAsync(b);

        var ended = await Assert.ThrowsAsync<RelayException>(() => first.Completion.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(RelayErrorCode.Replaced, ended.Code);

        await clientB.SendAsync(a.Key, new byte[] { 7 }, Ct);
        Assert.Equal(7, (await ReceiveWithin(second)).Packet.Span[0]);
        Assert.Equal(2, host.Server.ConnectedClients);
    }

    [Fact]
    public async Task Disconnect_ClosesTheClientWithTheReason()
    {
        await using var host = await RelayHost.StartAsync();
        var a = RelayTestNode.Create();
        await using var client = await host.ConnectAsync(a);

        Assert.True(host.Server.Disconnect(a.Key, "node deleted"));

        var ended = await Assert.ThrowsAsync<RelayException>(() => client.Completion.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(RelayErrorCode.Disconnected, ended.Code);
        Assert.Contains("node deleted", ended.Message, StringComparison.Ordinal);
        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 0));
        await Assert.ThrowsAsync<RelayException>(async () => await client.ReceiveAsync(Ct));
    }

    [Fact]
    public async Task Ping_IsAnswered()
    {
        await using var host = await RelayHost.StartAsync();
        await using var client = await host.ConnectAsync(RelayTestNode.Create());

        var rtt = await client.PingAsync(Ct);

        Assert.True(rtt < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task IdleClient_ReceivesKeepAlives()
    {
        await using var host = await RelayHost.StartAsync(configure: o => o.KeepAliveInterval = TimeSpan.FromMilliseconds(100));
        await using var raw = await RawRelayConnection.HandshakeAsync(host, RelayTestNode.Create());
        var (type, payload) = await raw.ReceiveAsync();
        Assert.Equal(RelayFrameType.ServerInfo, type);
        Assert.True(RelayFrames.TryParseServerInfo(payload, out _));

        Assert.Equal(RelayFrameType.KeepAlive, (await raw.ReceiveAsync()).Type);
        Assert.Equal(RelayFrameType.KeepAlive, (await raw.ReceiveAsync()).Type);
    }

    [Fact]
    public async Task PinnedRelayKeyMismatch_IsRefusedByTheClient()
    {
        await using var host = await RelayHost.StartAsync();
        var options = new RelayClientOptions { ExpectedRelayKey = new NoisePublicKey(new byte[32]) };

        var refused = await Assert.ThrowsAsync<RelayException>(() => host.ConnectAsync(RelayTestNode.Create(), options));

        Assert.Equal(RelayErrorCode.BadProof, refused.Code);
        var pinned = new RelayClientOptions { ExpectedRelayKey = host.Server.PublicKey };
        await using var ok = await host.ConnectAsync(RelayTestNode.Create(), pinned);
    }

    [Fact]
    public async Task PlainHttpRequest_GetsUpgradeRequired()
    {
        await using var host = await RelayHost.StartAsync();
        using var http = new HttpClient();

        using var response = await http.GetAsync(host.Url, Ct);

        Assert.Equal(HttpStatusCode.UpgradeRequired, response.StatusCode);
    }

    [Fact]
    public async Task HostStopping_TellsClientsShuttingDown()
    {
        var host = await RelayHost.StartAsync();
        await using var client = await host.ConnectAsync(RelayTestNode.Create());

        var stopping = host.DisposeAsync().AsTask();
        var ended = await Assert.ThrowsAsync<RelayException>(() => client.Completion.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(RelayErrorCode.ShuttingDown, ended.Code);
    }

    [Fact]
    public async Task HundredClients_Concurrently_EachReachesItsNeighbour()
    {
        const int count = 100;
        await using var host = await RelayHost.StartAsync();
        var nodes = Enumerable.Range(0, count).Select(_ => RelayTestNode.Create()).ToArray();
        var clients = await Task.WhenAll(nodes.Select(n => host.ConnectAsync(n)));
        try
        {
            Assert.Equal(count, host.Server.ConnectedClients);
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                var next = nodes[(i + 1) % count].Key;
                for (var p = 0; p < 10; p++)
                {
                    await clients[i].SendAsync(next, BitConverter.GetBytes((i * 100) + p), Ct);
                }
            }));

            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                var previous = (i + count - 1) % count;
                for (var p = 0; p < 10; p++)
                {
                    var message = await ReceiveWithin(clients[i]);
                    Assert.Equal(nodes[previous].Key, message.Peer);
                    Assert.Equal((previous * 100) + p, BitConverter.ToInt32(message.Packet.Span));
                }
            }));

            Assert.True(await Eventually.HoldsAsync(() => host.Server.PacketsForwarded == count * 10));
            Assert.Equal(0, host.Server.PacketsDropped);
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        }

        Assert.True(await Eventually.HoldsAsync(() => host.Server.ConnectedClients == 0));
    }
}
