using Mesh.Protocol;

namespace Mesh.Control.Relay;

/// <summary>Settings of the embedded relay (config: <c>derp.server</c>).</summary>
public sealed class RelayServerOptions
{
    /// <summary>
    /// The relay's static Curve25519 private key (32 bytes), against which clients prove their node
    /// keys. Null: a fresh key for this process, which is fine as long as clients do not pin it.
    /// </summary>
    public byte[]? PrivateKey { get; set; }

    /// <summary>
    /// Frames queued per client before the oldest is dropped (see <see cref="RelayServer"/>). Bounds
    /// a client's memory on the relay to about this many packets (each at most 64 KiB, typically one
    /// WireGuard datagram of ~1.4 KiB) whatever its peers send and however slowly it reads.
    /// </summary>
    public int SendQueueCapacity { get; set; } = 128;

    /// <summary>A KeepAlive frame is sent to a client that has received nothing for this long. Zero disables it.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a client has to answer ServerKey with ClientInfo.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a connection being closed gets to take its Error frame and close handshake before it is aborted.</summary>
    public TimeSpan CloseGracePeriod { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Decides whether a node may use the relay: whether its node key belongs to a node of this
/// network. Asked once per connection, after the client has proved it holds the key; revoking a
/// node later is <see cref="RelayServer.Disconnect"/>. Implementations must be thread-safe.
/// </summary>
public interface IRelayAuthorizer
{
    ValueTask<bool> IsAuthorizedAsync(NodeKey node, CancellationToken cancellationToken);
}

/// <summary>Ready-made authorizers.</summary>
public static class RelayAuthorizer
{
    public static IRelayAuthorizer From(Func<NodeKey, bool> isAuthorized)
    {
        ArgumentNullException.ThrowIfNull(isAuthorized);
        return new FuncAuthorizer(isAuthorized);
    }

    private sealed class FuncAuthorizer(Func<NodeKey, bool> isAuthorized) : IRelayAuthorizer
    {
        public ValueTask<bool> IsAuthorizedAsync(NodeKey node, CancellationToken cancellationToken) => ValueTask.FromResult(isAuthorized(node));
    }
}
