using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Control.Stun;
using Mesh.Protocol.Stun;

namespace Mesh.Control.Tests.Stun;

public class StunServerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static StunServer StartOn(params IPAddress[] addresses)
    {
        var options = new StunServerOptions();
        foreach (var address in addresses)
        {
            options.Endpoints.Add(new IPEndPoint(address, 0));
        }

        return StunServer.Start(options);
    }

    private static Socket ClientSocket(IPAddress loopback)
    {
        var socket = new Socket(loopback.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(loopback, 0));
        return socket;
    }

    [Fact]
    public async Task Query_IPv4Loopback_ReturnsTheClientsOwnEndpoint()
    {
        await using var server = StartOn(IPAddress.Loopback);
        using var client = ClientSocket(IPAddress.Loopback);

        var mapped = await StunClient.QueryAsync(client, server.LocalEndPoints[0], Timeout, TestContext.Current.CancellationToken);

        Assert.Equal(client.LocalEndPoint, mapped);
        Assert.Equal(1, server.RequestsAnswered);
    }

    [Fact]
    public async Task Query_IPv6Loopback_ReturnsTheClientsOwnEndpoint()
    {
        await using var server = StartOn(IPAddress.Loopback, IPAddress.IPv6Loopback);
        using var client = ClientSocket(IPAddress.IPv6Loopback);

        var mapped = await StunClient.QueryAsync(client, server.LocalEndPoints[1], Timeout, TestContext.Current.CancellationToken);

        Assert.Equal(client.LocalEndPoint, mapped);
        Assert.Equal(AddressFamily.InterNetworkV6, server.LocalEndPoints[1].AddressFamily);
    }

    [Fact]
    public async Task Server_GarbageThenRequest_IgnoresGarbageAndStillAnswers()
    {
        await using var server = StartOn(IPAddress.Loopback);
        using var client = ClientSocket(IPAddress.Loopback);
        var target = server.LocalEndPoints[0];
        var ct = TestContext.Current.CancellationToken;

        var response = new byte[StunMessage.MaxBindingResponseSize];
        var responseLength = StunMessage.WriteBindingResponse(response, StunTransactionId.NewId(), new IPEndPoint(IPAddress.Loopback, 1));
        var truncated = new byte[StunMessage.BindingRequestSize];
        StunMessage.WriteBindingRequest(truncated, StunTransactionId.NewId());
        byte[][] garbage =
        [
            [],
            [0x01],
            new byte[148],
            truncated[..^1],
            response[..responseLength],
            [.. Enumerable.Range(0, 1400).Select(i => (byte)i)],
        ];
        foreach (var datagram in garbage)
        {
            await client.SendToAsync(datagram, SocketFlags.None, target, ct);
        }

        var mapped = await StunClient.QueryAsync(client, target, Timeout, ct);

        Assert.Equal(client.LocalEndPoint, mapped);
        Assert.Equal(1, server.RequestsAnswered);
        var deadline = Stopwatch.StartNew();
        while (server.DatagramsIgnored < garbage.Length && deadline.Elapsed < Timeout)
        {
            await Task.Delay(20, ct);
        }

        Assert.Equal(garbage.Length, server.DatagramsIgnored);
    }

    [Fact]
    public async Task Query_NobodyListening_TimesOut()
    {
        using var silent = ClientSocket(IPAddress.Loopback);
        using var client = ClientSocket(IPAddress.Loopback);

        await Assert.ThrowsAsync<TimeoutException>(() =>
            StunClient.QueryAsync(client, silent.LocalEndPoint!, TimeSpan.FromMilliseconds(300), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Server_ManyClients_AnswersEach()
    {
        await using var server = StartOn(IPAddress.Loopback);
        var ct = TestContext.Current.CancellationToken;
        var sockets = Enumerable.Range(0, 20).Select(_ => ClientSocket(IPAddress.Loopback)).ToArray();
        try
        {
            var results = await Task.WhenAll(sockets.Select(s => StunClient.QueryAsync(s, server.LocalEndPoints[0], Timeout, ct)));
            for (var i = 0; i < sockets.Length; i++)
            {
                Assert.Equal(sockets[i].LocalEndPoint, results[i]);
            }
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task Dispose_Twice_IsHarmless()
    {
        var server = StartOn(IPAddress.Loopback);
        await server.DisposeAsync();
        await server.DisposeAsync();
    }
}
