using System.Net;
using System.Text;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>How a <see cref="TunnelPair"/> is configured.</summary>
internal sealed record TunnelPairOptions
{
    /// <summary>When false, ours has no Endpoint for theirs and can only answer (learning it from their handshake).</summary>
    public bool OursKnowsTheirEndpoint { get; init; } = true;

    /// <summary>When false, theirs has no Endpoint for ours, so only ours can initiate.</summary>
    public bool TheirsKnowsOurEndpoint { get; init; } = true;

    public string? OursPresharedKey { get; init; }

    public string? TheirsPresharedKey { get; init; }

    /// <summary>Adds 2001:2::/64 to the underlay and uses it for both Endpoints.</summary>
    public bool Ipv6Underlay { get; init; }

    /// <summary>Theirs is mesh-sidecar too (ours against ours: the offload paths on both ends).</summary>
    public bool TheirsIsMeshSidecar { get; init; }

    /// <summary>False: ours runs without kernel offloads (<c>MESH_OFFLOADS=off</c>).</summary>
    public bool OursOffloads { get; init; } = true;
}

/// <summary>
/// The interop fixture: our WireGuard in namespace A and the reference wireguard-go in namespace B,
/// over a veth underlay (198.18.0.1 ↔ 198.18.0.2), tunnel addresses 100.64.0.1/fd7a:115c:a1e0::1
/// (ours) and 100.64.0.2/fd7a:115c:a1e0::2 (theirs). Built fresh per test and torn down even when
/// the test fails. Setting <c>MESH_INTEROP_OURS=wireguard-go</c> puts wireguard-go on our side too:
/// that is the harness's own check, showing that a failure with our binary is our binary's fault.
/// </summary>
internal sealed class TunnelPair : IAsyncDisposable
{
    internal const int OurPort = 51820;
    internal const int TheirPort = 51821;
    internal static readonly IPAddress OurV4 = IPAddress.Parse("100.64.0.1");
    internal static readonly IPAddress TheirV4 = IPAddress.Parse("100.64.0.2");
    internal static readonly IPAddress OurV6 = IPAddress.Parse("fd7a:115c:a1e0::1");
    internal static readonly IPAddress TheirV6 = IPAddress.Parse("fd7a:115c:a1e0::2");
    internal static readonly TimeSpan PingDeadline = TimeSpan.FromSeconds(10);

    private TunnelPair(Underlay underlay, WireGuardPeer ours, WireGuardPeer theirs)
    {
        Underlay = underlay;
        Ours = ours;
        Theirs = theirs;
    }

    /// <summary>True when <c>MESH_INTEROP_OURS=wireguard-go</c>: both sides are the reference.</summary>
    public static bool SelfCheck => Environment.GetEnvironmentVariable("MESH_INTEROP_OURS") == "wireguard-go";

    public Underlay Underlay { get; }

    public WireGuardPeer Ours { get; }

    public WireGuardPeer Theirs { get; }

    public IPEndPoint OurUnderlayEndpoint { get; private init; } = null!;

    public IPEndPoint TheirUnderlayEndpoint { get; private init; } = null!;

    public static async Task<TunnelPair> CreateAsync(TunnelPairOptions options, CancellationToken cancellationToken)
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        var names = TestNames.Create();
        var ourKeys = await WireGuardKeys.GenerateAsync(cancellationToken);
        var theirKeys = await WireGuardKeys.GenerateAsync(cancellationToken);
        var ourEndpoint = new IPEndPoint(options.Ipv6Underlay ? Underlay.Ipv6AddressA : Underlay.AddressA, OurPort);
        var theirEndpoint = new IPEndPoint(options.Ipv6Underlay ? Underlay.Ipv6AddressB : Underlay.AddressB, TheirPort);
        var ourConfig = new WireGuardConfig(
            ourKeys,
            OurPort,
            [$"{OurV4}/32", $"{OurV6}/128"],
            [new WireGuardPeerConfig(theirKeys.PublicKey, [$"{TheirV4}/32", $"{TheirV6}/128"], options.OursKnowsTheirEndpoint ? theirEndpoint : null, options.OursPresharedKey)]);
        var theirConfig = new WireGuardConfig(
            theirKeys,
            TheirPort,
            [$"{TheirV4}/32", $"{TheirV6}/128"],
            [new WireGuardPeerConfig(ourKeys.PublicKey, [$"{OurV4}/32", $"{OurV6}/128"], options.TheirsKnowsOurEndpoint ? ourEndpoint : null, options.TheirsPresharedKey)]);

