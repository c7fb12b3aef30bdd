using System.Text;
using Mesh.WireGuard.Crypto;
using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests.Noise;

/// <summary>
/// WireGuard's initial chaining key and hash (whitepaper section 5.4.2) against
/// Vectors/wireguard-constants.txt, computed independently with Python.
/// </summary>
public sealed class NoiseConstantsVectorTests
{
    [Fact]
    public void InitialChainingKeyAndHash_FromBlake2s_MatchVectors()
    {
        var v = Assert.Single(VectorFile.Read("wireguard-constants.txt"));
        Assert.Equal("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", Encoding.ASCII.GetString(v.Bytes("construction")));
        Assert.Equal("WireGuard v1 zx2c4 Jason@zx2c4.com", Encoding.ASCII.GetString(v.Bytes("identifier")));

        var chainingKey = new byte[Blake2s.HashSize];
        Blake2s.Hash(v.Bytes("construction"), chainingKey);
        VectorAssert.Hex(v.Text("initial_chaining_key"), chainingKey, v);

        var hash = new byte[Blake2s.HashSize];
        Blake2s.Hash(chainingKey, v.Bytes("identifier"), hash);
        VectorAssert.Hex(v.Text("initial_hash"), hash, v);
    }

    [Fact]
    public void NoiseConstants_InitialChainingKeyAndHash_MatchVectors()
    {
        var v = Assert.Single(VectorFile.Read("wireguard-constants.txt"));
        Assert.Equal(v.Bytes("construction"), Encoding.ASCII.GetBytes(NoiseConstants.Construction));
        Assert.Equal(v.Bytes("identifier"), Encoding.ASCII.GetBytes(NoiseConstants.Identifier));
        VectorAssert.Hex(v.Text("initial_chaining_key"), NoiseConstants.InitialChainingKey, v);
        VectorAssert.Hex(v.Text("initial_hash"), NoiseConstants.InitialHash, v);
    }
}
