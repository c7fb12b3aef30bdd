using System.Net;

namespace Mesh.Net.Uapi;

/// <summary>
/// A parsed <c>set=1</c> request. Every value has been validated; null means "leave unchanged".
/// The device applies device fields first, then <see cref="ReplacePeers"/>, then
/// <see cref="Peers"/> in order (a key may appear more than once; later entries win, as they would
/// if wireguard-go applied the lines one by one).
/// </summary>
public sealed class UapiSetRequest
{
    /// <summary>The new private key; an all-zero key removes it (see <see cref="UapiProtocol.IsZeroKey"/>).</summary>
    public byte[]? PrivateKey { get; init; }

    /// <summary>The new listen port (0-65535; 0 picks a random port).</summary>
    public int? ListenPort { get; init; }

    /// <summary>The new fwmark; 0 removes it.</summary>
    public uint? FwMark { get; init; }

    /// <summary>Remove every existing peer before applying <see cref="Peers"/>.</summary>
    public bool ReplacePeers { get; init; }

    /// <summary>Peer changes, in request order.</summary>
    public IReadOnlyList<UapiPeerUpdate> Peers { get; init; } = [];
}

/// <summary>Changes to one peer, from a <c>public_key=</c> line up to the next one.</summary>
public sealed class UapiPeerUpdate
{
    /// <summary>The peer's static public key (32 bytes). A peer with the device's own public key is ignored by wireguard-go.</summary>
    public required byte[] PublicKey { get; init; }

    /// <summary>Remove this peer; the other fields are then meaningless.</summary>
    public bool Remove { get; init; }

    /// <summary>Change this peer only if it already exists; never create it.</summary>
    public bool UpdateOnly { get; init; }

    /// <summary>The new preshared key; an all-zero key removes it.</summary>
    public byte[]? PresharedKey { get; init; }

    /// <summary>The new endpoint.</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>The new persistent keepalive interval in seconds (0-65535; 0 turns it off).</summary>
    public int? PersistentKeepaliveInterval { get; init; }

    /// <summary>Remove this peer's allowed IPs before adding <see cref="AllowedIps"/>.</summary>
    public bool ReplaceAllowedIps { get; init; }

    /// <summary>Allowed IPs to add, masked to their prefix (<c>allowed_ip=</c>).</summary>
    public IReadOnlyList<IPNetwork> AllowedIps { get; init; } = [];

    /// <summary>
    /// Allowed IPs to remove (<c>allowed_ip=-prefix</c>, sent by newer wg for <c>allowed-ips -10.0.0.0/8</c>),
    /// masked; applied after <see cref="AllowedIps"/>.
    /// </summary>
    public IReadOnlyList<IPNetwork> RemovedAllowedIps { get; init; } = [];

    /// <summary>The requested protocol version; only 1 is accepted by the parser.</summary>
    public int? ProtocolVersion { get; init; }
}
