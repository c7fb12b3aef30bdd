using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using Mesh.Protocol;
using Mesh.Protocol.Relay;

namespace Mesh.Control.Relay;

/// <summary>A frame waiting in a client's send queue: a pooled buffer and the length used.</summary>
internal readonly record struct QueuedFrame(byte[] Buffer, int Length)
{
    public RelayFrameType Type => (RelayFrameType)Buffer[0];

    public static QueuedFrame Rent(int length) => new(ArrayPool<byte>.Shared.Rent(length), length);

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}

/// <summary>
/// One authenticated client: its socket, its bounded send queue, and the one writer that drains
/// the queue onto the socket (a WebSocket takes one send at a time). Anyone may enqueue; when the
/// queue is full the oldest frame is dropped and counted. Closing completes the queue, sends the
/// Error frame (if there is a reason) and the close handshake, and aborts the socket if the client
/// has not finished within the grace period.
/// </summary>
internal sealed class RelayConnection : IDisposable
{
    private readonly Channel<QueuedFrame> _queue;
    private readonly RelayServer _server;
    private readonly CancellationTokenSource _abort;
    private readonly TimeSpan _grace;
    private (RelayErrorCode Code, string Message)? _closeReason;
    private int _closing;
    private int _wroteSinceTick;

    public RelayConnection(RelayServer server, NodeKey key, WebSocket socket, int capacity, TimeSpan grace, CancellationToken aborted)
    {
        _server = server;
        Key = key;
        Socket = socket;
        _grace = grace;
        _abort = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        _queue = Channel.CreateBounded<QueuedFrame>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            OnDropped);
    }

    public NodeKey Key { get; }

    public WebSocket Socket { get; }

    /// <summary>Cancelled when the connection must stop now: the request aborted, or the grace period ran out.</summary>
    public CancellationToken Aborted => _abort.Token;

    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    public int QueueDepth => _queue.Reader.Count;

    /// <summary>Queues a frame, taking ownership of its buffer. False (buffer returned) once the connection is closing.</summary>
    public bool TryEnqueue(QueuedFrame frame)
    {
        if (_queue.Writer.TryWrite(frame))
        {
            return true;
        }

        frame.Return();
        return false;
    }

    /// <summary>Enqueues a KeepAlive unless something was written since the last call (the keepalive timer's tick).</summary>
    public void KeepAliveTick()
    {
        if (Interlocked.Exchange(ref _wroteSinceTick, 0) == 0 && !IsClosing)
        {
            var frame = QueuedFrame.Rent(RelayFrames.HeaderSize);
            RelayFrames.WriteKeepAlive(frame.Buffer);
            TryEnqueue(frame);
        }
    }

    /// <summary>Starts closing: nothing more is queued; the writer sends <paramref name="code"/> (if any) and the close handshake. Idempotent.</summary>
    public void Close(RelayErrorCode? code, string message)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        if (code is { } c)
        {
            _closeReason = (c, message);
        }

        _queue.Writer.TryComplete();
        try
        {
            _abort.CancelAfter(_grace);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Drains the queue onto the socket until the connection closes, then says goodbye.</summary>
    public async Task WriteLoopAsync()
    {
        var token = _abort.Token;
        try
        {
            var reader = _queue.Reader;
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    try
                    {
                        await Socket.SendAsync(frame.Buffer.AsMemory(0, frame.Length), WebSocketMessageType.Binary, endOfMessage: true, token).ConfigureAwait(false);
                        Volatile.Write(ref _wroteSinceTick, 1);
                        if (frame.Type == RelayFrameType.RecvPacket)
                        {
                            _server.CountForwarded();
                        }
                    }
                    finally
                    {
                        frame.Return();
                    }
                }
            }

            if (_closeReason is { } reason)
            {
                var error = new byte[RelayFrames.ErrorFrameSize(reason.Message)];
                RelayFrames.WriteError(error, reason.Code, reason.Message);
                await Socket.SendAsync(error, WebSocketMessageType.Binary, endOfMessage: true, token).ConfigureAwait(false);
            }

            if (Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                var status = _closeReason is null ? WebSocketCloseStatus.NormalClosure : WebSocketCloseStatus.PolicyViolation;
                await Socket.CloseOutputAsync(status, null, token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
        {
            // The client went away or took too long: nothing left to tell it.
        }
        finally
        {
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var left))
            {
                left.Return();
            }
        }
    }

    public void Dispose() => _abort.Dispose();

    private void OnDropped(QueuedFrame frame)
    {
        frame.Return();
        _server.CountDropped();
    }
}
