using System.Buffers.Binary;

namespace Mesh.Protocol.Control;

/// <summary>
/// Framing of a streamed map response: each sealed message is preceded by its length.
/// <code>
/// 0  length n (4 bytes, big-endian, at most MaxFrameSize)
/// 4  sealed message (n bytes, see ControlSession)
/// </code>
/// </summary>
public static class ControlFraming
{
    public const int MaxFrameSize = 16 * 1024 * 1024;
    public const string SealedContentType = "application/octet-stream";
    public const string ErrorContentType = "application/json";

    public static async ValueTask WriteFrameAsync(Stream stream, ReadOnlyMemory<byte> sealedMessage, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, sealedMessage.Length);
        await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(sealedMessage, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads one frame; null at a clean end of stream. Throws on a truncated or oversized frame.</summary>
    public static async ValueTask<byte[]?> ReadFrameAsync(Stream stream, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        var read = await ReadFullyAsync(stream, header, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < 4)
        {
            throw new ControlProtocolException("the map stream ended inside a frame header");
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length is <= 0 or > MaxFrameSize)
        {
            throw new ControlProtocolException($"map frame of {length} bytes is out of range (1..{MaxFrameSize})");
        }

        var frame = new byte[length];
        if (await ReadFullyAsync(stream, frame, cancellationToken).ConfigureAwait(false) != length)
        {
            throw new ControlProtocolException("the map stream ended inside a frame");
        }

        return frame;
    }

    private static async ValueTask<int> ReadFullyAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}
