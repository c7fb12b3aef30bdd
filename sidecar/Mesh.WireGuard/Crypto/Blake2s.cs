using System.Buffers;
using Org.BouncyCastle.Crypto.Digests;

namespace Mesh.WireGuard.Crypto;

/// <summary>
/// BLAKE2s (RFC 7693) and the constructions the WireGuard whitepaper builds on it (§5.4):
/// HASH, MAC (keyed BLAKE2s with a 16-byte output), HMAC (RFC 2104 over BLAKE2s) and the
/// HKDF-style KDF. The compression function comes from BouncyCastle's <see cref="Blake2sDigest"/>;
/// these functions run once or a few times per handshake message, never per data packet.
/// </summary>
public static class Blake2s
{
    public const int HashSize = 32;
    public const int MacSize = 16;
    private const int BlockSize = 64;

    public static void Hash(ReadOnlySpan<byte> input, Span<byte> output32)
    {
        var digest = new Blake2sDigest(HashSize * 8);
        digest.BlockUpdate(input);
        digest.DoFinal(output32);
    }

    /// <summary>HASH(a || b) without concatenating.</summary>
    public static void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> output32)
    {
        var digest = new Blake2sDigest(HashSize * 8);
        digest.BlockUpdate(a);
        digest.BlockUpdate(b);
        digest.DoFinal(output32);
    }

    /// <summary>MAC(key, input): keyed BLAKE2s with a 16-byte output (whitepaper §5.4, used for mac1/mac2 and cookies).</summary>
    public static void Mac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output16) =>
        KeyedHash(key, input, output16[..MacSize]);

    /// <summary>Keyed BLAKE2s (key of 1..32 bytes) with an output of 1..32 bytes.</summary>
    public static void KeyedHash(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output)
    {
        if (key.Length is < 1 or > 32)
        {
            throw new ArgumentException("BLAKE2s keys are 1 to 32 bytes.", nameof(key));
        }

        if (output.Length is < 1 or > 32)
        {
            throw new ArgumentException("BLAKE2s outputs are 1 to 32 bytes.", nameof(output));
        }

        var digest = new Blake2sDigest(key.ToArray(), output.Length, null, null);
        digest.BlockUpdate(input);
        digest.DoFinal(output);
    }

    /// <summary>HMAC(key, input) per RFC 2104 with BLAKE2s as the hash (block size 64).</summary>
    public static void Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output32)
    {
        Span<byte> k = stackalloc byte[BlockSize];
        k.Clear();
        if (key.Length > BlockSize)
        {
            Hash(key, k[..HashSize]);
        }
        else
        {
            key.CopyTo(k);
        }

        Span<byte> pad = stackalloc byte[BlockSize];
        Span<byte> inner = stackalloc byte[HashSize];
        for (var i = 0; i < BlockSize; i++)
        {
            pad[i] = (byte)(k[i] ^ 0x36);
        }

        Hash(pad, input, inner);
        for (var i = 0; i < BlockSize; i++)
        {
            pad[i] = (byte)(k[i] ^ 0x5c);
        }

        Hash(pad, inner, output32);
        CryptographicOperationsClear(k, pad, inner);
    }

    /// <summary>
    /// KDF_n(key, input) of the whitepaper (§5.4): τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1),
    /// τi = HMAC(τ0, τ(i-1) || i). <paramref name="t2"/> and <paramref name="t3"/> may be empty.
    /// </summary>
    public static void Kdf(ReadOnlySpan<byte> chainingKey, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2, Span<byte> t3)
    {
        Span<byte> t0 = stackalloc byte[HashSize];
        Span<byte> buf = stackalloc byte[HashSize + 1];
        Span<byte> prev = stackalloc byte[HashSize];
        Hmac(chainingKey, input, t0);

        buf[0] = 1;
        Hmac(t0, buf[..1], prev);
        prev.CopyTo(t1);
        if (!t2.IsEmpty)
        {
            prev.CopyTo(buf);
            buf[HashSize] = 2;
            Hmac(t0, buf, prev);
            prev.CopyTo(t2);
        }

        if (!t3.IsEmpty)
        {
            prev.CopyTo(buf);
            buf[HashSize] = 3;
            Hmac(t0, buf, prev);
            prev.CopyTo(t3);
        }

        CryptographicOperationsClear(t0, buf, prev);
    }

    private static void CryptographicOperationsClear(Span<byte> a, Span<byte> b, Span<byte> c)
    {
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(a);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(b);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(c);
    }
}
