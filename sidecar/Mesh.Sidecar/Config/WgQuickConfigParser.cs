using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Sidecar.Config;

/// <summary>
/// One pass over a wg-quick file. Each section collects into a builder; the first problem throws
/// <see cref="WgQuickConfigException"/> with its line. Messages never quote key values.
/// </summary>
internal sealed class WgQuickConfigParser(string fileName)
{
    private const int KeyLength = 32;
    private const int KeyBase64Length = 44;
    private const int MinMtu = 576;

    private static readonly string[] IgnoredInterfaceKeys = ["DNS", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig"];

    private readonly List<string> _warnings = [];
    private readonly List<PeerBuilder> _peers = [];
    private InterfaceBuilder? _interface;
    private PeerBuilder? _peer;
    private int _line;

    public WgQuickConfig Parse(string text)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            _line = i + 1;
            var line = lines[i];
            var hash = line.IndexOf('#');
            if (hash >= 0)
            {
                line = line[..hash];
            }

            line = line.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                StartSection(line);
            }
            else
            {
                ParseKeyValue(line);
            }
        }

        return Build();
    }

    private void StartSection(string line)
    {
        if (!line.EndsWith(']'))
        {
            throw Fail($"section header \"{line}\" has no closing ']'; write [Interface] or [Peer]");
        }

        var name = line[1..^1].Trim();
        if (name.Equals("Interface", StringComparison.OrdinalIgnoreCase))
        {
            if (_interface is not null)
            {
                throw Fail($"second [Interface] section (the first is at line {_interface.Line}); a file describes one interface, so merge them");
            }

            _peer = null;
            _interface = new InterfaceBuilder(_line);
        }
        else if (name.Equals("Peer", StringComparison.OrdinalIgnoreCase))
        {
            _peer = new PeerBuilder(_line);
            _peers.Add(_peer);
        }
        else
        {
            throw Fail($"unknown section \"{line}\"; write [Interface] or [Peer]");
        }
    }

    private void ParseKeyValue(string line)
    {
        var eq = line.IndexOf('=');
        if (eq <= 0)
        {
            // Not quoted: the line may be a key with its '=' missing.
            throw Fail(eq == 0
                ? "line starts with '='; write \"Key = Value\""
                : "line is neither a section header nor \"Key = Value\"; write for example \"ListenPort = 51820\"");
        }

        var key = line[..eq].Trim();
        var value = line[(eq + 1)..].Trim();
        if (_peer is not null)
        {
            ParsePeerKey(_peer, key, value);
        }
        else if (_interface is not null)
        {
            ParseInterfaceKey(_interface, key, value);
        }
        else
        {
            throw Fail($"{key} is outside any section; put [Interface] or [Peer] above it");
        }
    }

    private void ParseInterfaceKey(InterfaceBuilder iface, string key, string value)
    {
        switch (Canonical(key))
        {
            case "privatekey":
                Once(iface.Seen, "PrivateKey");
                iface.PrivateKey = ParseKey("PrivateKey", value, "generate one with \"wg genkey\"");
                break;
            case "address":
                foreach (var item in Items(value))
                {
                    var (address, prefix) = ParseAddressAndPrefix("Address", item, "e.g. 10.0.0.1/24 or fd00::1/64");
                    iface.Addresses.Add(new InterfaceAddress(address, prefix));
                }

                break;
            case "listenport":
                Once(iface.Seen, "ListenPort");
                iface.ListenPort = ParseNumber("ListenPort", value, 0, ushort.MaxValue, "write a port from 0 to 65535, or remove the line to pick one at random");
                break;
            case "mtu":
                Once(iface.Seen, "MTU");
                iface.Mtu = ParseNumber("MTU", value, MinMtu, ushort.MaxValue, $"write a number from {MinMtu} to 65535 (1420 is usual for WireGuard), or remove the line");
                break;
            case "fwmark":
                Once(iface.Seen, "FwMark");
                iface.FwMark = ParseFwMark(value);
                break;
            default:
                var ignored = Array.Find(IgnoredInterfaceKeys, k => k.Equals(key, StringComparison.OrdinalIgnoreCase));
                if (ignored is not null)
                {
                    _warnings.Add($"{fileName}:{_line}: {ignored} is not supported by mesh-sidecar wg and is ignored");
                    break;
                }

                if (IsPeerKey(key))
                {
                    throw Fail($"{key} belongs in a [Peer] section; put [Peer] above it");
                }

                throw Fail($"unknown key \"{key}\" in [Interface]; known keys are PrivateKey, Address, ListenPort, MTU, FwMark");
        }
    }

    private void ParsePeerKey(PeerBuilder peer, string key, string value)
    {
        switch (Canonical(key))
        {
            case "publickey":
                Once(peer.Seen, "PublicKey");
                peer.PublicKey = ParseKey("PublicKey", value, "derive it from the peer's private key with \"wg pubkey\"");
                var same = _peers.Find(p => p != peer && p.PublicKey is not null && p.PublicKey.AsSpan().SequenceEqual(peer.PublicKey));
                if (same is not null)
                {
                    throw Fail($"PublicKey is the same as the [Peer] at line {same.Line}; each peer has its own key, so merge the two sections or fix the key");
                }

                break;
            case "presharedkey":
                Once(peer.Seen, "PresharedKey");
                peer.PresharedKey = ParseKey("PresharedKey", value, "generate one with \"wg genpsk\"");
                break;
            case "allowedips":
                foreach (var item in Items(value))
                {
                    var (address, prefix) = ParseAddressAndPrefix("AllowedIPs", item, "e.g. 10.0.0.0/24 or fd00::/64");
                    peer.AllowedIps.Add(Mesh.Net.NetworkPrefix.Masked(address, prefix));
                }

                break;
            case "endpoint":
                Once(peer.Seen, "Endpoint");
                peer.Endpoint = ParseEndpoint(value);
                break;
            case "persistentkeepalive":
                Once(peer.Seen, "PersistentKeepalive");
                var seconds = value.Equals("off", StringComparison.OrdinalIgnoreCase)
                    ? 0
                    : ParseNumber("PersistentKeepalive", value, 0, ushort.MaxValue, "write a number of seconds from 1 to 65535 (25 is usual), or off");
                peer.PersistentKeepalive = seconds == 0 ? null : seconds;
                break;
            default:
                if (IsInterfaceKey(key))
                {
                    throw Fail($"{key} belongs in the [Interface] section; move it above the first [Peer]");
                }

                throw Fail($"unknown key \"{key}\" in [Peer]; known keys are PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive");
        }
    }

    private WgQuickConfig Build()
    {
        if (_interface is null)
        {
            throw new WgQuickConfigException(fileName, 1, "no [Interface] section; start the file with [Interface] and \"PrivateKey = <output of wg genkey>\"");
        }

        if (_interface.PrivateKey is null)
        {
            throw new WgQuickConfigException(fileName, _interface.Line, "[Interface] has no PrivateKey; add \"PrivateKey = <output of wg genkey>\"");
        }

        var peers = new List<WgQuickPeer>(_peers.Count);
        foreach (var peer in _peers)
        {
            if (peer.PublicKey is null)
            {
                throw new WgQuickConfigException(fileName, peer.Line, "[Peer] has no PublicKey; add \"PublicKey = <the peer's wg pubkey>\"");
            }

            peers.Add(new WgQuickPeer
            {
                PublicKey = peer.PublicKey,
                PresharedKey = peer.PresharedKey,
                AllowedIps = peer.AllowedIps.ToArray(),
                Endpoint = peer.Endpoint,
                PersistentKeepalive = peer.PersistentKeepalive,
                Line = peer.Line,
            });
        }

        return new WgQuickConfig
        {
            Interface = new WgQuickInterface
            {
                PrivateKey = _interface.PrivateKey,
                Addresses = _interface.Addresses.ToArray(),
                ListenPort = _interface.ListenPort,
                Mtu = _interface.Mtu,
                FwMark = _interface.FwMark,
                Line = _interface.Line,
            },
            Peers = peers,
            Warnings = _warnings.ToArray(),
        };
    }

    private byte[] ParseKey(string name, string value, string hint)
    {
        var bytes = new byte[KeyLength];
        if (value.Length != KeyBase64Length || !value.EndsWith('=')
            || !Convert.TryFromBase64String(value, bytes, out var written) || written != KeyLength)
        {
            throw Fail($"{name} is not a valid key: a key is 44 characters of base64 encoding 32 bytes; {hint}");
        }

        return bytes;
    }

    private (IPAddress Address, int Prefix) ParseAddressAndPrefix(string name, string item, string example)
    {
        var slash = item.IndexOf('/');
        var host = slash < 0 ? item : item[..slash];
        if (!TryParseAddress(host, out var address))
        {
            throw Fail($"{name} \"{item}\": \"{host}\" is not an IP address; write an address with a prefix length, {example}");
        }

        var max = WgQuickValues.MaxPrefix(address);
        if (slash < 0)
        {
            return (address, max);
        }

        var bits = item[(slash + 1)..];
        if (bits.Length == 0 || bits.Length > 3 || !bits.All(char.IsAsciiDigit))
        {
            throw Fail($"{name} \"{item}\": prefix length \"{bits}\" is not a number; {example}");
        }

        var prefix = int.Parse(bits, CultureInfo.InvariantCulture);
        if (prefix > max)
        {
            var family = max == 32 ? "IPv4" : "IPv6";
            throw Fail($"{name} \"{item}\": prefix length {prefix} is out of range for {family} (0-{max})");
        }

        return (address, prefix);
    }

    private string ParseEndpoint(string value)
    {
        string host;
        string port;
        if (value.StartsWith('['))
        {
            var close = value.IndexOf(']');
            if (close < 0 || close + 1 >= value.Length || value[close + 1] != ':')
            {
                throw Fail($"Endpoint \"{value}\": write an IPv6 endpoint as [address]:port, e.g. [fd00::1]:51820");
            }

            host = value[1..close];
            port = value[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6 || host.Contains('%'))
            {
                throw Fail($"Endpoint \"{value}\": \"{host}\" is not an IPv6 address; write [address]:port, e.g. [fd00::1]:51820");
            }
        }
        else
        {
            var colon = value.LastIndexOf(':');
            if (colon < 0)
            {
                throw Fail($"Endpoint \"{value}\" has no port; write host:port, e.g. {value}:51820");
            }

            host = value[..colon];
            port = value[(colon + 1)..];
            if (host.Contains(':'))
            {
                throw Fail($"Endpoint \"{value}\": put an IPv6 address in brackets, e.g. [{host}]:{port}");
            }

            if (!IsHostName(host))
            {
                throw Fail($"Endpoint \"{value}\": \"{host}\" is neither an IPv4 address nor a host name; write host:port, e.g. 198.51.100.1:51820 or vpn.example.com:51820");
            }
        }

        ParseNumber("Endpoint port", port, 1, ushort.MaxValue, $"write host:port with a port from 1 to 65535, e.g. {(value.StartsWith('[') ? "[" + host + "]" : host)}:51820");
        return value;
    }

    private uint? ParseFwMark(string value)
    {
        if (value.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        // wg reads FwMark with strtoul(base 0): decimal or 0x hex.
        uint mark = 0;
        var ok = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? value.Length > 2 && uint.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mark)
            : value.Length > 0 && value.All(char.IsAsciiDigit) && uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out mark);
        if (!ok)
        {
            throw Fail($"FwMark \"{value}\" is not a number; write a number from 0 to 4294967295 (decimal or 0x hex), or off");
        }

        return mark == 0 ? null : mark;
    }

    private int ParseNumber(string name, string value, int min, int max, string hint)
    {
        if (value.Length == 0 || value.Length > 10 || !value.All(char.IsAsciiDigit))
        {
            throw Fail($"{name} \"{value}\" is not a number; {hint}");
        }

        var number = long.Parse(value, CultureInfo.InvariantCulture);
        if (number < min || number > max)
        {
            throw Fail($"{name} {number} is out of range ({min}-{max}); {hint}");
        }

        return (int)number;
    }

    private void Once(HashSet<string> seen, string key)
    {
        if (!seen.Add(key))
        {
            throw Fail($"{key} is given twice in this section; keep only one");
        }
    }

    private WgQuickConfigException Fail(string problem) => new(fileName, _line, problem);

    private static IEnumerable<string> Items(string value) =>
        value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    private static string Canonical(string key) => key.ToLowerInvariant();

    private static bool IsPeerKey(string key) =>
        Canonical(key) is "publickey" or "presharedkey" or "allowedips" or "endpoint" or "persistentkeepalive";

    private static bool IsInterfaceKey(string key) =>
        Canonical(key) is "privatekey" or "address" or "listenport" or "mtu" or "fwmark"
        || Array.Exists(IgnoredInterfaceKeys, k => k.Equals(key, StringComparison.OrdinalIgnoreCase));

    /// <summary>A dotted-quad IPv4 address (no "1" or "0x7f.1" forms) or a plain IPv6 address.</summary>
    private static bool TryParseAddress(string text, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.Contains(':'))
        {
            if (text.Contains('%') || text.Contains('[') || !IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            address = v6;
            return true;
        }

        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        var bytes = new byte[4];
        for (var i = 0; i < 4; i++)
        {
            var part = parts[i];
            if (part.Length is 0 or > 3 || !part.All(char.IsAsciiDigit) || (part.Length > 1 && part[0] == '0'))
            {
                return false;
            }

            var octet = int.Parse(part, CultureInfo.InvariantCulture);
            if (octet > 255)
            {
                return false;
            }

            bytes[i] = (byte)octet;
        }

        address = new IPAddress(bytes);
        return true;
    }

    /// <summary>An IPv4 address or an RFC 1123 host name (labels of letters, digits and '-', '_' tolerated).</summary>
    private static bool IsHostName(string host)
    {
        if (host.Length is 0 or > 253)
        {
            return false;
        }

        if (host.All(c => char.IsAsciiDigit(c) || c == '.'))
        {
            return TryParseAddress(host, out _);
        }

        foreach (var label in host.TrimEnd('.').Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-'
                || !label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class InterfaceBuilder(int line)
    {
        public int Line { get; } = line;

        public HashSet<string> Seen { get; } = [];

        public byte[]? PrivateKey { get; set; }

        public List<InterfaceAddress> Addresses { get; } = [];

        public int? ListenPort { get; set; }

        public int? Mtu { get; set; }

        public uint? FwMark { get; set; }
    }

    private sealed class PeerBuilder(int line)
    {
        public int Line { get; } = line;

        public HashSet<string> Seen { get; } = [];

        public byte[]? PublicKey { get; set; }

        public byte[]? PresharedKey { get; set; }

        public List<IPNetwork> AllowedIps { get; } = [];

        public string? Endpoint { get; set; }

        public int? PersistentKeepalive { get; set; }
    }
}
