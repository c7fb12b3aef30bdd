using System.Buffers;
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

    /// <summary>Plaintext bytes sealed per write by <see cref="WriteSealedAsync"/>: a multiple of ChaCha20's block.</summary>
    public const int SealChunkSize = 32 * 1024;

    /// <summary>
    /// Seals <paramref name="plaintext"/> on <paramref name="session"/> and writes it — as one frame of a
    /// map stream when <paramref name="framed"/>, else bare (a one-shot reply) — without ever holding the
    /// whole plaintext or ciphertext: <see cref="SealChunkSize"/> bytes at a time are read, encrypted in
    /// place in one pooled buffer, and written (each write waits for the connection to take it, so a
    /// slow reader holds one chunk, not a map). The bytes are those of
    /// <c>WriteFrameAsync(stream, session.Seal(whole plaintext, path))</c>.
    /// </summary>
    public static async ValueTask WriteSealedAsync(Stream stream, ControlSession session, string path, ISealedPlaintext plaintext, bool framed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(plaintext);
        var length = plaintext.Length;
        var sealedLength = (long)ControlSession.HeaderSize + length + ChaChaPolySealer.TagSize;
        if (framed && sealedLength > MaxFrameSize)
        {
            throw new ControlProtocolException($"a map frame of {sealedLength} bytes is over the {MaxFrameSize}-byte limit");
        }

        var prefix = (framed ? 4 : 0) + ControlSession.HeaderSize;
        var buffer = ArrayPool<byte>.Shared.Rent(prefix + SealChunkSize + ChaChaPolySealer.TagSize);
        try
        {
            if (framed)
            {
                BinaryPrimitives.WriteInt32BigEndian(buffer, (int)sealedLength);
            }

            using var sealer = session.BeginSeal(buffer.AsSpan(prefix - ControlSession.HeaderSize, ControlSession.HeaderSize), path);
            var start = prefix;
            var remaining = length;
            while (true)
            {
                var take = Math.Min(SealChunkSize, remaining);
                var read = 0;
                while (read < take)
                {
                    var n = plaintext.Read(buffer.AsSpan(start + read, take - read));
                    if (n == 0)
                    {
                        throw new InvalidOperationException($"the plaintext ended after {length - remaining + read} of its {length} bytes");
                    }

                    read += n;
                }

                var chunk = buffer.AsSpan(start, take);
                sealer.Encrypt(chunk, chunk);
                remaining -= take;
                var end = start + take;
                if (remaining == 0)
                {
                    if (plaintext.Read(buffer.AsSpan(end, 1)) != 0)
                    {
                        throw new InvalidOperationException($"the plaintext is longer than its {length} bytes");
                    }

                    sealer.Finish(buffer.AsSpan(end, ChaChaPolySealer.TagSize));
                    end += ChaChaPolySealer.TagSize;
                }

                await stream.WriteAsync(buffer.AsMemory(0, end), cancellationToken).ConfigureAwait(false);
                if (remaining == 0)
                {
                    break;
                }

                start = 0;
            }

            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
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

/// <summary>
/// A plaintext that <see cref="ControlFraming.WriteSealedAsync"/> reads in pieces: its exact length
/// first, then its bytes in order.
/// </summary>
public interface ISealedPlaintext
{
    int Length { get; }

    /// <summary>Copies the next bytes into <paramref name="destination"/>; returns how many (0 only at the end).</summary>
    int Read(Span<byte> destination);
}

/// <summary>An <see cref="ISealedPlaintext"/> over bytes already in memory.</summary>
public sealed class BytesPlaintext(ReadOnlyMemory<byte> bytes) : ISealedPlaintext
{
    private int _position;

    public int Length => bytes.Length;

    public int Read(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, bytes.Length - _position);
        bytes.Span.Slice(_position, n).CopyTo(destination);
        _position += n;
        return n;
    }
}
