using System.Buffers.Binary;
using System.Security.Cryptography;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Control;

/// <summary>
/// One established control-channel session: the two transport keys that a control handshake
/// derived, with a send counter and a replay window. Sealed messages reuse WireGuard's transport
/// layout, so the receiver finds the session by index before it decrypts anything:
/// <code>
///  0  type = 4, reserved     (4 bytes)
///  4  receiver index         (4 bytes, little-endian)
///  8  counter                (8 bytes, little-endian)
/// 16  ciphertext + tag       (ChaCha20-Poly1305, associated data = the request path)
/// </code>
/// Binding the path as associated data means a sealed register request can't be replayed to the
/// map endpoint. Thread-safe: any number of threads may seal and open at once.
/// </summary>
public sealed class ControlSession : IDisposable
{
    public const int HeaderSize = 16;
    private const int TagSize = 16;
    private readonly AeadContext _send;
    private readonly AeadContext _receive;
    private readonly byte[] _sendKey;
    private readonly Lock _replayLock = new();
    private readonly ReplayWindow _replay = new();
    private readonly TimeProvider _time;
    private long _counter;
    private long _lastUsedTicks;

    internal ControlSession(ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, uint localIndex, uint remoteIndex, MachineKey peer, TimeProvider time)
    {
        _send = new AeadContext(sendKey);
        _sendKey = sendKey[..ChaChaPoly.KeySize].ToArray();
        _receive = new AeadContext(receiveKey);
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        Peer = peer;
        _time = time;
        Created = time.GetUtcNow();
        Touch();
    }

    public uint LocalIndex { get; }
    public uint RemoteIndex { get; }

    /// <summary>The authenticated static key of the other side: the node's machine key on the server, the server's key on a node.</summary>
    public MachineKey Peer { get; }

    public DateTimeOffset Created { get; }

    public DateTimeOffset LastUsed => new(Interlocked.Read(ref _lastUsedTicks), TimeSpan.Zero);

    /// <summary>Reads the receiver index of a sealed message, to find its session.</summary>
    public static bool TryReadReceiver(ReadOnlySpan<byte> message, out uint index)
    {
        index = 0;
        if (message.Length < HeaderSize + TagSize || BinaryPrimitives.ReadUInt32LittleEndian(message) != 4)
        {
            return false;
        }

        index = BinaryPrimitives.ReadUInt32LittleEndian(message[4..]);
        return true;
    }

    public byte[] Seal(ReadOnlySpan<byte> plaintext, string path)
    {
        var counter = (ulong)(Interlocked.Increment(ref _counter) - 1);
        var message = new byte[HeaderSize + plaintext.Length + TagSize];
        BinaryPrimitives.WriteUInt32LittleEndian(message, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), RemoteIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), counter);
        Span<byte> ad = stackalloc byte[System.Text.Encoding.UTF8.GetMaxByteCount(path.Length)];
        var adLength = System.Text.Encoding.UTF8.GetBytes(path, ad);
        _send.Seal(counter, plaintext, message.AsSpan(HeaderSize), ad[..adLength]);
        Touch();
        return message;
    }

    /// <summary>
    /// Begins a sealed message whose plaintext comes in pieces (a full map too large to hold twice):
    /// writes its <see cref="HeaderSize"/>-byte header into <paramref name="header"/> and returns the
    /// sealer for the ciphertext and the tag that follow it. The result is what <see cref="Seal"/>
    /// makes of the whole plaintext, under the next counter, and opens the same way.
    /// </summary>
    public ChaChaPolySealer BeginSeal(Span<byte> header, string path)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(header.Length, HeaderSize, nameof(header));
        var counter = (ulong)(Interlocked.Increment(ref _counter) - 1);
        BinaryPrimitives.WriteUInt32LittleEndian(header, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], RemoteIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], counter);
        // WireGuard's nonce, as AeadContext makes it: 32 zero bits, then the counter little-endian.
        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], counter);
        Span<byte> ad = stackalloc byte[System.Text.Encoding.UTF8.GetMaxByteCount(path.Length)];
        var adLength = System.Text.Encoding.UTF8.GetBytes(path, ad);
        var sealer = new ChaChaPolySealer(_sendKey, nonce, ad[..adLength]);
        Touch();
        return sealer;
    }

    /// <summary>Opens a message sealed for <paramref name="path"/>; null when it is not for this session, forged, or replayed.</summary>
    public byte[]? Open(ReadOnlySpan<byte> message, string path)
    {
        if (!TryReadReceiver(message, out var index) || index != LocalIndex)
        {
            return null;
        }

        var counter = BinaryPrimitives.ReadUInt64LittleEndian(message[8..]);
        var plaintext = new byte[message.Length - HeaderSize - TagSize];
        Span<byte> ad = stackalloc byte[System.Text.Encoding.UTF8.GetMaxByteCount(path.Length)];
        var adLength = System.Text.Encoding.UTF8.GetBytes(path, ad);
        if (!_receive.Open(counter, message[HeaderSize..], plaintext, ad[..adLength]))
        {
            return null;
        }

        lock (_replayLock)
        {
            if (!_replay.TryAccept(counter, Mesh.WireGuard.Protocol.RejectAfterMessages))
            {
                return null;
            }
        }

        Touch();
        return plaintext;
    }

    private void Touch() => Interlocked.Exchange(ref _lastUsedTicks, _time.GetUtcNow().UtcTicks);

    public void Dispose()
    {
        _send.Dispose();
        _receive.Dispose();
        CryptographicOperations.ZeroMemory(_sendKey);
    }
}
