using System.Security.Cryptography;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Relay;

/// <summary>
/// How a relay client proves it holds the private half of the node key it claims, without a
/// signature scheme: both sides can compute the X25519 shared secret of the node key and the
/// relay's static key, and only they can.
/// <code>
/// proof = BLAKE2s-256(key = DH(node_private, relay_public),
///                     "MeshOperator relay proof v1" || challenge || node_public || relay_public)
/// </code>
/// The relay checks it with DH(relay_private, node_public). The fresh 32-byte challenge of each
/// connection stops replay; the two public keys in the input bind the proof to this node and this
/// relay, and the label keeps it from being mistaken for any other keyed BLAKE2s in the product.
/// </summary>
public static class RelayProof
{
    private static ReadOnlySpan<byte> Label => "MeshOperator relay proof v1"u8;

    /// <summary>Computes the client's proof; false when the relay key is a low-order point (the DH result would be zero).</summary>
    public static bool TryCompute(ReadOnlySpan<byte> nodePrivateKey, NoisePublicKey nodePublicKey, NoisePublicKey relayPublicKey, ReadOnlySpan<byte> challenge, Span<byte> proof)
    {
        Span<byte> relay = stackalloc byte[NoisePublicKey.Size];
        relayPublicKey.CopyTo(relay);
        Span<byte> shared = stackalloc byte[X25519.KeySize];
        try
        {
            if (!X25519.SharedSecret(nodePrivateKey, relay, shared))
            {
                return false;
            }

            Mac(shared, challenge, nodePublicKey, relayPublicKey, proof);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }
    }

    /// <summary>The relay's check, in constant time. False for a wrong proof or a low-order node key.</summary>
    public static bool Verify(ReadOnlySpan<byte> relayPrivateKey, NoisePublicKey relayPublicKey, NoisePublicKey nodePublicKey, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> proof)
    {
        if (proof.Length != RelayFrames.ProofSize || challenge.Length != RelayFrames.ChallengeSize)
        {
            return false;
        }

        Span<byte> node = stackalloc byte[NoisePublicKey.Size];
        nodePublicKey.CopyTo(node);
        Span<byte> shared = stackalloc byte[X25519.KeySize];
        Span<byte> expected = stackalloc byte[RelayFrames.ProofSize];
        try
        {
            if (!X25519.SharedSecret(relayPrivateKey, node, shared))
            {
                return false;
            }

            Mac(shared, challenge, nodePublicKey, relayPublicKey, expected);
            return CryptographicOperations.FixedTimeEquals(expected, proof);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }
    }

    private static void Mac(ReadOnlySpan<byte> shared, ReadOnlySpan<byte> challenge, NoisePublicKey node, NoisePublicKey relay, Span<byte> proof)
    {
        Span<byte> input = stackalloc byte[Label.Length + RelayFrames.ChallengeSize + 2 * NoisePublicKey.Size];
        Label.CopyTo(input);
        var offset = Label.Length;
        challenge[..RelayFrames.ChallengeSize].CopyTo(input[offset..]);
        offset += RelayFrames.ChallengeSize;
        node.CopyTo(input[offset..]);
        offset += NoisePublicKey.Size;
        relay.CopyTo(input[offset..]);
        Blake2s.KeyedHash(shared, input, proof[..RelayFrames.ProofSize]);
    }
}
