using System.Security.Cryptography;
using NSec.Cryptography;

namespace Mesh.WireGuard.Crypto;

/// <summary>
/// Curve25519 Diffie-Hellman (RFC 7748) through libsodium (NSec). WireGuard's DH(private, public)
/// (whitepaper §5.4) is the raw X25519 output; an all-zero result (a low-order public key) is refused.
/// </summary>
public static class X25519
{
    public const int KeySize = 32;

    private static readonly KeyAgreementAlgorithm Algorithm = KeyAgreementAlgorithm.X25519;

    /// <summary>Fills <paramref name="privateKey"/> from the system CSPRNG and clamps it.</summary>
    public static void GeneratePrivateKey(Span<byte> privateKey)
    {
        RandomNumberGenerator.Fill(privateKey[..KeySize]);
        ClampPrivateKey(privateKey);
    }

    /// <summary>Clamps a scalar as RFC 7748 §5 (and `wg genkey`) do.</summary>
    public static void ClampPrivateKey(Span<byte> key)
    {
        key[0] &= 248;
        key[31] &= 127;
        key[31] |= 64;
    }

    public static void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        var creation = new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        using var key = Key.Import(Algorithm, privateKey[..KeySize], KeyBlobFormat.RawPrivateKey, in creation);
        if (!key.PublicKey.TryExport(KeyBlobFormat.RawPublicKey, publicKey, out var written) || written != KeySize)
        {
            throw new CryptographicException("X25519 public key export failed.");
        }
    }

    /// <summary>DH(privateKey, publicKey); returns false when the result would be all zero.</summary>
    public static bool SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared)
    {
        using var key = Key.Import(Algorithm, privateKey[..KeySize], KeyBlobFormat.RawPrivateKey);
        if (!NSec.Cryptography.PublicKey.TryImport(Algorithm, publicKey[..KeySize], KeyBlobFormat.RawPublicKey, out var peer) || peer is null)
        {
            return false;
        }

        var exportable = new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        using var secret = Algorithm.Agree(key, peer, in exportable);
        if (secret is null)
        {
            // libsodium refuses all-zero outputs (low-order points).
            return false;
        }

        var raw = secret.Export(SharedSecretBlobFormat.RawSharedSecret);
        try
        {
            raw.AsSpan(0, KeySize).CopyTo(shared);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }

        return true;
    }
}
