namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// The reference implementation: Debian's <c>wireguard-go -f NAME</c> in a namespace, configured
/// the way an administrator would: <c>wg setconf</c> for keys and peers, <c>ip</c> for addresses,
/// MTU, link state and one route per allowed IP.
/// </summary>
internal sealed class WireGuardGoPeer : WireGuardPeer
{
    private static readonly TimeSpan SocketDeadline = TimeSpan.FromSeconds(10);

    private WireGuardGoPeer(NetNs ns, string interfaceName, WireGuardConfig config)
        : base(ns, interfaceName, config)
    {
    }

    public override string Implementation => "wireguard-go";

    public static Task<WireGuardGoPeer> StartAsync(NetNs ns, string interfaceName, WireGuardConfig config, CancellationToken cancellationToken) =>
        StartOrCleanUpAsync(new WireGuardGoPeer(ns, interfaceName, config), peer => peer.StartCoreAsync(cancellationToken));

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        Process = Namespace.Start(["wireguard-go", "-f", Interface], new Dictionary<string, string> { ["LOG_LEVEL"] = "verbose" });
        await WaitForSocketAsync(SocketDeadline, cancellationToken);
        var file = WriteConfigFile($"{Interface}.conf", Config.ToSetConf());
        await Namespace.CheckAsync(["wg", "setconf", Interface, file], cancellationToken);
        foreach (var address in Config.Addresses)
        {
            string[] add = address.Contains(':', StringComparison.Ordinal)
                ? ["ip", "-6", "addr", "add", address, "dev", Interface, "nodad"]
                : ["ip", "addr", "add", address, "dev", Interface];
            await Namespace.CheckAsync(add, cancellationToken);
        }

        await Namespace.CheckAsync(["ip", "link", "set", Interface, "mtu", Config.Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture), "up"], cancellationToken);
        foreach (var allowed in Config.Peers.SelectMany(p => p.AllowedIps))
        {
            var family = allowed.Contains(':', StringComparison.Ordinal) ? "-6" : "-4";
            await Namespace.CheckAsync(["ip", family, "route", "replace", allowed, "dev", Interface], cancellationToken);
        }
    }
}
