using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Mesh.Protocol.Control;

/// <summary>
/// ChaCha20-Poly1305 (RFC 8439 §2.8) sealing in pieces, for a message too large to hold in one
/// buffer (a full map of 10,000 peers is about 6 MB, and a coordinator may be sending a thousand of
/// them): each piece's ciphertext is produced as it comes and the tag at the end. The output is the
/// one-shot AEAD's (<see cref="ChaCha20Poly1305.Encrypt(ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte}, Span{byte}, ReadOnlySpan{byte})"/>)
/// over the concatenated plaintext, which the receiver opens as usual; the tests compare the two.
/// <para>
/// Built from libsodium's raw ChaCha20 (IETF: 96-bit nonce, 32-bit block counter that can be set) and
/// its incremental Poly1305 — the native library that NSec ships and that
/// <see cref="Mesh.WireGuard.Crypto.X25519"/> calls the same way. RFC 8439's construction: the
/// one-time Poly1305 key is the first 32 bytes of ChaCha20 block 0; the plaintext is encrypted from
/// block 1; the tag authenticates AD | pad16 | ciphertext | pad16 | le64(|AD|) | le64(|ciphertext|).
/// </para>
/// Every piece but the last must be a whole number of 64-byte blocks (the keystream is resumed by
/// block counter). Not thread-safe; dispose it (the key copy and Poly1305 state live in native memory,
/// and are wiped).
/// </summary>
public sealed unsafe partial class ChaChaPolySealer : IDisposable
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int BlockSize = 64;

    private const string Library = "libsodium";

    // One native block: [Poly1305 state][key 32][nonce 12, padded to 16][16 zero bytes for padding].
    private static readonly int StateSize = checked((int)PolyStateBytes());
    private static readonly int KeyOffset = (StateSize + 15) & ~15;
    private static readonly int NonceOffset = KeyOffset + KeySize;
    private static readonly int ZerosOffset = NonceOffset + 16;
    private static readonly int MemorySize = ZerosOffset + 16;

    private byte* _memory;
    private uint _block = 1;
    private ulong _length;
    private readonly ulong _associatedLength;
    private bool _ended;
    private bool _finished;

    static ChaChaPolySealer()
    {
        // Idempotent and thread-safe; selects the fastest implementation for this CPU.
        if (SodiumInit() < 0)
        {
            throw new CryptographicException("libsodium failed to initialise (sodium_init).");
        }
    }

    public ChaChaPolySealer(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData)
    {
        if (key.Length != KeySize || nonce.Length != NonceSize)
        {
            throw new ArgumentException($"ChaCha20-Poly1305 takes a {KeySize}-byte key and a {NonceSize}-byte nonce.");
        }

        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)MemorySize, 64);
        NativeMemory.Clear(_memory, (nuint)MemorySize);
        key.CopyTo(new Span<byte>(_memory + KeyOffset, KeySize));
        nonce.CopyTo(new Span<byte>(_memory + NonceOffset, NonceSize));

        // The one-time Poly1305 key: the first half of ChaCha20 block 0 (encrypting zeros yields the keystream).
        Span<byte> block0 = stackalloc byte[BlockSize];
        block0.Clear();
        fixed (byte* b = block0)
        {
            Check(StreamXor(b, b, BlockSize, _memory + NonceOffset, 0, _memory + KeyOffset));
            Check(PolyInit(_memory, b));
        }

        CryptographicOperations.ZeroMemory(block0);
        fixed (byte* a = associatedData)
        {
            Check(PolyUpdate(_memory, a, (ulong)associatedData.Length));
        }

        _associatedLength = (ulong)associatedData.Length;
        PadTo16(_associatedLength);
    }

    /// <summary>Bytes encrypted so far.</summary>
    public long Length => (long)_length;

    /// <summary>
    /// Encrypts the next piece of plaintext into <paramref name="ciphertext"/> (the same length; it may
    /// be the very same memory, for encryption in place, but must not overlap it otherwise).
    /// </summary>
    public void Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        ObjectDisposedException.ThrowIf(_memory is null, this);
        if (_finished || _ended)
        {
            throw new InvalidOperationException(_finished
                ? "the message is already sealed"
                : $"only the last piece may end inside a {BlockSize}-byte block");
        }

        if (ciphertext.Length < plaintext.Length)
        {
            throw new ArgumentException("the ciphertext buffer is shorter than the plaintext", nameof(ciphertext));
        }

        if (plaintext.Overlaps(ciphertext, out var offset) && offset != 0)
        {
            throw new ArgumentException("the plaintext and ciphertext overlap (only the same memory is allowed)", nameof(ciphertext));
        }

        if (plaintext.IsEmpty)
        {
            return;
        }

        var blocks = ((ulong)plaintext.Length + BlockSize - 1) / BlockSize;
        if (_block + blocks > uint.MaxValue)
        {
            throw new InvalidOperationException("ChaCha20's block counter would wrap (a message over 256 GB)");
        }

        fixed (byte* p = plaintext)
        fixed (byte* c = ciphertext)
        {
            Check(StreamXor(c, p, (ulong)plaintext.Length, _memory + NonceOffset, _block, _memory + KeyOffset));
            Check(PolyUpdate(_memory, c, (ulong)plaintext.Length));
        }

        _block += (uint)blocks;
        _length += (ulong)plaintext.Length;
        _ended = plaintext.Length % BlockSize != 0;
    }

    /// <summary>Writes the 16-byte tag over everything encrypted; the sealer is then spent.</summary>
    public void Finish(Span<byte> tag)
    {
        ObjectDisposedException.ThrowIf(_memory is null, this);
        if (_finished)
        {
            throw new InvalidOperationException("the message is already sealed");
        }

        if (tag.Length < TagSize)
        {
            throw new ArgumentException($"the tag is {TagSize} bytes", nameof(tag));
        }

        PadTo16(_length);
        Span<byte> lengths = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(lengths, _associatedLength);
        BinaryPrimitives.WriteUInt64LittleEndian(lengths[8..], _length);
        fixed (byte* l = lengths)
        fixed (byte* t = tag)
        {
            Check(PolyUpdate(_memory, l, 16));
            Check(PolyFinal(_memory, t));
        }

        _finished = true;
    }

    private void PadTo16(ulong length)
    {
        var pad = (16 - (int)(length % 16)) % 16;
        if (pad > 0)
        {
            Check(PolyUpdate(_memory, _memory + ZerosOffset, (ulong)pad));
        }
    }

    private static void Check(int result)
    {
        if (result != 0)
        {
            throw new CryptographicException($"libsodium returned {result}");
        }
    }

    public void Dispose()
    {
        if (_memory is not null)
        {
            NativeMemory.Clear(_memory, (nuint)MemorySize);
            NativeMemory.AlignedFree(_memory);
            _memory = null;
        }
    }

    [LibraryImport(Library, EntryPoint = "sodium_init")]
    private static partial int SodiumInit();

    [LibraryImport(Library, EntryPoint = "crypto_onetimeauth_poly1305_statebytes")]
    private static partial nuint PolyStateBytes();

    [LibraryImport(Library, EntryPoint = "crypto_stream_chacha20_ietf_xor_ic")]
    private static partial int StreamXor(byte* c, byte* m, ulong length, byte* nonce, uint counter, byte* key);

    [LibraryImport(Library, EntryPoint = "crypto_onetimeauth_poly1305_init")]
    private static partial int PolyInit(byte* state, byte* key);

    [LibraryImport(Library, EntryPoint = "crypto_onetimeauth_poly1305_update")]
    private static partial int PolyUpdate(byte* state, byte* message, ulong length);

    [LibraryImport(Library, EntryPoint = "crypto_onetimeauth_poly1305_final")]
    private static partial int PolyFinal(byte* state, byte* tag);
}
