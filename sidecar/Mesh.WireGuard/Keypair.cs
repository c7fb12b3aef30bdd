using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard;

/// <summary>
/// One session's transport keys (whitepaper §5.4.5–§5.4.6): a sending key with its atomically
/// incremented counter, a receiving key with its replay window, the two indices, and the age that
/// the timers of §6 compare against. A peer holds up to three: previous, current and next.
/// </summary>
public sealed class Keypair : IDisposable
{
    private readonly Lock _replayLock = new();
    private readonly ReplayWindow _replay = new();
    private long _sendCounter;
    private int _disposed;

    internal Keypair(Peer peer, ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, bool isInitiator, uint localIndex, uint remoteIndex, TimeSpan created)
    {
        Peer = peer;
        Send = new AeadContext(sendKey);
        Receive = new AeadContext(receiveKey);
        IsInitiator = isInitiator;
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        Created = created;
    }

    public Peer Peer { get; }
    public AeadContext Send { get; }
    public AeadContext Receive { get; }
    public bool IsInitiator { get; }
    public uint LocalIndex { get; }
    public uint RemoteIndex { get; }
    public TimeSpan Created { get; }
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Messages sent so far with this keypair.</summary>
    public ulong SendCounter => (ulong)Volatile.Read(ref _sendCounter);

    /// <summary>Takes the next nonce; callers check it against <see cref="Protocol.RejectAfterMessages"/>.</summary>
    internal ulong NextSendCounter() => (ulong)(Interlocked.Increment(ref _sendCounter) - 1);

    /// <summary>§6.2: a keypair sends for at most Reject-After-Time and Reject-After-Messages.</summary>
    internal bool CanSend(TimeSpan now) =>
        !IsDisposed && now - Created < Protocol.RejectAfterTime && SendCounter < Protocol.RejectAfterMessages;

    internal bool CanReceive(TimeSpan now) => !IsDisposed && now - Created < Protocol.RejectAfterTime;

    /// <summary>Records an authenticated counter; false for a replay or a counter past the limit.</summary>
    internal bool AcceptCounter(ulong counter)
    {
        lock (_replayLock)
        {
            return _replay.TryAccept(counter, Protocol.RejectAfterMessages);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Send.Dispose();
            Receive.Dispose();
        }
    }
}