        var underlay = await Underlay.CreateAsync(names, options.Ipv6Underlay, cancellationToken);
        WireGuardPeer? ours = null;
        try
        {
            ours = SelfCheck
                ? await WireGuardGoPeer.StartAsync(underlay.A, names.Link("o"), ourConfig, cancellationToken)
                : await MeshSidecarPeer.StartAsync(underlay.A, names.Link("o"), ourConfig, cancellationToken, options.OursOffloads);
            WireGuardPeer theirs = options.TheirsIsMeshSidecar && !SelfCheck
                ? await MeshSidecarPeer.StartAsync(underlay.B, names.Link("t"), theirConfig, cancellationToken)
                : await WireGuardGoPeer.StartAsync(underlay.B, names.Link("t"), theirConfig, cancellationToken);
            return new TunnelPair(underlay, ours, theirs) { OurUnderlayEndpoint = ourEndpoint, TheirUnderlayEndpoint = theirEndpoint };
        }
        catch
        {
            if (ours is not null)
            {
                await ours.DisposeAsync();
            }

            await underlay.DisposeAsync();
            throw;
        }
    }

    /// <summary>One echo request at a time until one is answered or the deadline passes.</summary>
    public Task<bool> TryPingAsync(WireGuardPeer from, IPAddress to, CancellationToken cancellationToken, TimeSpan? timeout = null) =>
        Eventually.TryAsync(
            async ct => (await from.Namespace.ExecAsync(["ping", Family(to), "-c", "1", "-W", "1", "-n", "-q", to.ToString()], ct)).Succeeded,
            timeout ?? PingDeadline,
            cancellationToken,
            TimeSpan.FromMilliseconds(10));

    /// <summary>Pings until answered, or fails the test with both sides' state.</summary>
    public async Task PingAsync(WireGuardPeer from, IPAddress to, CancellationToken cancellationToken)
    {
        if (!await TryPingAsync(from, to, cancellationToken))
        {
            await FailAsync($"ping from {from.Implementation} ({from.Namespace.Name}) to {to} got no reply within {PingDeadline.TotalSeconds:0} s");
        }
    }

    /// <summary>A burst of pings of a given size; returns ping's output, fails the test on any loss.</summary>
    public async Task<string> PingBurstAsync(WireGuardPeer from, IPAddress to, int count, int size, CancellationToken cancellationToken)
    {
        var result = await from.Namespace.ExecAsync(
            ["ping", Family(to), "-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "-s", size.ToString(System.Globalization.CultureInfo.InvariantCulture), "-i", "0.05", "-W", "2", "-n", "-q", to.ToString()],
            cancellationToken);
        if (!result.Succeeded)
        {
            await FailAsync($"ping burst from {from.Implementation} to {to} lost replies\n{result.Describe()}");
        }

        return result.Stdout;
    }

    /// <summary>Streams <paramref name="bytes"/> over TCP through the tunnel and fails the test (with diagnostics) on any error.</summary>
    public async Task<TransferResult> TransferAsync(WireGuardPeer from, WireGuardPeer to, IPAddress toAddress, long bytes, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await TcpTransfer.RunAsync(from.Namespace, to.Namespace, toAddress, bytes, timeout, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or System.Net.Sockets.SocketException or IOException)
        {
            await FailAsync($"TCP transfer from {from.Implementation} to {to.Implementation} ({toAddress}) failed: {e.Message}");
            throw;
        }
    }

    public async Task<string> DescribeAsync()
    {
        var text = new StringBuilder();
        if (SelfCheck)
        {
            text.Append("(MESH_INTEROP_OURS=wireguard-go: harness self-check, wireguard-go on both sides)\n");
        }

        text.Append(await Ours.DescribeAsync()).Append(await Theirs.DescribeAsync());
        return text.ToString();
    }

    /// <summary>Fails the test with <paramref name="message"/> followed by both peers' output and state.</summary>
    public async Task FailAsync(string message)
    {
        Assert.Fail($"{message}\n{await DescribeAsync()}");
    }

    public async ValueTask DisposeAsync()
    {
        // Theirs first: ours' clean-shutdown check may throw, and must not leak the rest.
        try
        {
            await Theirs.DisposeAsync();
            await Ours.DisposeAsync();
        }
        finally
        {
            await Underlay.DisposeAsync();
        }
    }

    private static string Family(IPAddress address) =>
        address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4";
}
