using NSec.Cryptography;

namespace Mesh.WireGuard.Crypto;

/// <summary>
/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) through libsodium (NSec); WireGuard uses it only to
/// seal cookies in cookie replies (whitepaper §5.4.7).
/// </summary>
public static class XChaChaPoly
{
    public const int KeySize = 32;
    public const int NonceSize = 24;
    public const int TagSize = 16;

    private static readonly AeadAlgorithm Algorithm = AeadAlgorithm.XChaCha20Poly1305;

    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> ciphertextAndTag)
    {
        using var k = Key.Import(Algorithm, key[..KeySize], KeyBlobFormat.RawSymmetricKey);
        Algorithm.Encrypt(k, nonce24[..NonceSize], associatedData, plaintext, ciphertextAndTag[..(plaintext.Length + TagSize)]);
    }

    public static bool Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> ciphertextAndTag, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        if (ciphertextAndTag.Length < TagSize)
        {
            return false;
        }

        using var k = Key.Import(Algorithm, key[..KeySize], KeyBlobFormat.RawSymmetricKey);
        return Algorithm.Decrypt(k, nonce24[..NonceSize], associatedData, ciphertextAndTag, plaintext[..(ciphertextAndTag.Length - TagSize)]);
    }
}
