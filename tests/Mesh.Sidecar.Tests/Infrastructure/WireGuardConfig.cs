using System.Net;
using System.Text;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>One <c>[Peer]</c> of a WireGuard configuration.</summary>
internal sealed record WireGuardPeerConfig(
    string PublicKey,
    IReadOnlyList<string> AllowedIps,
    IPEndPoint? Endpoint = null,
    string? PresharedKey = null,
    int? PersistentKeepalive = null);

/// <summary>
/// One interface's configuration. <see cref="ToWgQuick"/> renders the <c>wg-quick</c> file that
/// <c>mesh-sidecar wg --config</c> reads; <see cref="ToSetConf"/> renders the subset that
/// <c>wg setconf</c> accepts (no Address or MTU, which the harness applies with <c>ip</c>).
/// </summary>
internal sealed record WireGuardConfig(
    WireGuardKeyPair Keys,
    int ListenPort,
    IReadOnlyList<string> Addresses,
    IReadOnlyList<WireGuardPeerConfig> Peers,
    int Mtu = 1420)
{
    public string ToWgQuick()
    {
        var text = new StringBuilder()
            .Append("[Interface]\n")
            .Append("PrivateKey = ").Append(Keys.PrivateKey).Append('\n')
            .Append("Address = ").Append(string.Join(", ", Addresses)).Append('\n')
            .Append("ListenPort = ").Append(ListenPort).Append('\n')
            .Append("MTU = ").Append(Mtu).Append('\n');
        AppendPeers(text);
        return text.ToString();
    }

    public string ToSetConf()
    {
        var text = new StringBuilder()
            .Append("[Interface]\n")
            .Append("PrivateKey = ").Append(Keys.PrivateKey).Append('\n')
            .Append("ListenPort = ").Append(ListenPort).Append('\n');
        AppendPeers(text);
        return text.ToString();
    }

    private void AppendPeers(StringBuilder text)
    {
        foreach (var peer in Peers)
        {
            text.Append("\n[Peer]\n").Append("PublicKey = ").Append(peer.PublicKey).Append('\n');
            if (peer.PresharedKey is not null)
            {
                text.Append("PresharedKey = ").Append(peer.PresharedKey).Append('\n');
            }

            text.Append("AllowedIPs = ").Append(string.Join(", ", peer.AllowedIps)).Append('\n');
            if (peer.Endpoint is not null)
            {
                text.Append("Endpoint = ").Append(FormatEndpoint(peer.Endpoint)).Append('\n');
            }

            if (peer.PersistentKeepalive is { } keepalive)
            {
                text.Append("PersistentKeepalive = ").Append(keepalive).Append('\n');
            }
        }
    }

    /// <summary>The way <c>wg</c> prints an endpoint: <c>1.2.3.4:5</c> or <c>[::1]:5</c>.</summary>
    public static string FormatEndpoint(IPEndPoint endpoint) =>
        endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{endpoint.Address}]:{endpoint.Port}"
            : $"{endpoint.Address}:{endpoint.Port}";
}
