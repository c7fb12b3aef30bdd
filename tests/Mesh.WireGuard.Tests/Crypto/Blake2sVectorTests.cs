using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Tests.Crypto;

/// <summary>
/// BLAKE2s, keyed BLAKE2s, WireGuard's MAC, HMAC and KDF against the known-answer files in
/// Vectors/ (RFC 7693 appendix B, and Python hashlib/hmac outputs; each file's header names its source).
/// </summary>
public sealed class Blake2sVectorTests
{
    [Fact]
    public void Hash_Rfc7693AppendixB_Matches()
    {
        foreach (var v in VectorFile.Read("blake2s-rfc7693.txt"))
        {
            var output = new byte[Blake2s.HashSize];
            Blake2s.Hash(v.Bytes("in"), output);
            VectorAssert.Hex(v.Text("hash"), output, v);
        }
    }

    [Fact]
    public void Hash_UnkeyedKat_Matches()
    {
        var records = VectorFile.Read("blake2s-unkeyed.txt");
        Assert.Equal(256, records.Count);
        foreach (var v in records)
        {
            var output = new byte[Blake2s.HashSize];
            Blake2s.Hash(v.Bytes("in"), output);
            VectorAssert.Hex(v.Text("hash"), output, v);
        }
    }

    [Fact]
    public void Hash_TwoParts_EqualsHashOfConcatenation()
    {
        foreach (var v in VectorFile.Read("blake2s-unkeyed.txt"))
        {
            var input = v.Bytes("in");
            foreach (var split in new[] { 0, input.Length / 3, input.Length / 2, input.Length })
            {
                var output = new byte[Blake2s.HashSize];
                Blake2s.Hash(input.AsSpan(0, split), input.AsSpan(split), output);
                VectorAssert.Hex(v.Text("hash"), output, v, $"split {split}");
            }
        }
    }

    [Fact]
    public void KeyedHash_ReferenceKeyedKat_Matches()
    {
        var records = VectorFile.Read("blake2s-keyed.txt");
        Assert.Equal(256, records.Count);
        foreach (var v in records)
        {
            var output = new byte[Blake2s.HashSize];
            Blake2s.KeyedHash(v.Bytes("key"), v.Bytes("in"), output);
            VectorAssert.Hex(v.Text("hash"), output, v);
        }
    }

    [Fact]
    public void KeyedHash_EveryOutputLength_Matches()
    {
        var records = VectorFile.Read("blake2s-keyed-outlen.txt");
        foreach (var v in records)
        {
            var output = new byte[v.Int32("outlen")];
            Blake2s.KeyedHash(v.Bytes("key"), v.Bytes("in"), output);
            VectorAssert.Hex(v.Text("hash"), output, v);
        }
    }

    [Fact]
    public void Mac_Keyed16ByteOutput_Matches()
    {
        foreach (var v in VectorFile.Read("blake2s-mac.txt"))
        {
            var output = new byte[Blake2s.MacSize];
            Blake2s.Mac(v.Bytes("key"), v.Bytes("in"), output);
            VectorAssert.Hex(v.Text("mac"), output, v);
        }
    }

    [Fact]
    public void Hmac_Matches()
    {
        foreach (var v in VectorFile.Read("hmac-blake2s.txt"))
        {
            var output = new byte[Blake2s.HashSize];
            Blake2s.Hmac(v.Bytes("key"), v.Bytes("in"), output);
            VectorAssert.Hex(v.Text("hmac"), output, v);
        }
    }

    [Fact]
    public void Kdf_OneTwoAndThreeOutputs_Match()
    {
        foreach (var v in VectorFile.Read("hkdf-blake2s.txt"))
        {
            var chainingKey = v.Bytes("chaining_key");
            var input = v.Bytes("in");
            var t1 = new byte[Blake2s.HashSize];
            var t2 = new byte[Blake2s.HashSize];
            var t3 = new byte[Blake2s.HashSize];

            Blake2s.Kdf(chainingKey, input, t1, t2, t3);
            VectorAssert.Hex(v.Text("t1"), t1, v, "KDF3 t1");
            VectorAssert.Hex(v.Text("t2"), t2, v, "KDF3 t2");
            VectorAssert.Hex(v.Text("t3"), t3, v, "KDF3 t3");

            Array.Clear(t1);
            Array.Clear(t2);
            Blake2s.Kdf(chainingKey, input, t1, t2, []);
            VectorAssert.Hex(v.Text("t1"), t1, v, "KDF2 t1");
            VectorAssert.Hex(v.Text("t2"), t2, v, "KDF2 t2");

            Array.Clear(t1);
            Blake2s.Kdf(chainingKey, input, t1, [], []);
            VectorAssert.Hex(v.Text("t1"), t1, v, "KDF1 t1");
        }
    }
}
