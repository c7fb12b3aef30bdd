using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Interop;

/// <summary>
/// mesh-sidecar against itself, so both ends take the offload paths that wireguard-go (Debian's,
/// without offloads) never drives: TCP super-packets from the TUN cut into segments and sent as UDP
/// GSO runs, received as UDP GRO runs and merged back into super-packets on the TUN; and against a
/// mesh-sidecar with offloads turned off. Every transfer is checked end to end with SHA-256.
/// </summary>
[Trait("Category", "Interop")]
public sealed class OffloadPathTests
{
    private const long LargeTransferBytes = 100L * 1024 * 1024;
    private static readonly TimeSpan LargeTransferTimeout = TimeSpan.FromSeconds(60);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TcpTransfer_OursToOurs100MiBBothWays_Sha256Matches()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { TheirsIsMeshSidecar = true }, Token);

        AssertIntact(await pair.TransferAsync(pair.Ours, pair.Theirs, TunnelPair.TheirV4, LargeTransferBytes, LargeTransferTimeout, Token), LargeTransferBytes);
        AssertIntact(await pair.TransferAsync(pair.Theirs, pair.Ours, TunnelPair.OurV4, LargeTransferBytes, LargeTransferTimeout, Token), LargeTransferBytes);
    }

    [Fact]
    public async Task TcpTransfer_OursToOursOverIpv6InTunnelAndUnderlay_Sha256Matches()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { TheirsIsMeshSidecar = true, Ipv6Underlay = true }, Token);

        const long bytes = 32L * 1024 * 1024;
        AssertIntact(await pair.TransferAsync(pair.Ours, pair.Theirs, TunnelPair.TheirV6, bytes, TimeSpan.FromSeconds(30), Token), bytes);
        AssertIntact(await pair.TransferAsync(pair.Theirs, pair.Ours, TunnelPair.OurV6, bytes, TimeSpan.FromSeconds(30), Token), bytes);
        await pair.PingBurstAsync(pair.Ours, TunnelPair.TheirV6, count: 10, size: 1300, Token);
    }

    [Fact]
    public async Task TcpTransfer_OffloadsOffAgainstOffloadsOn_Sha256MatchesBothWays()
    {
        await using var pair = await TunnelPair.CreateAsync(new TunnelPairOptions { TheirsIsMeshSidecar = true, OursOffloads = false }, Token);

        const long bytes = 32L * 1024 * 1024;
        AssertIntact(await pair.TransferAsync(pair.Ours, pair.Theirs, TunnelPair.TheirV4, bytes, TimeSpan.FromSeconds(30), Token), bytes);
        AssertIntact(await pair.TransferAsync(pair.Theirs, pair.Ours, TunnelPair.OurV4, bytes, TimeSpan.FromSeconds(30), Token), bytes);
        await pair.PingBurstAsync(pair.Theirs, TunnelPair.OurV4, count: 10, size: 1372, Token);
    }

    private static void AssertIntact(TransferResult result, long bytes)
    {
        TestContext.Current.TestOutputHelper?.WriteLine($"{result.ReceivedBytes} bytes in {result.Elapsed.TotalSeconds:0.00} s ({result.Gbps:0.00} Gbit/s)");
        Assert.Equal(bytes, result.SentBytes);
        Assert.Equal(bytes, result.ReceivedBytes);
        Assert.Equal(result.SentSha256, result.ReceivedSha256);
    }
}
