namespace Mesh.WireGuard;

/// <summary>
/// The constants of the WireGuard protocol, with the whitepaper's names
/// (https://www.wireguard.com/papers/wireguard.pdf). "Specification" values are fixed by the paper;
/// "implementation" values are this implementation's choices.
/// </summary>
public static class Protocol
{
    // ---- Specification: §6.1 "Preliminaries", table of constants ----
    /// <summary>Rekey-After-Messages: 2^60.</summary>
    public const ulong RekeyAfterMessages = 1UL << 60;

    /// <summary>Reject-After-Messages: 2^64 − 2^13 − 1.</summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>§6.4 jitter added to each handshake retransmission: up to a third of a second.</summary>
    public static readonly TimeSpan RekeyTimeoutJitterMax = TimeSpan.FromMilliseconds(334);

    /// <summary>§5.4.7: the cookie secret changes every two minutes; a received cookie is used for as long.</summary>
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    // ---- Implementation ----
    /// <summary>Handshake initiations sent before giving up: RekeyAttemptTime / RekeyTimeout.</summary>
    public const int MaxTimerHandshakes = 90 / 5;

    /// <summary>Initiations from one peer faster than this are dropped (flood protection, as the reference implementations do).</summary>
    public static readonly TimeSpan HandshakeInitiationRate = TimeSpan.FromMilliseconds(20);

    /// <summary>Packets queued per peer while it has no session; the oldest is dropped beyond this.</summary>
    public const int MaxStagedPackets = 128;

    /// <summary>Transport payloads are zero-padded to a multiple of this (§5.4.6).</summary>
    public const int PaddingMultiple = 16;
}
