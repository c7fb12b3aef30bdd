using System.Net;

namespace Mesh.Net.Uapi;

/// <summary>
/// Parses the body of a <c>set=1</c> request one line at a time. It never stops consuming lines
/// (so the server stays in step with the client up to the blank line) but remembers only the first
/// error; <see cref="Build"/> then either returns the whole request or throws that error. Nothing
/// reaches the device until the request has parsed completely, unlike wireguard-go, which applies
/// each line as it reads it.
/// </summary>
/// <remarks>
/// Keys and their errors follow wireguard-go's <c>device/uapi.go</c>: lines before the first
/// <c>public_key</c> are device keys, later lines belong to the latest peer; an unknown key or bad
/// value is EINVAL, a line without <c>=</c> is EPROTO. Error messages never quote key material.
/// </remarks>
internal sealed class UapiSetParser
{
    private const int MaxQuotedValue = 64;

    private readonly List<UapiPeerUpdate> _peers = [];
    private PeerBuilder? _peer;
    private byte[]? _privateKey;
    private int? _listenPort;
    private uint? _fwMark;
    private bool _replacePeers;
    private int _lineNumber;

    /// <summary>The first error, or null while the request is still valid.</summary>
    public UapiException? Error { get; private set; }

    /// <summary>Feeds one line without its trailing newline. The terminating blank line must not be fed.</summary>
    public void AddLine(string line)
    {
        _lineNumber++;
        if (Error is not null)
        {
            return;
        }

        try
        {
            ParseLine(line);
        }
        catch (UapiException ex)
        {
            Error = ex;
        }
    }

    /// <summary>Returns the parsed request, or throws the first error.</summary>
    public UapiSetRequest Build()
    {
        if (Error is not null)
        {
            throw Error;
        }

        FlushPeer();
        return new UapiSetRequest
        {
            PrivateKey = _privateKey,
            ListenPort = _listenPort,
            FwMark = _fwMark,
            ReplacePeers = _replacePeers,
            Peers = _peers.ToArray(),
        };
    }

    private void ParseLine(string line)
    {
        var eq = line.IndexOf('=');
        if (eq < 0)
        {
            // Do not quote the line: it may be a key whose '=' was lost.
            throw Fail(UapiErrno.Protocol, $"line {_lineNumber}: expected key=value");
        }

        var key = line[..eq];
        var value = line[(eq + 1)..];
        if (key == "public_key")
        {
            FlushPeer();
            _peer = new PeerBuilder(ParseKey(key, value));
            return;
        }

        if (_peer is null)
        {
            ParseDeviceLine(key, value);
        }
        else
        {
            ParsePeerLine(_peer, key, value);
        }
    }

    private void ParseDeviceLine(string key, string value)
    {
        switch (key)
        {
            case "private_key":
                _privateKey = ParseKey(key, value);
                break;
            case "listen_port":
                _listenPort = (int)ParseNumber(key, value, ushort.MaxValue);
                break;
            case "fwmark":
                _fwMark = (uint)ParseNumber(key, value, uint.MaxValue);
                break;
            case "replace_peers":
                _replacePeers = ParseTrue(key, value);
                break;
            default:
                throw Fail(UapiErrno.Invalid, $"invalid UAPI device key \"{Quote(key)}\"");
        }
    }

