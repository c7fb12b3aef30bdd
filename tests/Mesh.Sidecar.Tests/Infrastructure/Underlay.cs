using System.Net;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// Two namespaces joined by a veth pair: the "physical" network a tunnel runs over. Side A is
/// 198.18.0.1/24, side B 198.18.0.2/24 (RFC 2544 benchmarking range); with IPv6, also
/// 2001:2::1/64 and 2001:2::2/64 (RFC 5180 benchmarking range). Nothing here routes anywhere else.
/// </summary>
internal sealed class Underlay : IAsyncDisposable
{
    internal static readonly IPAddress AddressA = IPAddress.Parse("198.18.0.1");
    internal static readonly IPAddress AddressB = IPAddress.Parse("198.18.0.2");
    internal static readonly IPAddress Ipv6AddressA = IPAddress.Parse("2001:2::1");
    internal static readonly IPAddress Ipv6AddressB = IPAddress.Parse("2001:2::2");

    private Underlay(NetNs a, NetNs b, string linkA, string linkB)
    {
        A = a;
        B = b;
        LinkA = linkA;
        LinkB = linkB;
    }

    public NetNs A { get; }

    public NetNs B { get; }

    public string LinkA { get; }

    public string LinkB { get; }

    public static async Task<Underlay> CreateAsync(TestNames names, bool ipv6, CancellationToken cancellationToken)
    {
        var a = await NetNs.CreateAsync(names.Namespace("a"), cancellationToken);
        NetNs? b = null;
        try
        {
            b = await NetNs.CreateAsync(names.Namespace("b"), cancellationToken);
            var underlay = new Underlay(a, b, names.Link("ua"), names.Link("ub"));
            // Created directly inside the two namespaces, so the root namespace never sees them.
            (await ChildProcess.RunAsync(
                "ip",
                ["link", "add", underlay.LinkA, "netns", a.Name, "type", "veth", "peer", "name", underlay.LinkB, "netns", b.Name],
                NetNs.DefaultTimeout,
                cancellationToken)).EnsureSuccess();
            await ConfigureSideAsync(a, underlay.LinkA, AddressA, ipv6 ? Ipv6AddressA : null, cancellationToken);
            await ConfigureSideAsync(b, underlay.LinkB, AddressB, ipv6 ? Ipv6AddressB : null, cancellationToken);
            return underlay;
        }
        catch
        {
            if (b is not null)
            {
                await b.DisposeAsync();
            }

            await a.DisposeAsync();
            throw;
        }
    }

    /// <summary>Moves side B to a new IPv4 address in the same /24 (the old one is removed).</summary>
    public async Task MoveAddressBAsync(IPAddress newAddress, CancellationToken cancellationToken)
    {
        await B.CheckAsync(["ip", "-4", "addr", "flush", "dev", LinkB], cancellationToken);
        await B.CheckAsync(["ip", "addr", "add", $"{newAddress}/24", "dev", LinkB], cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        // Deleting a namespace deletes its end of the veth, which deletes the other end too.
        try
        {
            await B.DisposeAsync();
        }
        finally
        {
            await A.DisposeAsync();
        }
    }

    private static async Task ConfigureSideAsync(NetNs ns, string link, IPAddress v4, IPAddress? v6, CancellationToken cancellationToken)
    {
        await ns.CheckAsync(["ip", "addr", "add", $"{v4}/24", "dev", link], cancellationToken);
        if (v6 is not null)
        {
            await ns.CheckAsync(["ip", "addr", "add", $"{v6}/64", "dev", link, "nodad"], cancellationToken);
        }

        await ns.CheckAsync(["ip", "link", "set", link, "up"], cancellationToken);
    }
}
