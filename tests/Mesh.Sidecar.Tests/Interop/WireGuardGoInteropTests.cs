using System.Net;
using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Interop;

/// <summary>
/// <c>mesh-sidecar wg</c> against the reference wireguard-go, each in its own network namespace over
/// a veth underlay (see <see cref="TunnelPair"/>). Every test builds a fresh pair, so who sends first
/// decides who initiates the handshake. With <c>MESH_INTEROP_OURS=wireguard-go</c> both sides are
/// wireguard-go: that run must pass, and shows the harness is sound.
/// </summary>
[Trait("Category", "Interop")]
public sealed class WireGuardGoInteropTests
{
    private const long LargeTransferBytes = 100L * 1024 * 1024;
    private static readonly TimeSpan LargeTransferTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan RoamDeadline = TimeSpan.FromSeconds(5);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Handshake_InitiatedByOurs_PingFromOursSucceeds()
    {
        // Theirs has no Endpoint for us, so only we can start the handshake.
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { TheirsKnowsOurEndpoint = false }, Token);
        Assert.Equal(0, (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey).LatestHandshakeUnixSeconds);

        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);

        var theirs = (await pair.Theirs.DumpAsync(Token)).Peer(pair.Ours.PublicKey);
        Assert.Equal(WireGuardConfig.FormatEndpoint(pair.OurUnderlayEndpoint), theirs.Endpoint);
        Assert.True(theirs.LatestHandshakeUnixSeconds > 0, "wireguard-go reports no handshake with us");
        var ours = (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey);
        Assert.True(ours.LatestHandshakeUnixSeconds > 0, "our side reports no handshake after a successful ping");
    }

    [Fact]
    public async Task Handshake_InitiatedByWireGuardGo_PingFromTheirsSucceeds()
    {
        // We have no Endpoint for theirs: we must answer their initiation and learn their address from it.
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { OursKnowsTheirEndpoint = false }, Token);
        Assert.Null((await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey).Endpoint);

        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);

        var ours = (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey);
        Assert.Equal(WireGuardConfig.FormatEndpoint(pair.TheirUnderlayEndpoint), ours.Endpoint);
        Assert.True(ours.LatestHandshakeUnixSeconds > 0, "our side reports no handshake after answering wireguard-go");
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
    }

    [Fact]
    public async Task Ping_BothDirectionsOverIpv4_Succeeds()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);

        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);
        await pair.PingBurstAsync(pair.Ours, TunnelPair.TheirV4, count: 20, size: 56, Token);
        await pair.PingBurstAsync(pair.Theirs, TunnelPair.OurV4, count: 20, size: 1372, Token);
    }

    [Fact]
    public async Task TcpTransfer_OursToTheirs100MiB_Sha256Matches()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);

        var result = await pair.TransferAsync(pair.Ours, pair.Theirs, TunnelPair.TheirV4, LargeTransferBytes, LargeTransferTimeout, Token);

        AssertIntact(result, LargeTransferBytes);
    }

    [Fact]
    public async Task TcpTransfer_TheirsToOurs100MiB_Sha256Matches()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);

        var result = await pair.TransferAsync(pair.Theirs, pair.Ours, TunnelPair.OurV4, LargeTransferBytes, LargeTransferTimeout, Token);

        AssertIntact(result, LargeTransferBytes);
    }

    [Fact]
    public async Task Ipv6InTunnel_PingAndTcpBothWays_Succeed()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);

        await pair.PingAsync(pair.Ours, TunnelPair.TheirV6, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV6, Token);
        const long bytes = 8L * 1024 * 1024;
        AssertIntact(await pair.TransferAsync(pair.Ours, pair.Theirs, TunnelPair.TheirV6, bytes, TimeSpan.FromSeconds(30), Token), bytes);
        AssertIntact(await pair.TransferAsync(pair.Theirs, pair.Ours, TunnelPair.OurV6, bytes, TimeSpan.FromSeconds(30), Token), bytes);
    }

    [Fact]
    public async Task Underlay_Ipv6Endpoints_PingBothWaysSucceeds()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { Ipv6Underlay = true }, Token);

        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV6, Token);

        var ours = (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey);
        Assert.Equal("[2001:2::2]:51821", ours.Endpoint);
    }

    [Fact]
    public async Task PresharedKey_SameOnBothSides_HandshakeAndPingSucceed()
    {
        var psk = await WireGuardKeys.GeneratePresharedKeyAsync(Token);
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { OursPresharedKey = psk, TheirsPresharedKey = psk }, Token);

        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);

        Assert.Equal(psk, (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey).PresharedKey);
    }

    [Fact]
    public async Task PresharedKey_Mismatch_NoHandshakeCompletes()
    {
        var ourPsk = await WireGuardKeys.GeneratePresharedKeyAsync(Token);
        var theirPsk = await WireGuardKeys.GeneratePresharedKeyAsync(Token);
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { OursPresharedKey = ourPsk, TheirsPresharedKey = theirPsk }, Token);

        // One initiation and its retry window is enough: a PSK mismatch can never succeed.
        var answered = await pair.TryPingAsync(pair.Ours, TunnelPair.TheirV4, Token, TimeSpan.FromSeconds(3));

        if (answered)
        {
            await pair.FailAsync("ping went through although the preshared keys differ");
        }

        Assert.Equal(0, (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey).LatestHandshakeUnixSeconds);
        Assert.Equal(0, (await pair.Theirs.DumpAsync(Token)).Peer(pair.Ours.PublicKey).LatestHandshakeUnixSeconds);
    }

    [Fact]
    public async Task Roaming_TheirListenPortChanges_OursRepliesToNewEndpoint()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        const int newPort = 51831;

        (await pair.Theirs.WgAsync(["set", pair.Theirs.Interface, "listen-port", $"{newPort}"], Token)).EnsureSuccess();

        // Their next data packet comes from the new port; the old one is closed, so our reply only
        // arrives if we moved the peer's endpoint on that authenticated packet.
        if (!await pair.TryPingAsync(pair.Theirs, TunnelPair.OurV4, Token, RoamDeadline))
        {
            await pair.FailAsync($"after wireguard-go moved to port {newPort}, its ping got no reply within {RoamDeadline.TotalSeconds:0} s");
        }

        await AssertOurEndpointAsync(pair, $"{Underlay.AddressB}:{newPort}");
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
    }

    [Fact]
    public async Task Roaming_TheirUnderlayAddressMoves_OursRepliesToNewEndpoint()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        var newAddress = IPAddress.Parse("198.18.0.3");

        await pair.Underlay.MoveAddressBAsync(newAddress, Token);
        // wireguard-go 0.0.20220316 pins the source address it last received on and only forgets it
        // on EINVAL, while a vanished address gives ENETUNREACH; re-setting its endpoint for us drops
        // that pinned source, as a client re-resolving its server would. Our side is what is tested.
        (await pair.Theirs.WgAsync(["set", pair.Theirs.Interface, "peer", pair.Ours.PublicKey, "endpoint", WireGuardConfig.FormatEndpoint(pair.OurUnderlayEndpoint)], Token)).EnsureSuccess();

        if (!await pair.TryPingAsync(pair.Theirs, TunnelPair.OurV4, Token, RoamDeadline))
        {
            await pair.FailAsync($"after wireguard-go moved to {newAddress}, its ping got no reply within {RoamDeadline.TotalSeconds:0} s");
        }

        await AssertOurEndpointAsync(pair, $"{newAddress}:{TunnelPair.TheirPort}");
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
    }

    [Fact]
    public async Task WgShow_AfterTraffic_ReportsKeysEndpointAllowedIpsHandshakeAndGrowingCounters()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions(), Token);
        await pair.PingAsync(pair.Ours, TunnelPair.TheirV4, Token);
        await pair.PingAsync(pair.Theirs, TunnelPair.OurV4, Token);

        var dumpText = (await pair.Ours.WgAsync(["show", pair.Ours.Interface, "dump"], Token)).EnsureSuccess().Stdout;
        var dump = WgDump.Parse(dumpText);
        Assert.Equal(pair.Ours.Config.Keys.PrivateKey, dump.PrivateKey);
        Assert.Equal(pair.Ours.PublicKey, dump.PublicKey);
        Assert.Equal(TunnelPair.OurPort, dump.ListenPort);
        Assert.Equal("off", dump.FwMark);
        var peer = Assert.Single(dump.Peers);
        Assert.Equal(pair.Theirs.PublicKey, peer.PublicKey);
        Assert.Null(peer.PresharedKey);
        Assert.Equal(WireGuardConfig.FormatEndpoint(pair.TheirUnderlayEndpoint), peer.Endpoint);
        Assert.Equal(new[] { $"{TunnelPair.TheirV4}/32", $"{TunnelPair.TheirV6}/128" }.Order(), peer.AllowedIps.Order());
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(peer.LatestHandshakeUnixSeconds, now - 120, now + 5);
        Assert.True(peer.RxBytes > 0 && peer.TxBytes > 0, $"counters did not move after pings both ways:\n{dumpText}");
        Assert.Null(peer.PersistentKeepalive);

        const int count = 10, size = 1000;
        await pair.PingBurstAsync(pair.Ours, TunnelPair.TheirV4, count, size, Token);

        var after = (await pair.Ours.DumpAsync(Token)).Peer(pair.Theirs.PublicKey);
        Assert.True(after.TxBytes - peer.TxBytes >= count * size, $"tx grew by {after.TxBytes - peer.TxBytes} bytes after {count} pings of {size} bytes");
        Assert.True(after.RxBytes - peer.RxBytes >= count * size, $"rx grew by {after.RxBytes - peer.RxBytes} bytes after {count} replies of {size} bytes");

        var show = (await pair.Ours.WgAsync(["show", pair.Ours.Interface], Token)).EnsureSuccess().Stdout;
        Assert.Contains($"interface: {pair.Ours.Interface}", show, StringComparison.Ordinal);
        Assert.Contains($"public key: {pair.Ours.PublicKey}", show, StringComparison.Ordinal);
        Assert.Contains($"listening port: {TunnelPair.OurPort}", show, StringComparison.Ordinal);
        Assert.Contains($"peer: {pair.Theirs.PublicKey}", show, StringComparison.Ordinal);
        Assert.Contains("latest handshake:", show, StringComparison.Ordinal);
        Assert.Contains("transfer:", show, StringComparison.Ordinal);
    }

    private static async Task AssertOurEndpointAsync(TunnelPair pair, string expected)
    {
        var endpoints = (await pair.Ours.WgAsync(["show", pair.Ours.Interface, "endpoints"], Token)).EnsureSuccess().Stdout;
        Assert.Equal($"{pair.Theirs.PublicKey}\t{expected}", endpoints.Trim());
    }

    private static void AssertIntact(TransferResult result, long bytes)
    {
        TestContext.Current.TestOutputHelper?.WriteLine($"{result.ReceivedBytes} bytes in {result.Elapsed.TotalSeconds:0.00} s ({result.Gbps:0.00} Gbit/s)");
        Assert.Equal(bytes, result.SentBytes);
        Assert.Equal(bytes, result.ReceivedBytes);
        Assert.Equal(result.SentSha256, result.ReceivedSha256);
    }
}
