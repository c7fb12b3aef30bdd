using System.Globalization;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// The output of <c>wg show IFACE dump</c>, parsed. Format (wireguard-tools, tab-separated): the
/// first line is the interface, <c>private-key public-key listen-port fwmark</c>; each further line
/// is a peer, <c>public-key preshared-key endpoint allowed-ips latest-handshake transfer-rx
/// transfer-tx persistent-keepalive</c>. Absent values are <c>(none)</c> or <c>off</c>, a handshake
/// that never happened is <c>0</c>, allowed IPs are comma-separated.
/// </summary>
internal sealed record WgDump(string PrivateKey, string PublicKey, int ListenPort, string FwMark, IReadOnlyList<WgDumpPeer> Peers)
{
    public static WgDump Parse(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0)
        {
            throw new FormatException("empty `wg show dump` output");
        }

        var self = Fields(lines[0], 4);
        var peers = lines.Skip(1).Select(line =>
        {
            var f = Fields(line, 8);
            return new WgDumpPeer(
                f[0],
                f[1] == "(none)" ? null : f[1],
                f[2] == "(none)" ? null : f[2],
                f[3] == "(none)" ? [] : f[3].Split(','),
                long.Parse(f[4], CultureInfo.InvariantCulture),
                long.Parse(f[5], CultureInfo.InvariantCulture),
                long.Parse(f[6], CultureInfo.InvariantCulture),
                f[7] == "off" ? null : int.Parse(f[7], CultureInfo.InvariantCulture));
        }).ToList();
        return new WgDump(self[0], self[1], int.Parse(self[2], CultureInfo.InvariantCulture), self[3], peers);
    }

    public WgDumpPeer Peer(string publicKey) =>
        Peers.FirstOrDefault(p => p.PublicKey == publicKey)
        ?? throw new InvalidOperationException($"peer {publicKey} is not in the dump");

    private static string[] Fields(string line, int count)
    {
        var fields = line.TrimEnd('\r').Split('\t');
        if (fields.Length != count)
        {
            throw new FormatException($"expected {count} tab-separated fields, got {fields.Length}: '{line}'");
        }

        return fields;
    }
}

internal sealed record WgDumpPeer(
    string PublicKey,
    string? PresharedKey,
    string? Endpoint,
    IReadOnlyList<string> AllowedIps,
    long LatestHandshakeUnixSeconds,
    long RxBytes,
    long TxBytes,
    int? PersistentKeepalive);
