using System.Net;
using System.Net.Sockets;

namespace Mesh.Sidecar.Config;

/// <summary>
/// A wg-quick(8) configuration file, as <c>mesh-sidecar wg --config FILE</c> reads it: the
/// <c>[Interface]</c> and <c>[Peer]</c> keys wg(8) and wg-quick act on, validated up front so a
/// mistake is reported as <c>FILE:LINE: what is wrong and what to write instead</c> before any
/// interface is touched. It only parses; creating the TUN, addresses and routes is the caller's job.
/// </summary>
/// <remarks>
/// Syntax as wg-quick and wg's <c>config.c</c> read it: section names and keys are
/// case-insensitive, <c>#</c> starts a comment anywhere on a line, values are trimmed, Address and
/// AllowedIPs take comma-separated lists and may repeat. Keys wg-quick runs but we do not (DNS,
/// Table, PreUp, PostUp, PreDown, PostDown, SaveConfig) become <see cref="Warnings"/>. Unlike wg,
/// which lets a repeated single-valued key silently win, a repeat is an error here.
/// </remarks>
public sealed class WgQuickConfig
{
    /// <summary>The <c>[Interface]</c> section.</summary>
    public required WgQuickInterface Interface { get; init; }

    /// <summary>The <c>[Peer]</c> sections in file order.</summary>
    public required IReadOnlyList<WgQuickPeer> Peers { get; init; }

    /// <summary>One message per ignored line, each starting <c>FILE:LINE:</c>.</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>Parses <paramref name="text"/>; <paramref name="fileName"/> only prefixes messages.</summary>
    /// <exception cref="WgQuickConfigException">The first problem in the file.</exception>
    public static WgQuickConfig Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        return new WgQuickConfigParser(fileName).Parse(text);
    }
}

/// <summary>The <c>[Interface]</c> section.</summary>
public sealed class WgQuickInterface
{
    /// <summary>The interface's private key (32 bytes).</summary>
    public required byte[] PrivateKey { get; init; }

    /// <summary>Addresses to put on the interface, host bits kept (10.0.0.1/24 means address 10.0.0.1 on 10.0.0.0/24).</summary>
    public required IReadOnlyList<InterfaceAddress> Addresses { get; init; }

    /// <summary>The UDP port (0-65535), or null to let the device choose.</summary>
    public int? ListenPort { get; init; }

    /// <summary>The interface MTU, or null for the default.</summary>
    public int? Mtu { get; init; }

    /// <summary>The fwmark (SO_MARK) of outgoing packets, or null for none ("off" or 0).</summary>
    public uint? FwMark { get; init; }

    /// <summary>The line of the <c>[Interface]</c> header.</summary>
    public required int Line { get; init; }
}

/// <summary>One <c>[Peer]</c> section.</summary>
public sealed class WgQuickPeer
{
    /// <summary>The peer's public key (32 bytes).</summary>
    public required byte[] PublicKey { get; init; }

    /// <summary>The preshared key (32 bytes), or null for none.</summary>
    public byte[]? PresharedKey { get; init; }

    /// <summary>Allowed IPs, masked to their prefix, in file order.</summary>
    public required IReadOnlyList<IPNetwork> AllowedIps { get; init; }

    /// <summary>
    /// <c>host:port</c> or <c>[v6]:port</c> as written; the host may be a DNS name, which the caller
    /// resolves. The shape and port (1-65535) have been checked.
    /// </summary>
    public string? Endpoint { get; init; }

    /// <summary>Keepalive interval in seconds (1-65535), or null for none ("off" or 0).</summary>
    public int? PersistentKeepalive { get; init; }

    /// <summary>The line of this <c>[Peer]</c> header.</summary>
    public required int Line { get; init; }
}

/// <summary>An address on the interface, as wg-quick's <c>Address</c> takes it (host bits allowed).</summary>
public readonly record struct InterfaceAddress(IPAddress Address, int PrefixLength)
{
    /// <summary>The on-link network: the address masked to its prefix.</summary>
    public IPNetwork Network => Mesh.Net.NetworkPrefix.Masked(Address, PrefixLength);

    /// <summary><c>address/prefix</c>, as <c>ip address add</c> takes it.</summary>
    public override string ToString() => $"{Address}/{PrefixLength}";
}

/// <summary>A problem in a wg-quick file; the message reads <c>FILE:LINE: what is wrong and what to write instead</c>.</summary>
public sealed class WgQuickConfigException : Exception
{
    public WgQuickConfigException(string fileName, int line, string problem)
        : base($"{fileName}:{line}: {problem}")
    {
        FileName = fileName;
        Line = line;
        Problem = problem;
    }

    /// <summary>The file name given to <see cref="WgQuickConfig.Parse"/>.</summary>
    public string FileName { get; }

    /// <summary>The 1-based line of the problem.</summary>
    public int Line { get; }

    /// <summary>The message without the <c>FILE:LINE:</c> prefix.</summary>
    public string Problem { get; }
}

/// <summary>Value syntaxes shared by the parser and its result types.</summary>
internal static class WgQuickValues
{
    public static int MaxPrefix(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
}