    private void ParsePeerLine(PeerBuilder peer, string key, string value)
    {
        switch (key)
        {
            case "update_only":
                peer.UpdateOnly = ParseTrue(key, value);
                break;
            case "remove":
                peer.Remove = ParseTrue(key, value);
                break;
            case "preshared_key":
                peer.PresharedKey = ParseKey(key, value);
                break;
            case "endpoint":
                if (!UapiValues.TryParseEndpoint(value, out var endpoint))
                {
                    throw Fail(UapiErrno.Invalid, $"invalid endpoint \"{Quote(value)}\": expected a.b.c.d:port or [v6]:port");
                }

                peer.Endpoint = endpoint;
                break;
            case "persistent_keepalive_interval":
                peer.PersistentKeepaliveInterval = (int)ParseNumber(key, value, ushort.MaxValue);
                break;
            case "replace_allowed_ips":
                peer.ReplaceAllowedIps = ParseTrue(key, value);
                break;
            case "allowed_ip":
                var remove = value.StartsWith('-');
                var text = remove ? value[1..] : value;
                if (!UapiValues.TryParsePrefix(text, out var network))
                {
                    throw Fail(UapiErrno.Invalid, $"invalid allowed_ip \"{Quote(value)}\": expected address/bits");
                }

                (remove ? peer.RemovedAllowedIps : peer.AllowedIps).Add(network);
                break;
            case "protocol_version":
                if (value != "1")
                {
                    throw Fail(UapiErrno.Invalid, $"invalid protocol_version \"{Quote(value)}\": only 1 is supported");
                }

                peer.ProtocolVersion = 1;
                break;
            default:
                throw Fail(UapiErrno.Invalid, $"invalid UAPI peer key \"{Quote(key)}\"");
        }
    }

    private byte[] ParseKey(string key, string value)
    {
        if (!UapiValues.TryParseHexKey(value, out var bytes))
        {
            throw Fail(UapiErrno.Invalid, $"invalid {key}: expected 64 hex digits");
        }

        return bytes;
    }

    private ulong ParseNumber(string key, string value, ulong max)
    {
        if (!UapiValues.TryParseUInt(value, max, out var number))
        {
            throw Fail(UapiErrno.Invalid, $"invalid {key} \"{Quote(value)}\": expected a decimal number from 0 to {max}");
        }

        return number;
    }

    private bool ParseTrue(string key, string value)
    {
        if (value != "true")
        {
            throw Fail(UapiErrno.Invalid, $"invalid {key} \"{Quote(value)}\": the only accepted value is true");
        }

        return true;
    }

    private void FlushPeer()
    {
        if (_peer is not null)
        {
            _peers.Add(_peer.Build());
            _peer = null;
        }
    }

    private UapiException Fail(int errno, FormattableString message) =>
        new(errno, UapiValues.Invariant($"line {_lineNumber}: {UapiValues.Invariant(message)}"));

    /// <summary>Printable ASCII only, shortened: values end up in logs.</summary>
    private static string Quote(string value)
    {
        var length = Math.Min(value.Length, MaxQuotedValue);
        var chars = new char[length];
        for (var i = 0; i < length; i++)
        {
            var c = value[i];
            chars[i] = c is >= ' ' and <= '~' and not '"' ? c : '?';
        }

        return value.Length > MaxQuotedValue ? new string(chars) + "..." : new string(chars);
    }

    private sealed class PeerBuilder(byte[] publicKey)
    {
        public bool Remove { get; set; }

        public bool UpdateOnly { get; set; }

        public byte[]? PresharedKey { get; set; }

        public IPEndPoint? Endpoint { get; set; }

        public int? PersistentKeepaliveInterval { get; set; }

        public bool ReplaceAllowedIps { get; set; }

        public List<IPNetwork> AllowedIps { get; } = [];

        public List<IPNetwork> RemovedAllowedIps { get; } = [];

        public int? ProtocolVersion { get; set; }

        public UapiPeerUpdate Build() => new()
        {
            PublicKey = publicKey,
            Remove = Remove,
            UpdateOnly = UpdateOnly,
            PresharedKey = PresharedKey,
            Endpoint = Endpoint,
            PersistentKeepaliveInterval = PersistentKeepaliveInterval,
            ReplaceAllowedIps = ReplaceAllowedIps,
            AllowedIps = AllowedIps.ToArray(),
            RemovedAllowedIps = RemovedAllowedIps.ToArray(),
            ProtocolVersion = ProtocolVersion,
        };
    }
}
