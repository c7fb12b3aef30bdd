using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Mesh.Protocol;
using Mesh.Protocol.Relay;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Control.Relay;

/// <summary>
/// The coordinator's embedded relay (DERP's job, our own protocol: Mesh.Protocol/Relay/RELAY.md).
/// When two nodes have no direct UDP path, each keeps one WebSocket to <c>/derp</c> and sends its
/// WireGuard packets here addressed by the peer's node key; the relay hands them to the peer's
/// connection. It sees only ciphertext and keys: WireGuard encrypts end to end.
/// </summary>
/// <remarks>
/// <para>Admission: the client proves it holds its node key (<see cref="RelayProof"/>), then
/// <see cref="IRelayAuthorizer"/> says whether that key is a node of this network. Anything else
/// gets an Error frame and a closed connection.</para>
/// <para>One connection per node key: a newer one replaces the older, which is told
/// <see cref="RelayErrorCode.Replaced"/> (a node that reconnected after a network change must not
/// be shadowed by its own half-dead connection).</para>
/// <para>Memory: each client has a send queue bounded at <see cref="RelayServerOptions.SendQueueCapacity"/>
/// frames; when a client reads slower than its peers send, the <em>oldest</em> queued frame is dropped
/// and counted in <see cref="PacketsDropped"/>. Oldest, because what the relay carries are datagrams
/// whose senders (TCP inside the tunnel, WireGuard's own handshake retries) have already given up on
/// the old ones, so the newest are worth more. A sender is never slowed by a slow receiver.</para>
/// <para>Per packet: one pooled buffer and no allocation; the reading side forwards inline.</para>
/// </remarks>
public sealed class RelayServer : IAsyncDisposable
{
    private readonly byte[] _privateKey;
    private readonly RelayServerOptions _options;
    private readonly IRelayAuthorizer _authorizer;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<NodeKey, RelayConnection> _clients = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ITimer? _keepAlive;
    private long _forwarded;
    private long _dropped;
    private long _toAbsentPeers;
    private long _accepted;
    private long _refused;
    private int _disposed;

    public RelayServer(RelayServerOptions options, IRelayAuthorizer authorizer, ILogger<RelayServer>? logger = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(authorizer);
        if (options.SendQueueCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "SendQueueCapacity must be at least 1");
        }

        _options = options;
        _authorizer = authorizer;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        _privateKey = new byte[X25519.KeySize];
        if (options.PrivateKey is { } key)
        {
            if (key.Length != X25519.KeySize)
            {
                throw new ArgumentException($"the relay private key is {X25519.KeySize} bytes", nameof(options));
            }

            key.CopyTo(_privateKey, 0);
        }
        else
        {
            X25519.GeneratePrivateKey(_privateKey);
        }

