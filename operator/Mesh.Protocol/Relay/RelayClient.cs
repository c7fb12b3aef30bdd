using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Threading.Channels;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Relay;

/// <summary>Options of a <see cref="RelayClient"/>.</summary>
public sealed class RelayClientOptions
{
    /// <summary>The relay's static key as the node's netmap publishes it; when set, any other key is refused.</summary>
    public NoisePublicKey? ExpectedRelayKey { get; init; }

    /// <summary>
    /// Messages buffered for <see cref="RelayClient.ReceiveAsync"/>. When the caller falls behind, the
    /// oldest is dropped and counted in <see cref="RelayClient.ReceiveDropped"/>: relayed packets are
    /// datagrams, and the newest are the ones still worth delivering.
    /// </summary>
    public int ReceiveQueueCapacity { get; init; } = 1024;

    /// <summary>Connection and relay handshake together.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Extra WebSocket settings: proxy, TLS validation, request headers.</summary>
    public Action<ClientWebSocketOptions>? ConfigureWebSocket { get; init; }
}

/// <summary>What <see cref="RelayClient.ReceiveAsync"/> yields.</summary>
public enum RelayMessageKind
{
    /// <summary>A packet from <see cref="RelayMessage.Peer"/>.</summary>
    Packet,

    /// <summary>A packet we sent to <see cref="RelayMessage.Peer"/> found no such client on the relay.</summary>
    PeerGone,
}

/// <summary>A received packet or notice. <see cref="Packet"/> belongs to the receiver.</summary>
public readonly record struct RelayMessage(RelayMessageKind Kind, NodeKey Peer, ReadOnlyMemory<byte> Packet, RelayPeerGoneReason Reason = RelayPeerGoneReason.NotConnected);

/// <summary>
/// A node's connection to a relay (the coordinator's <c>/derp</c> endpoint, a WebSocket; see
/// RELAY.md): proves the node key, then sends packets to peers by node key and receives theirs.
/// It carries opaque bytes (WireGuard messages, already encrypted end to end); it neither knows
/// nor cares what they are. One connection, no retries: when <see cref="Completion"/> finishes the
/// caller reconnects with <see cref="ConnectAsync"/> if it still needs the relay.
/// </summary>
/// <remarks>
/// Threading: <see cref="SendAsync"/> and <see cref="PingAsync"/> may be called concurrently
/// (sends are serialized); <see cref="ReceiveAsync"/> by one reader at a time. A received packet
/// is copied into its own array, which the caller keeps.
/// </remarks>
public sealed class RelayClient : IAsyncDisposable
{
    private readonly WebSocket _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Channel<RelayMessage> _received;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource> _pings = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _receiveDropped;
    private long _nextPing;
    private int _disposed;

