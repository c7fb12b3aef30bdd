using System.Net;
using System.Net.Sockets;
using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Interop;

/// <summary>
/// A running <c>mesh-sidecar wg</c> under change and abuse: reconfigured live with the real <c>wg</c>,
/// fed garbage on its UDP port and its UAPI socket, and keeping a peer warm with persistent
/// keepalives — while wireguard-go on the other side checks that the tunnel still works.
/// </summary>
[Trait("Category", "Interop")]
public sealed class LiveDeviceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RandomDatagrams_AtOurUdpPort_TunnelKeepsWorking()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);

        // Garbage from the peer's namespace: random lengths, and the first byte set to each
        // WireGuard message type so every parser is reached, including a live receiver index.
        var random = new Random(1234);
        using var socket = pair.Underlay.B.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var target = new IPEndPoint(Underlay.AddressA, TunnelPair.OurPort);
        var sizes = new[] { 0, 1, 3, 4, 15, 16, 31, 32, 33, 63, 64, 65, 91, 92, 93, 147, 148, 149, 1400, 1500 };
        for (var i = 0; i < 4000; i++)
        {
            var datagram = new byte[i < sizes.Length * 20 ? sizes[i % sizes.Length] : random.Next(0, 1600)];
            random.NextBytes(datagram);
            if (datagram.Length >= 4)
            {
                datagram[0] = (byte)(i % 5);
                datagram[1] = datagram[2] = datagram[3] = 0;
            }

            await socket.SendToAsync(datagram, SocketFlags.None, target, Token);
        }

        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);
        Assert.Single((await pair.Ours.DumpAsync(Token)).Peers);
    }

    [Fact]
    public async Task WgSet_OnOurInterface_ChangesPeersLive()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        var theirs = pair.Theirs.PublicKey;

        // Add a prefix: it shows up, the old ones stay.
        (await pair.Ours.WgAsync(["set", pair.Ours.Interface, "peer", theirs, "allowed-ips", "100.64.0.2/32,fd7a:115c:a1e0::2/128,100.64.7.0/24"], Token)).EnsureSuccess();
        var peer = (await pair.Ours.DumpAsync(Token)).Peer(theirs);
        Assert.Contains("100.64.7.0/24", peer.AllowedIps);

        // Remove the peer: the tunnel stops.
        (await pair.Ours.WgAsync(["set", pair.Ours.Interface, "peer", theirs, "remove"], Token)).EnsureSuccess();
        Assert.Empty((await pair.Ours.DumpAsync(Token)).Peers);
        Assert.False(await pair.TryPingAsync(pair.Ours, TunnelPair.TheirV4, Token, TimeSpan.FromSeconds(2)));

        // Add it back with `wg set`: a fresh handshake, and traffic flows both ways again.
        (await pair.Ours.WgAsync(["set", pair.Ours.Interface, "peer", theirs, "allowed-ips", "100.64.0.2/32", "endpoint", $"{Underlay.AddressB}:51821"], Token)).EnsureSuccess();
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);
    }

    [Fact]
    public async Task MalformedUapiRequests_AreRefused_DeviceKeepsRunning()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);

        var bad = await pair.Ours.WgAsync(["set", pair.Ours.Interface, "peer", "not-a-key", "allowed-ips", "100.64.9.0/24"], Token);
        Assert.False(bad.Succeeded);

        // Raw garbage straight at the socket.
        foreach (var request in new[] { "set=1\nprivate_key=zz\n\n", "get=1\nextra\n\n", "set=1\nlisten_port=99999\n\n", new string('x', 100_000) + "\n\n", "\0\0\0\n\n" })
        {
            // The server answers with an errno or closes the connection (a reset, when it stops
            // reading an oversized request); either is a refusal. It must not go down.
            using var uapi = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await uapi.ConnectAsync(new UnixDomainSocketEndPoint(pair.Ours.SocketPath), Token);
            try
            {
                await uapi.SendAsync(System.Text.Encoding.ASCII.GetBytes(request), SocketFlags.None, Token);
                uapi.Shutdown(SocketShutdown.Send);
                var buffer = new byte[4096];
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                while (await uapi.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
                {
                }
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
            {
            }
        }

        Assert.Single((await pair.Ours.DumpAsync(Token)).Peers);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);
    }

    [Fact]
    public async Task PersistentKeepalive_SetLiveOnOurs_HandshakesWithoutTraffic()
    {
        // Theirs does not know where we are: only our keepalive can make the first contact.
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { TheirsKnowsOurEndpoint = false }, Token);
        var ours = pair.Ours.PublicKey;
        Assert.Equal(0, (await pair.Theirs.DumpAsync(Token)).Peer(ours).LatestHandshakeUnixSeconds);

        (await pair.Ours.WgAsync(["set", pair.Ours.Interface, "peer", pair.Theirs.PublicKey, "persistent-keepalive", "1"], Token)).EnsureSuccess();

        var reached = await Eventually.TryAsync(
            async ct => (await pair.Theirs.DumpAsync(ct)).Peer(ours).LatestHandshakeUnixSeconds > 0,
            TimeSpan.FromSeconds(10),
            Token);
        if (!reached)
        {
            await pair.FailAsync("wireguard-go saw no handshake within 10 s of enabling our persistent keepalive");
        }

        Assert.Equal(1, (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey).PersistentKeepalive);
        var rx = (await pair.Theirs.DumpAsync(Token)).Peer(ours).RxBytes;
        var grew = await Eventually.TryAsync(async ct => (await pair.Theirs.DumpAsync(ct)).Peer(ours).RxBytes > rx, TimeSpan.FromSeconds(5), Token);
        Assert.True(grew, "no keepalive arrived at wireguard-go within 5 s at an interval of 1 s");
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);
    }
}
