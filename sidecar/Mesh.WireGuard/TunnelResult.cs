namespace Mesh.WireGuard;

/// <summary>What the I/O layer must do after a call into the core.</summary>
public enum TunnelAction
{
    /// <summary>Nothing to write.</summary>
    Done,

    /// <summary>Send the output buffer's first <see cref="TunnelResult.Length"/> bytes to the peer's endpoint.</summary>
    SendToPeer,

    /// <summary>Send the output (a cookie reply) back to the datagram's source address, which may not be a known peer's.</summary>
    SendToSource,

    /// <summary>Write the output (a decrypted IP packet) to the TUN device.</summary>
    WriteToTunnel,

    /// <summary>The input was dropped; <see cref="TunnelResult.Reason"/> says why.</summary>
    Drop,
}

/// <summary>Why the core dropped a packet. Counted by the device.</summary>
public enum DropReason
{
    None,
    Malformed,
    UnknownMessage,
    NoPeerForDestination,
    NoPrivateKey,
    InvalidMac1,
    UnknownPeer,
    HandshakeRejected,
    HandshakeRateLimited,
    UnknownIndex,
    KeypairExpired,
    AuthenticationFailed,
    Replay,
    SourceNotAllowed,
    BufferTooSmall,
    InvalidInnerPacket,
}

/// <summary>
/// The result of <see cref="WireGuardEngine.Encapsulate"/>, <see cref="WireGuardEngine.Decapsulate"/> and
/// <see cref="Peer.UpdateTimers"/>. <see cref="Peer"/> is set whenever the input was authenticated as
/// coming from (or the output is addressed to) a peer, so the device can roam the peer's endpoint.
/// </summary>
public readonly struct TunnelResult
{
    private TunnelResult(TunnelAction action, int length, Peer? peer, DropReason reason)
    {
        Action = action;
        Length = length;
        Peer = peer;
        Reason = reason;
    }

    public TunnelAction Action { get; }
    public int Length { get; }
    public Peer? Peer { get; }
    public DropReason Reason { get; }

    public static TunnelResult Done(Peer? peer = null) => new(TunnelAction.Done, 0, peer, DropReason.None);

    public static TunnelResult SendToPeer(Peer peer, int length) => new(TunnelAction.SendToPeer, length, peer, DropReason.None);

    public static TunnelResult SendToSource(int length) => new(TunnelAction.SendToSource, length, null, DropReason.None);

    public static TunnelResult WriteToTunnel(Peer peer, int length) => new(TunnelAction.WriteToTunnel, length, peer, DropReason.None);

    public static TunnelResult Drop(DropReason reason, Peer? peer = null) => new(TunnelAction.Drop, 0, peer, reason);

    public override string ToString() => Action == TunnelAction.Drop ? $"Drop({Reason})" : $"{Action}({Length})";
}