        var publicKey = new byte[X25519.KeySize];
        X25519.PublicKey(_privateKey, publicKey);
        PublicKey = new NoisePublicKey(publicKey);
        if (options.KeepAliveInterval > TimeSpan.Zero)
        {
            _keepAlive = _time.CreateTimer(_ => KeepAliveTick(), null, options.KeepAliveInterval, options.KeepAliveInterval);
        }
    }

    /// <summary>The relay's static public key: clients prove their node keys against it, and may pin it.</summary>
    public NoisePublicKey PublicKey { get; }

    /// <summary>Clients connected and authenticated now.</summary>
    public int ConnectedClients => _clients.Count;

    /// <summary>Packets written to their destination's connection.</summary>
    public long PacketsForwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Frames dropped from a full send queue (oldest first).</summary>
    public long PacketsDropped => Interlocked.Read(ref _dropped);

    /// <summary>Packets addressed to a node that was not connected (answered with PeerGone).</summary>
    public long PacketsToAbsentPeers => Interlocked.Read(ref _toAbsentPeers);

    /// <summary>Connections that completed the handshake and were admitted.</summary>
    public long ConnectionsAccepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections refused: bad proof, not authorized, malformed or late handshake.</summary>
    public long ConnectionsRefused => Interlocked.Read(ref _refused);

    /// <summary>Frames waiting in all send queues together.</summary>
    public int QueuedFrames
    {
        get
        {
            var total = 0;
            foreach (var client in _clients)
            {
                total += client.Value.QueueDepth;
            }

            return total;
        }
    }

    public bool IsConnected(NodeKey node) => _clients.ContainsKey(node);

    /// <summary>Closes the node's connection, if any, telling it why (the node was deleted or lost its authorization).</summary>
    public bool Disconnect(NodeKey node, string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (_clients.TryGetValue(node, out var connection))
        {
            CloseAndForget(connection, RelayErrorCode.Disconnected, reason);
            return true;
        }

        return false;
    }

    /// <summary>
    /// Serves one HTTP request at the relay path: a WebSocket upgrade (ASP.NET Core's WebSockets
    /// middleware must run first; <see cref="RelayEndpointExtensions.MapRelay"/> sees to it).
    /// Anything else is answered 426 Upgrade Required.
    /// </summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            context.Response.Headers.Upgrade = "websocket";
            await context.Response.WriteAsync("the mesh relay speaks WebSocket (subprotocol " + RelayWebSocket.SubProtocol + ")\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        var subProtocol = context.WebSockets.WebSocketRequestedProtocols.Contains(RelayWebSocket.SubProtocol) ? RelayWebSocket.SubProtocol : null;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            SubProtocol = subProtocol,
            KeepAliveInterval = TimeSpan.Zero, // KeepAlive frames do this, only when the connection is idle
        }).ConfigureAwait(false);
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        try
        {
            await RunAsync(socket, context.Connection.RemoteIpAddress, aborted.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
            RelayLog.ConnectionIoEnded(_logger, e);
        }
        catch (Exception e)
        {
            RelayLog.ConnectionFailed(_logger, e);
        }
        finally
        {
            socket.Abort();
        }
    }

    /// <summary>Closes every connection with <see cref="RelayErrorCode.ShuttingDown"/>; the host calls this when the coordinator stops.</summary>
    public void CloseAll()
    {
        foreach (var client in _clients)
        {
            CloseAndForget(client.Value, RelayErrorCode.ShuttingDown, "the relay is shutting down");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_keepAlive is not null)
        {
            await _keepAlive.DisposeAsync().ConfigureAwait(false);
        }

        CloseAll();
        await _stopping.CancelAsync().ConfigureAwait(false);
        CryptographicOperations.ZeroMemory(_privateKey);
    }

    internal int QueueDepth(NodeKey node) => _clients.TryGetValue(node, out var connection) ? connection.QueueDepth : 0;

    internal void CountForwarded() => Interlocked.Increment(ref _forwarded);

    internal void CountDropped() => Interlocked.Increment(ref _dropped);

    private void KeepAliveTick()
    {
        foreach (var client in _clients)
        {
            client.Value.KeepAliveTick();
        }
    }

    private async Task RunAsync(WebSocket socket, IPAddress? remote, CancellationToken aborted)
    {
        var buffer = new byte[RelayFrames.MaxFrameSize];
        var admitted = await AdmitAsync(socket, remote, buffer, aborted).ConfigureAwait(false);
        if (admitted is not { } node)
        {
            return;
        }

        using var connection = new RelayConnection(this, node, socket, _options.SendQueueCapacity, _options.CloseGracePeriod, aborted);
        var info = new byte[RelayFrames.HeaderSize + RelayFrames.ServerInfoPayloadSize];
        RelayFrames.WriteServerInfo(info, _options.KeepAliveInterval);
        await socket.SendAsync(info, WebSocketMessageType.Binary, endOfMessage: true, aborted).ConfigureAwait(false);

        var replaced = default(RelayConnection);
        _clients.AddOrUpdate(node, connection, (_, old) =>
        {
            replaced = old;
            return connection;
        });
        if (replaced is not null)
        {
            RelayLog.Replaced(_logger, node);
            replaced.Close(RelayErrorCode.Replaced, "a newer connection for this node key replaced this one");
        }

        Interlocked.Increment(ref _accepted);
        RelayLog.Connected(_logger, node, remote);
        var writer = Task.Run(connection.WriteLoopAsync, CancellationToken.None);
        try
        {
            await ReadLoopAsync(connection, buffer).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
            RelayLog.ConnectionIoEnded(_logger, e);
        }
        finally
        {
            _clients.TryRemove(new KeyValuePair<NodeKey, RelayConnection>(node, connection));
            connection.Close(null, string.Empty);
            await writer.ConfigureAwait(false);
            RelayLog.Disconnected(_logger, node);
        }
    }

    /// <summary>ServerKey out, ClientInfo in, proof and authorization checked. Null (Error sent) when refused.</summary>
    private async Task<NodeKey?> AdmitAsync(WebSocket socket, IPAddress? remote, byte[] buffer, CancellationToken aborted)
    {
        var challenge = new byte[RelayFrames.ChallengeSize];
        RandomNumberGenerator.Fill(challenge);
        var hello = new byte[RelayFrames.HeaderSize + RelayFrames.ServerKeyPayloadSize];
        RelayFrames.WriteServerKey(hello, PublicKey, challenge);
        await socket.SendAsync(hello, WebSocketMessageType.Binary, endOfMessage: true, aborted).ConfigureAwait(false);

        // The deadline races the receive rather than cancelling it: cancelling a WebSocket receive
        // aborts the socket, and the client should still get its Timeout error.
        using var deadlineCancel = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var receive = RelayWebSocket.ReceiveMessageAsync(socket, buffer, aborted).AsTask();
        var deadline = Task.Delay(_options.HandshakeTimeout, _time, deadlineCancel.Token);
        if (await Task.WhenAny(receive, deadline).ConfigureAwait(false) != receive)
        {
            await RefuseAsync(socket, remote, RelayErrorCode.Timeout, $"no ClientInfo within {_options.HandshakeTimeout.TotalSeconds:0.#} s", aborted).ConfigureAwait(false);
            return null;
        }

        await deadlineCancel.CancelAsync().ConfigureAwait(false);
        int length;
        try
        {
            length = await receive.ConfigureAwait(false);
        }
        catch (RelayException e)
        {
            await RefuseAsync(socket, remote, RelayErrorCode.ProtocolError, e.Message, aborted).ConfigureAwait(false);
            return null;
        }

        if (length < 0)
        {
            return null;
        }

        var (node, code, reason) = CheckClientInfo(buffer.AsSpan(0, length), challenge);
        if (code is { } refusal)
        {
            await RefuseAsync(socket, remote, refusal, reason, aborted).ConfigureAwait(false);
            return null;
        }

        if (!await _authorizer.IsAuthorizedAsync(node, aborted).ConfigureAwait(false))
        {
            await RefuseAsync(socket, remote, RelayErrorCode.Unauthorized, $"{node} is not a node of this network", aborted).ConfigureAwait(false);
            return null;
        }

        return node;
    }

    private (NodeKey Node, RelayErrorCode? Code, string Reason) CheckClientInfo(ReadOnlySpan<byte> message, ReadOnlySpan<byte> challenge)
    {
        if (!RelayFrames.TryReadFrame(message, out var type, out var payload) || type != RelayFrameType.ClientInfo
            || !RelayFrames.TryParseClientInfo(payload, out var node, out var proof))
        {
            return (default, RelayErrorCode.ProtocolError, "expected a ClientInfo frame");
        }

        if (!RelayProof.Verify(_privateKey, PublicKey, node.Value, challenge, proof))
        {
            return (node, RelayErrorCode.BadProof, $"the proof for {node} does not verify: the client does not hold that key");
        }

        return (node, null, string.Empty);
    }

    private async Task RefuseAsync(WebSocket socket, IPAddress? remote, RelayErrorCode code, string reason, CancellationToken aborted)
    {
        Interlocked.Increment(ref _refused);
        RelayLog.Refused(_logger, remote, code, reason);
        using var grace = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        grace.CancelAfter(_options.CloseGracePeriod);
        try
        {
            var error = new byte[RelayFrames.ErrorFrameSize(reason)];
            RelayFrames.WriteError(error, code, reason);
            await socket.SendAsync(error, WebSocketMessageType.Binary, endOfMessage: true, grace.Token).ConfigureAwait(false);
            await socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, null, grace.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException)
        {
        }
    }

    private async Task ReadLoopAsync(RelayConnection connection, byte[] buffer)
    {
        var socket = connection.Socket;
        while (true)
        {
            int length;
            try
            {
                length = await RelayWebSocket.ReceiveMessageAsync(socket, buffer, connection.Aborted).ConfigureAwait(false);
            }
            catch (RelayException e)
            {
                ProtocolViolation(connection, e.Message);
                continue;
            }

            if (length < 0)
            {
                return;
            }

            if (connection.IsClosing)
            {
                // Waiting for the client's side of the close handshake: discard what it still sends.
                continue;
            }

            if (Dispatch(connection, buffer.AsSpan(0, length)) is { } violation)
            {
                ProtocolViolation(connection, violation);
            }
        }
    }

    private void ProtocolViolation(RelayConnection connection, string reason)
    {
        RelayLog.ProtocolError(_logger, connection.Key, reason);
        CloseAndForget(connection, RelayErrorCode.ProtocolError, reason);
    }

    /// <summary>
    /// Starts closing a connection and removes it from the table at once (if it is still the
    /// node's current one), so it counts as gone while it waits for its close handshake.
    /// </summary>
    private void CloseAndForget(RelayConnection connection, RelayErrorCode code, string reason)
    {
        _clients.TryRemove(new KeyValuePair<NodeKey, RelayConnection>(connection.Key, connection));
        connection.Close(code, reason);
    }

    /// <summary>Handles one frame from a client; returns a description of the violation if it breaks the protocol.</summary>
    private string? Dispatch(RelayConnection from, ReadOnlySpan<byte> message)
    {
        if (!RelayFrames.TryReadFrame(message, out var type, out var payload))
        {
            return "malformed frame: the length field does not match the message";
        }

        switch (type)
        {
            case RelayFrameType.SendPacket:
                if (!RelayFrames.TryParsePacket(payload, out var destination, out var packet))
                {
                    return "malformed SendPacket";
                }

                Forward(from, destination, packet);
                return null;
            case RelayFrameType.Ping:
                if (!RelayFrames.TryParsePing(payload, out var data))
                {
                    return "malformed Ping";
                }

                var pong = QueuedFrame.Rent(RelayFrames.HeaderSize + RelayFrames.PingDataSize);
                RelayFrames.WritePing(pong.Buffer, RelayFrameType.Pong, data);
                from.TryEnqueue(pong);
                return null;
            case RelayFrameType.KeepAlive:
                return RelayFrames.TryParseKeepAlive(payload) ? null : "malformed KeepAlive";
            case RelayFrameType.Pong:
                return RelayFrames.TryParsePing(payload, out _) ? null : "malformed Pong";
            default:
                return $"a client may not send {type} frames after the handshake";
        }
    }

    private void Forward(RelayConnection from, NodeKey destination, ReadOnlySpan<byte> packet)
    {
        if (_clients.TryGetValue(destination, out var to) && !to.IsClosing)
        {
            var frame = QueuedFrame.Rent(RelayFrames.HeaderSize + RelayFrames.KeySize + packet.Length);
            RelayFrames.WritePacket(frame.Buffer, RelayFrameType.RecvPacket, from.Key, packet);
            if (to.TryEnqueue(frame))
            {
                return;
            }
        }

        Interlocked.Increment(ref _toAbsentPeers);
        var gone = QueuedFrame.Rent(RelayFrames.HeaderSize + RelayFrames.PeerGonePayloadSize);
        RelayFrames.WritePeerGone(gone.Buffer, destination, RelayPeerGoneReason.NotConnected);
        from.TryEnqueue(gone);
    }
}
