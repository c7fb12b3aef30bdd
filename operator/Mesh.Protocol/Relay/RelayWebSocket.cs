using System.Net.WebSockets;

namespace Mesh.Protocol.Relay;

/// <summary>Thrown when the other side of a relay connection breaks the protocol, or refuses us.</summary>
public sealed class RelayException : Exception
{
    public RelayException(string message, RelayErrorCode? code = null, Exception? innerException = null)
        : base(message, innerException) => Code = code;

    /// <summary>The code of the server's Error frame, when it sent one.</summary>
    public RelayErrorCode? Code { get; }
}

/// <summary>
/// Reading relay frames off a WebSocket, shared by the relay server and <see cref="RelayClient"/>:
/// one frame per binary message, at most <see cref="RelayFrames.MaxFrameSize"/> bytes.
/// </summary>
public static class RelayWebSocket
{
    /// <summary>The WebSocket subprotocol both sides name, so a proxy or a log can tell what the connection carries.</summary>
    public const string SubProtocol = "mesh-relay-v1";

    /// <summary>
    /// Reads one whole message into <paramref name="buffer"/> (at least <see cref="RelayFrames.MaxFrameSize"/>
    /// bytes) and returns its length, or -1 when the peer closed. Throws <see cref="RelayException"/>
    /// for a text message or one longer than the buffer; the caller then closes the connection.
    /// </summary>
    public static async ValueTask<int> ReceiveMessageAsync(WebSocket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var total = 0;
        while (true)
        {
            if (total == buffer.Length)
            {
                throw new RelayException($"a relay message is longer than {buffer.Length} bytes", RelayErrorCode.ProtocolError);
            }

            var result = await socket.ReceiveAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return -1;
            }

            if (result.MessageType != WebSocketMessageType.Binary)
            {
                throw new RelayException("relay frames travel in binary WebSocket messages, not text", RelayErrorCode.ProtocolError);
            }

            total += result.Count;
            if (result.EndOfMessage)
            {
                return total;
            }
        }
    }
}
