using System.Net;

namespace Mesh.Net.Uapi;

/// <summary>The device as <c>get=1</c> reports it. Keys are raw 32-byte Curve25519 keys.</summary>
public sealed class UapiDeviceState
{
    /// <summary>The static private key, or null when none is set (then <c>private_key</c> is omitted).</summary>
    public byte[]? PrivateKey { get; init; }

    /// <summary>The UDP listen port; 0 means unbound and is omitted from the reply.</summary>
    public int ListenPort { get; init; }

    /// <summary>The SO_MARK of outgoing packets; 0 means none and is omitted from the reply.</summary>
    public uint FwMark { get; init; }

    /// <summary>Peers in the order they are reported.</summary>
    public IReadOnlyList<UapiPeerState> Peers { get; init; } = [];
}

/// <summary>One peer as <c>get=1</c> reports it.</summary>
public sealed class UapiPeerState
{
    /// <summary>The peer's static public key (32 bytes).</summary>
    public required byte[] PublicKey { get; init; }

    /// <summary>The preshared key, or null for none (reported as 64 zeros, as wireguard-go does).</summary>
    public byte[]? PresharedKey { get; init; }

    /// <summary>The current endpoint, or null when unknown (then <c>endpoint</c> is omitted).</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Persistent keepalive interval in seconds; 0 is off.</summary>
    public int PersistentKeepaliveInterval { get; init; }

    /// <summary>Wall-clock time of the last completed handshake, seconds since the Unix epoch; 0 for never.</summary>
    public long LastHandshakeTimeSec { get; init; }

    /// <summary>The nanoseconds part of the last handshake time (0-999,999,999).</summary>
    public long LastHandshakeTimeNsec { get; init; }

    /// <summary>Bytes received from this peer.</summary>
    public ulong RxBytes { get; init; }

    /// <summary>Bytes sent to this peer.</summary>
    public ulong TxBytes { get; init; }

    /// <summary>Allowed IPs, masked to their prefix, in the order they are reported.</summary>
    public IReadOnlyList<IPNetwork> AllowedIps { get; init; } = [];

    /// <summary>Always 1: the only WireGuard protocol version.</summary>
    public int ProtocolVersion { get; init; } = 1;
}