    private RelayClient(WebSocket socket, NodeKey nodeKey, NoisePublicKey relayKey, TimeSpan keepAlive, int receiveCapacity)
    {
        _socket = socket;
        NodeKey = nodeKey;
        RelayKey = relayKey;
        ServerKeepAlive = keepAlive;
        _received = Channel.CreateBounded<RelayMessage>(
            new BoundedChannelOptions(Math.Max(1, receiveCapacity)) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true },
            _ => Interlocked.Increment(ref _receiveDropped));
        _nextPing = RandomNumberGenerator.GetInt32(int.MaxValue);
    }

    public NodeKey NodeKey { get; }

    /// <summary>The relay's static key, as it proved by accepting our proof.</summary>
    public NoisePublicKey RelayKey { get; }

    /// <summary>How often the relay sends a KeepAlive when it has nothing else to send.</summary>
    public TimeSpan ServerKeepAlive { get; }

    /// <summary>Messages dropped because the caller did not receive them fast enough.</summary>
    public long ReceiveDropped => Interlocked.Read(ref _receiveDropped);

    /// <summary>Finishes when the connection ends, whoever ended it; faults with <see cref="RelayException"/> when the relay sent an Error.</summary>
    public Task Completion => _completion.Task;

    /// <summary>
    /// Connects to <paramref name="url"/> (http, https, ws or wss; the relay path included, e.g.
    /// <c>http://coordinator:8080/derp</c>) and proves <paramref name="nodePrivateKey"/>. Throws
    /// <see cref="RelayException"/> when the relay refuses (its <see cref="RelayException.Code"/>
    /// says why) or misbehaves, <see cref="WebSocketException"/> when it cannot be reached, and
    /// <see cref="TimeoutException"/> after <see cref="RelayClientOptions.ConnectTimeout"/>.
    /// </summary>
    public static async Task<RelayClient> ConnectAsync(Uri url, ReadOnlyMemory<byte> nodePrivateKey, RelayClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (nodePrivateKey.Length != X25519.KeySize)
        {
            throw new ArgumentException($"a node private key is {X25519.KeySize} bytes", nameof(nodePrivateKey));
        }

        options ??= new RelayClientOptions();
        var publicKey = new byte[X25519.KeySize];
        X25519.PublicKey(nodePrivateKey.Span, publicKey);
        var nodeKey = new NodeKey(new NoisePublicKey(publicKey));

        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(RelayWebSocket.SubProtocol);
        socket.Options.KeepAliveInterval = TimeSpan.Zero; // the relay's own KeepAlive frames do this job
        options.ConfigureWebSocket?.Invoke(socket.Options);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(ToWebSocketUri(url), timeout.Token).ConfigureAwait(false);
            var (relayKey, keepAlive) = await HandshakeAsync(socket, nodePrivateKey, nodeKey, options, timeout.Token).ConfigureAwait(false);
            var client = new RelayClient(socket, nodeKey, relayKey, keepAlive, options.ReceiveQueueCapacity);
            _ = Task.Run(client.ReadLoopAsync, CancellationToken.None);
            return client;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            socket.Abort();
            socket.Dispose();
            throw new TimeoutException($"the relay at {url} did not complete the connection within {options.ConnectTimeout.TotalSeconds:0.#} s");
        }
        catch
        {
            socket.Abort();
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="packet"/> to the node with key <paramref name="destination"/> through the relay.</summary>
    public async ValueTask SendAsync(NodeKey destination, ReadOnlyMemory<byte> packet, CancellationToken cancellationToken = default)
    {
        if (packet.Length > RelayFrames.MaxPacketSize)
        {
            throw new ArgumentException($"a relayed packet is at most {RelayFrames.MaxPacketSize} bytes", nameof(packet));
        }

        var buffer = ArrayPool<byte>.Shared.Rent(RelayFrames.HeaderSize + RelayFrames.KeySize + packet.Length);
        try
        {
            var length = RelayFrames.WritePacket(buffer, RelayFrameType.SendPacket, destination, packet.Span);
            await SendFrameAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The next received packet or notice. Throws <see cref="RelayException"/> (or the reason the
    /// connection ended) once the connection has closed and everything received before has been read.
    /// </summary>
    public async ValueTask<RelayMessage> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _received.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e)
        {
            throw e.InnerException as RelayException ?? new RelayException("the relay connection is closed", innerException: e.InnerException);
        }
    }

    public bool TryReceive(out RelayMessage message) => _received.Reader.TryRead(out message);

    /// <summary>Round-trip time to the relay.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var data = (ulong)Interlocked.Increment(ref _nextPing);
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pings[data] = pong;
        try
        {
            var frame = new byte[RelayFrames.HeaderSize + RelayFrames.PingDataSize];
            RelayFrames.WritePing(frame, RelayFrameType.Ping, data);
            var start = Stopwatch.GetTimestamp();
            await SendFrameAsync(frame, cancellationToken).ConfigureAwait(false);
            await pong.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return Stopwatch.GetElapsedTime(start);
        }
        finally
        {
            _pings.TryRemove(data, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await AnswerCloseAsync().ConfigureAwait(false);
        try
        {
            // Give the relay a moment to answer the close, so both sides end cleanly.
            await _completion.Task.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or RelayException)
        {
        }

        await _closing.CancelAsync().ConfigureAwait(false);
        _socket.Abort();
        await _completion.Task.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        _socket.Dispose();
        _sendLock.Dispose();
    }

    private static Uri ToWebSocketUri(Uri url)
    {
        var builder = new UriBuilder(url);
        builder.Scheme = url.Scheme switch
        {
            "http" or "ws" => "ws",
            "https" or "wss" => "wss",
            _ => throw new ArgumentException($"a relay URL is http(s) or ws(s), not {url.Scheme}", nameof(url)),
        };
        return builder.Uri;
    }

    private static async Task<(NoisePublicKey RelayKey, TimeSpan KeepAlive)> HandshakeAsync(
        WebSocket socket, ReadOnlyMemory<byte> nodePrivateKey, NodeKey nodeKey, RelayClientOptions options, CancellationToken cancellationToken)
    {
        var buffer = new byte[RelayFrames.MaxFrameSize];
        var length = await RelayWebSocket.ReceiveMessageAsync(socket, buffer, cancellationToken).ConfigureAwait(false);
        var challenge = new byte[RelayFrames.ChallengeSize];
        var relayKey = ReadServerKey(buffer.AsSpan(0, Math.Max(length, 0)), length < 0, challenge);
        if (options.ExpectedRelayKey is { } expected && expected != relayKey)
        {
            throw new RelayException($"the relay presented key {relayKey}, not the expected {expected}", RelayErrorCode.BadProof);
        }

        var proof = new byte[RelayFrames.ProofSize];
        if (!RelayProof.TryCompute(nodePrivateKey.Span, nodeKey.Value, relayKey, challenge, proof))
        {
            throw new RelayException("the relay's key is not a usable Curve25519 public key", RelayErrorCode.ProtocolError);
        }

        var info = new byte[RelayFrames.HeaderSize + RelayFrames.ClientInfoPayloadSize];
        RelayFrames.WriteClientInfo(info, nodeKey, proof);
        await socket.SendAsync(info, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);

        length = await RelayWebSocket.ReceiveMessageAsync(socket, buffer, cancellationToken).ConfigureAwait(false);
        return (relayKey, ReadServerInfo(buffer.AsSpan(0, Math.Max(length, 0)), length < 0));
    }

    private static NoisePublicKey ReadServerKey(ReadOnlySpan<byte> message, bool closed, Span<byte> challenge)
    {
        if (closed || !RelayFrames.TryReadFrame(message, out var type, out var payload)
            || type != RelayFrameType.ServerKey || !RelayFrames.TryParseServerKey(payload, out var relayKey, challenge))
        {
            throw new RelayException("the relay did not open with a valid ServerKey frame (is this a MeshOperator relay of a compatible version?)", RelayErrorCode.ProtocolError);
        }

        return relayKey;
    }

    private static TimeSpan ReadServerInfo(ReadOnlySpan<byte> message, bool closed)
    {
        if (closed || !RelayFrames.TryReadFrame(message, out var type, out var payload))
        {
            throw new RelayException("the relay closed the connection during the handshake", RelayErrorCode.ProtocolError);
        }

        if (type == RelayFrameType.Error && RelayFrames.TryParseError(payload, out var code, out var text))
        {
            throw new RelayException($"the relay refused the connection ({code}): {text}", code);
        }

        if (type != RelayFrameType.ServerInfo || !RelayFrames.TryParseServerInfo(payload, out var keepAlive))
        {
            throw new RelayException($"the relay answered ClientInfo with {type}, not ServerInfo", RelayErrorCode.ProtocolError);
        }

        return keepAlive;
    }

    private async ValueTask SendFrameAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException)
        {
            throw new RelayException("the relay connection is closed", innerException: e);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[RelayFrames.MaxFrameSize];
        Exception? failure = null;
        try
        {
            while (true)
            {
                var length = await RelayWebSocket.ReceiveMessageAsync(_socket, buffer, _closing.Token).ConfigureAwait(false);
                if (length < 0)
                {
                    break;
                }

                if (!RelayFrames.TryReadFrame(buffer.AsSpan(0, length), out var type, out _))
                {
                    throw new RelayException("the relay sent a malformed frame", RelayErrorCode.ProtocolError);
                }

                var payload = buffer.AsMemory(RelayFrames.HeaderSize, length - RelayFrames.HeaderSize);
                if (type == RelayFrameType.Error)
                {
                    failure = RelayFrames.TryParseError(payload.Span, out var code, out var message)
                        ? new RelayException($"the relay closed the connection ({code}): {message}", code)
                        : new RelayException("the relay sent a malformed Error frame", RelayErrorCode.ProtocolError);
                    break;
                }

                if (Handle(type, payload.Span) is { } ping)
                {
                    var pong = new byte[RelayFrames.HeaderSize + RelayFrames.PingDataSize];
                    RelayFrames.WritePing(pong, RelayFrameType.Pong, ping);
                    await SendFrameAsync(pong, _closing.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is RelayException)
        {
            failure = e;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The connection broke or was disposed: a plain end, reported as such.
        }
        catch (Exception e)
        {
            failure = new RelayException("the relay connection failed", innerException: e);
        }

        await AnswerCloseAsync().ConfigureAwait(false);
        _received.Writer.TryComplete(failure);
        foreach (var ping in _pings.Values)
        {
            ping.TrySetException(failure ?? new RelayException("the relay connection is closed"));
        }

        if (failure is not null)
        {
            _completion.TrySetException(failure);
        }
        else
        {
            _completion.TrySetResult();
        }
    }

    /// <summary>Sends our close (or answers the relay's), unless the socket is already past that.</summary>
    private async Task AnswerCloseAsync()
    {
        if (_socket.State != WebSocketState.CloseReceived && _socket.State != WebSocketState.Open)
        {
            return;
        }

        try
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _sendLock.WaitAsync(grace.Token).ConfigureAwait(false);
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, grace.Token).ConfigureAwait(false);
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Handles one frame; returns the data of a Ping to answer, if it was one.</summary>
    private ulong? Handle(RelayFrameType type, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case RelayFrameType.RecvPacket when RelayFrames.TryParsePacket(payload, out var source, out var packet):
                _received.Writer.TryWrite(new RelayMessage(RelayMessageKind.Packet, source, packet.ToArray()));
                return null;
            case RelayFrameType.PeerGone when RelayFrames.TryParsePeerGone(payload, out var peer, out var reason):
                _received.Writer.TryWrite(new RelayMessage(RelayMessageKind.PeerGone, peer, ReadOnlyMemory<byte>.Empty, reason));
                return null;
            case RelayFrameType.Ping when RelayFrames.TryParsePing(payload, out var data):
                return data;
            case RelayFrameType.Pong when RelayFrames.TryParsePing(payload, out var data):
                if (_pings.TryGetValue(data, out var waiter))
                {
                    waiter.TrySetResult();
                }

                return null;
            case RelayFrameType.KeepAlive when RelayFrames.TryParseKeepAlive(payload):
                return null;
            default:
                throw new RelayException($"the relay sent an unexpected or malformed {type} frame", RelayErrorCode.ProtocolError);
        }
    }
}
