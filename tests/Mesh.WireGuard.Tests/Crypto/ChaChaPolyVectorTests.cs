using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Tests.Crypto;

/// <summary>
/// ChaCha20-Poly1305 against RFC 8439 section 2.8.2 and appendix A.5, and against OpenSSL-computed
/// vectors for WireGuard's counter nonce; XChaCha20-Poly1305 against draft-irtf-cfrg-xchacha-03
/// appendix A.3.1 and extra computed vectors (each file's header names its source).
/// </summary>
public sealed class ChaChaPolyVectorTests
{
    [Fact]
    public void SealAndOpen_Rfc8439RawNonce_Match()
    {
        var records = VectorFile.Read("chacha20poly1305-rfc8439.txt");
        Assert.Equal(2, records.Count);
        foreach (var v in records)
        {
            var expected = Concat(v.Bytes("ciphertext"), v.Bytes("tag"));
            var plaintext = v.Bytes("plaintext");
            var sealedBox = new byte[plaintext.Length + ChaChaPoly.TagSize];
            ChaChaPoly.Seal(v.Bytes("key"), v.Bytes("nonce"), plaintext, v.Bytes("aad"), sealedBox);
            VectorAssert.Hex(Convert.ToHexStringLower(expected), sealedBox, v, "seal");

            var opened = new byte[plaintext.Length];
            Assert.True(ChaChaPoly.Open(v.Bytes("key"), v.Bytes("nonce"), expected, v.Bytes("aad"), opened), v.ToString());
            Assert.Equal(plaintext, opened);
        }
    }

    [Fact]
    public void SealAndOpen_WireGuardCounterNonce_Match()
    {
        foreach (var v in VectorFile.Read("chacha20poly1305-wireguard-nonce.txt"))
        {
            var expected = Concat(v.Bytes("ciphertext"), v.Bytes("tag"));
            var plaintext = v.Bytes("plaintext");
            var counter = v.UInt64("counter");
            var sealedBox = new byte[plaintext.Length + ChaChaPoly.TagSize];
            ChaChaPoly.Seal(v.Bytes("key"), counter, plaintext, v.Bytes("aad"), sealedBox);
            VectorAssert.Hex(Convert.ToHexStringLower(expected), sealedBox, v, "seal");

            var opened = new byte[plaintext.Length];
            Assert.True(ChaChaPoly.Open(v.Bytes("key"), counter, expected, v.Bytes("aad"), opened), v.ToString());
            Assert.Equal(plaintext, opened);
        }
    }

    [Fact]
    public void Open_TamperedInput_ReturnsFalse()
    {
        foreach (var v in VectorFile.Read("chacha20poly1305-rfc8439.txt"))
        {
            var key = v.Bytes("key");
            var nonce = v.Bytes("nonce");
            var aad = v.Bytes("aad");
            var good = Concat(v.Bytes("ciphertext"), v.Bytes("tag"));
            var opened = new byte[good.Length - ChaChaPoly.TagSize];

            foreach (var index in new[] { 0, good.Length / 2, good.Length - 1 })
            {
                var bad = (byte[])good.Clone();
                bad[index] ^= 0x01;
                Assert.False(ChaChaPoly.Open(key, nonce, bad, aad, opened), $"{v}: flipped byte {index}");
            }

            var badAad = (byte[])aad.Clone();
            badAad[0] ^= 0x80;
            Assert.False(ChaChaPoly.Open(key, nonce, good, badAad, opened), $"{v}: changed aad");

            var badNonce = (byte[])nonce.Clone();
            badNonce[11] ^= 0x01;
            Assert.False(ChaChaPoly.Open(key, badNonce, good, aad, opened), $"{v}: changed nonce");
        }
    }

    [Fact]
    public void Open_WrongCounter_ReturnsFalse()
    {
        var v = VectorFile.Read("chacha20poly1305-wireguard-nonce.txt").First(r => r.UInt64("counter") == 1 && r.Bytes("plaintext").Length == 16);
        var sealedBox = Concat(v.Bytes("ciphertext"), v.Bytes("tag"));
        var opened = new byte[16];
        Assert.False(ChaChaPoly.Open(v.Bytes("key"), 2, sealedBox, v.Bytes("aad"), opened));
        Assert.False(ChaChaPoly.Open(v.Bytes("key"), 1UL << 32 | 1, sealedBox, v.Bytes("aad"), opened));
    }

    [Fact]
    public void XChaChaSealAndOpen_DraftAndExtraVectors_Match()
    {
        var records = VectorFile.Read("xchacha20poly1305-draft.txt").Concat(VectorFile.Read("xchacha20poly1305-extra.txt"));
        foreach (var v in records)
        {
            var expected = Concat(v.Bytes("ciphertext"), v.Bytes("tag"));
            var plaintext = v.Bytes("plaintext");
            var sealedBox = new byte[plaintext.Length + ChaChaPoly.TagSize];
            XChaChaPoly.Seal(v.Bytes("key"), v.Bytes("nonce"), plaintext, v.Bytes("aad"), sealedBox);
            VectorAssert.Hex(Convert.ToHexStringLower(expected), sealedBox, v, "seal");

            var opened = new byte[plaintext.Length];
            Assert.True(XChaChaPoly.Open(v.Bytes("key"), v.Bytes("nonce"), expected, v.Bytes("aad"), opened), v.ToString());
            Assert.Equal(plaintext, opened);

            var bad = (byte[])expected.Clone();
            bad[^1] ^= 0x01;
            Assert.False(XChaChaPoly.Open(v.Bytes("key"), v.Bytes("nonce"), bad, v.Bytes("aad"), opened), $"{v}: flipped tag");
        }
    }

    private static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];
}
