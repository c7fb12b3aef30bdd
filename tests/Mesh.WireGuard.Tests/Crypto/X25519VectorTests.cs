using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Tests.Crypto;

/// <summary>X25519 against RFC 7748 sections 5.2 and 6.1 (Vectors/x25519-rfc7748.txt).</summary>
public sealed class X25519VectorTests
{
    private static IEnumerable<VectorRecord> OfKind(string kind) =>
        VectorFile.Read("x25519-rfc7748.txt").Where(v => v.Text("kind") == kind);

    [Fact]
    public void SharedSecret_Rfc7748ScalarMultVectors_Match()
    {
        var records = OfKind("scalarmult").ToList();
        Assert.Equal(2, records.Count);
        foreach (var v in records)
        {
            var output = new byte[X25519.KeySize];
            Assert.True(X25519.SharedSecret(v.Bytes("scalar"), v.Bytes("u"), output), v.ToString());
            VectorAssert.Hex(v.Text("output"), output, v);
        }
    }

    [Fact]
    public void SharedSecret_Rfc7748IteratedVectors_Match()
    {
        var records = OfKind("iterated").ToList();
        Assert.Equal(2, records.Count);
        foreach (var v in records)
        {
            var k = v.Bytes("start");
            var u = v.Bytes("start");
            var next = new byte[X25519.KeySize];
            for (var i = 0; i < v.Int32("iterations"); i++)
            {
                Assert.True(X25519.SharedSecret(k, u, next), $"{v} round {i}");
                (u, k, next) = (k, next, u);
            }

            VectorAssert.Hex(v.Text("output"), k, v);
        }
    }

    [Fact]
    public void PublicKeyAndSharedSecret_Rfc7748DiffieHellman_Match()
    {
        var v = Assert.Single(OfKind("dh"));
        var publicKey = new byte[X25519.KeySize];
        X25519.PublicKey(v.Bytes("alice_private"), publicKey);
        VectorAssert.Hex(v.Text("alice_public"), publicKey, v, "alice public");
        X25519.PublicKey(v.Bytes("bob_private"), publicKey);
        VectorAssert.Hex(v.Text("bob_public"), publicKey, v, "bob public");

        var shared = new byte[X25519.KeySize];
        Assert.True(X25519.SharedSecret(v.Bytes("alice_private"), v.Bytes("bob_public"), shared));
        VectorAssert.Hex(v.Text("shared"), shared, v, "alice side");
        Assert.True(X25519.SharedSecret(v.Bytes("bob_private"), v.Bytes("alice_public"), shared));
        VectorAssert.Hex(v.Text("shared"), shared, v, "bob side");
    }

    [Fact]
    public void SharedSecret_LowOrderPoint_ReturnsFalse()
    {
        // u = 0 is a point of small order: every scalar maps it to zero, which WireGuard must
        // reject (whitepaper section 5.4.2 / RFC 7748 section 6.1 all-zero check).
        var privateKey = new byte[X25519.KeySize];
        X25519.GeneratePrivateKey(privateKey);
        var shared = new byte[X25519.KeySize];
        Assert.False(X25519.SharedSecret(privateKey, new byte[X25519.KeySize], shared));
    }

    [Fact]
    public void ClampPrivateKey_SetsRfc7748Bits()
    {
        var key = Enumerable.Repeat((byte)0xff, X25519.KeySize).ToArray();
        X25519.ClampPrivateKey(key);
        Assert.Equal(0xf8, key[0]);
        Assert.Equal(0x7f, key[31]);

        key = new byte[X25519.KeySize];
        X25519.ClampPrivateKey(key);
        Assert.Equal(0x40, key[31]);
    }

    [Fact]
    public void GeneratePrivateKey_IsClampedAndFresh()
    {
        var a = new byte[X25519.KeySize];
        var b = new byte[X25519.KeySize];
        X25519.GeneratePrivateKey(a);
        X25519.GeneratePrivateKey(b);
        Assert.False(a.AsSpan().SequenceEqual(b));
        Assert.Equal(0, a[0] & 7);
        Assert.Equal(0x40, a[31] & 0xc0);
    }
}
