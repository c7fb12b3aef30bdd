using System.Security.Cryptography;

namespace Mesh.WireGuard.Crypto;

/// <summary>
/// One direction's transport key on the data path: ChaCha20-Poly1305 with WireGuard's counter nonce.
/// Keyed cipher instances are not safe to share between threads, so a few are kept in a small
/// lock-free pool: in steady state every Seal/Open rents one, uses it and puts it back without
/// allocating; a new instance is made only when more threads than slots hit the same key at once.
/// </summary>
public sealed class AeadContext : IDisposable
{
    private const int PoolSize = 4;
    private readonly byte[] _key;
    private readonly ChaCha20Poly1305?[] _pool = new ChaCha20Poly1305?[PoolSize];
    private volatile bool _disposed;

    public AeadContext(ReadOnlySpan<byte> key)
    {
        _key = key[..ChaChaPoly.KeySize].ToArray();
        _pool[0] = new ChaCha20Poly1305(_key);
    }

    public void Seal(ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> ciphertextAndTag) =>
        Seal(counter, plaintext, ciphertextAndTag, ReadOnlySpan<byte>.Empty);

    /// <summary>Seals with associated data (the data path uses none; the control channel binds the request path).</summary>
    public void Seal(ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> ciphertextAndTag, ReadOnlySpan<byte> associatedData)
    {
        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        ChaChaPoly.WriteNonce(nonce, counter);
        var aead = Rent();
        try
        {
            var n = plaintext.Length;
            aead.Encrypt(nonce, plaintext, ciphertextAndTag[..n], ciphertextAndTag.Slice(n, ChaChaPoly.TagSize), associatedData);
        }
        finally
        {
            Return(aead);
        }
    }

    /// <summary>Decrypts in place or to <paramref name="plaintext"/>; false when the tag does not verify.</summary>
    public bool Open(ulong counter, ReadOnlySpan<byte> ciphertextAndTag, Span<byte> plaintext) =>
        Open(counter, ciphertextAndTag, plaintext, ReadOnlySpan<byte>.Empty);

    /// <summary>Opens with associated data; false when the tag (over the data too) does not verify.</summary>
    public bool Open(ulong counter, ReadOnlySpan<byte> ciphertextAndTag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        if (ciphertextAndTag.Length < ChaChaPoly.TagSize)
        {
            return false;
        }

        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        ChaChaPoly.WriteNonce(nonce, counter);
        var aead = Rent();
        try
        {
            var n = ciphertextAndTag.Length - ChaChaPoly.TagSize;
            aead.Decrypt(nonce, ciphertextAndTag[..n], ciphertextAndTag[n..], plaintext[..n], associatedData);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
        finally
        {
            Return(aead);
        }
    }

    private ChaCha20Poly1305 Rent()
    {
        var pool = _pool;
        for (var i = 0; i < pool.Length; i++)
        {
            var candidate = Interlocked.Exchange(ref pool[i], null);
            if (candidate is not null)
            {
                return candidate;
            }
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ChaCha20Poly1305(_key);
    }

    private void Return(ChaCha20Poly1305 aead)
    {
        if (!_disposed)
        {
            var pool = _pool;
            for (var i = 0; i < pool.Length; i++)
            {
                if (Interlocked.CompareExchange(ref pool[i], aead, null) is null)
                {
                    return;
                }
            }
        }

        aead.Dispose();
    }

    public void Dispose()
    {
        _disposed = true;
        for (var i = 0; i < _pool.Length; i++)
        {
            Interlocked.Exchange(ref _pool[i], null)?.Dispose();
        }

        CryptographicOperations.ZeroMemory(_key);
    }
}
