using System.Globalization;
using System.Text;

namespace Mesh.Net.Uapi;

/// <summary>
/// The text of WireGuard's cross-platform configuration protocol, as wg(8) speaks it to userspace
/// implementations over <c>/var/run/wireguard/NAME.sock</c>. This type only parses and formats;
/// <see cref="UapiServer"/> owns the socket and <see cref="IUapiDevice"/> owns the state.
/// </summary>
/// <remarks>
/// Spec: https://www.wireguard.com/xplatform/#configuration-protocol; the keys, their order and the
/// errno values follow wireguard-go's <c>device/uapi.go</c> and <c>ipc/uapi_unix.go</c>.
/// <code>
/// client                                   server
/// get=1\n                        ──►
/// \n                                       private_key=&lt;64 hex&gt;\n        (omitted when unset)
///                                          listen_port=N\n              (omitted when 0)
///                                          fwmark=N\n                   (omitted when 0)
///                                          per peer:
///                                            public_key=&lt;hex&gt;\n  preshared_key=&lt;hex, zeros if none&gt;\n
///                                            protocol_version=1\n  endpoint=ip:port | [v6]:port\n (if set)
///                                            last_handshake_time_sec=N\n  last_handshake_time_nsec=N\n
///                                            tx_bytes=N\n  rx_bytes=N\n  persistent_keepalive_interval=N\n
///                                            allowed_ip=prefix/bits\n ...
///                                ◄──       errno=0\n\n
///
/// set=1\n key=value\n ... \n     ──►
///                                ◄──       errno=0\n\n   or   errno=-22\n\n (negated errno.h value)
/// </code>
/// A connection may carry any number of requests in turn. Keys are lower-case hex on output;
/// either case is accepted on input, as Go's hex decoder does.
/// </remarks>
public static class UapiProtocol
{
    /// <summary>The first line of a get request, without its newline.</summary>
    public const string GetOperation = "get=1";

    /// <summary>The first line of a set request, without its newline.</summary>
    public const string SetOperation = "set=1";

    /// <summary>Whether a 32-byte key is all zeros, which in a set request means "remove".</summary>
    public static bool IsZeroKey(ReadOnlySpan<byte> key) => !key.ContainsAnyExcept((byte)0);

    /// <summary>
    /// Parses the body of a set request: the lines after <c>set=1</c>, separated by <c>\n</c>, up to
    /// the first blank line or the end of the text. Throws <see cref="UapiException"/> for the first
    /// invalid line; never returns a partial request.
    /// </summary>
    public static UapiSetRequest ParseSet(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var parser = new UapiSetParser();
        foreach (var range in body.AsSpan().Split('\n'))
        {
            var line = body[range];
            if (line.Length == 0)
            {
                break;
            }

            parser.AddLine(line);
        }

        return parser.Build();
    }

    /// <summary>The whole reply to <c>get=1</c>, ending in <c>errno=0\n\n</c>.</summary>
    public static string FormatGet(UapiDeviceState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var sb = new StringBuilder(256 + (state.Peers.Count * 512));
        var inv = CultureInfo.InvariantCulture;
        if (state.PrivateKey is { } privateKey)
        {
            CheckKeyLength("private_key", privateKey);
            if (!IsZeroKey(privateKey))
            {
                AppendKey(sb, "private_key", privateKey);
            }
        }

        if (state.ListenPort != 0)
        {
            sb.Append(inv, $"listen_port={state.ListenPort}\n");
        }

        if (state.FwMark != 0)
        {
            sb.Append(inv, $"fwmark={state.FwMark}\n");
        }

        foreach (var peer in state.Peers)
        {
            AppendKey(sb, "public_key", peer.PublicKey);
            AppendKey(sb, "preshared_key", peer.PresharedKey ?? new byte[UapiValues.KeyLength]);
            sb.Append(inv, $"protocol_version={peer.ProtocolVersion}\n");
            if (peer.Endpoint is { } endpoint)
            {
                sb.Append("endpoint=").Append(endpoint.ToString()).Append('\n');
            }

            sb.Append(inv, $"last_handshake_time_sec={peer.LastHandshakeTimeSec}\n");
            sb.Append(inv, $"last_handshake_time_nsec={peer.LastHandshakeTimeNsec}\n");
            sb.Append(inv, $"tx_bytes={peer.TxBytes}\n");
            sb.Append(inv, $"rx_bytes={peer.RxBytes}\n");
            sb.Append(inv, $"persistent_keepalive_interval={peer.PersistentKeepaliveInterval}\n");
            foreach (var network in peer.AllowedIps)
            {
                sb.Append("allowed_ip=").Append(network.ToString()).Append('\n');
            }
        }

        sb.Append(FormatErrno(0));
        return sb.ToString();
    }

    /// <summary>
    /// The status that ends every reply: <c>errno=0\n\n</c>, or the negated errno
    /// (<c>errno=-22\n\n</c>) as wireguard-go sends it.
    /// </summary>
    public static string FormatErrno(int errno) =>
        errno == 0 ? "errno=0\n\n" : string.Create(CultureInfo.InvariantCulture, $"errno={-Math.Abs(errno)}\n\n");

    private static void CheckKeyLength(string name, byte[] key)
    {
        if (key.Length != UapiValues.KeyLength)
        {
            throw new ArgumentException($"{name} must be {UapiValues.KeyLength} bytes, not {key.Length}", nameof(key));
        }
    }

    private static void AppendKey(StringBuilder sb, string name, byte[] key)
    {
        CheckKeyLength(name, key);
        sb.Append(name).Append('=');
        UapiValues.AppendHexKey(sb, key);
        sb.Append('\n');
    }
}
