using System.Security.Cryptography;
using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Noise;

/// <summary>
/// The key material of one peer: its static public key, the optional preshared key, and what is
/// precomputed from them — DH(S_priv, S_pub_peer), and the mac1 and cookie keys of the peer.
/// </summary>
public sealed class PeerKeys
{
    private readonly byte[] _presharedKey = new byte[32];
    private readonly byte[] _staticStatic = new byte[X25519.KeySize];

    public PeerKeys(NoisePublicKey publicKey)
    {
        Key = publicKey;
        PublicKey = publicKey.ToArray();
        Mac1Key = NoiseConstants.LabelledKey(NoiseConstants.LabelMac1, PublicKey);
        CookieKey = NoiseConstants.LabelledKey(NoiseConstants.LabelCookie, PublicKey);
    }

    public NoisePublicKey Key { get; }
    public byte[] PublicKey { get; }

    /// <summary>HASH(LABEL_MAC1 || S_pub_peer): mac1 of messages we send to this peer.</summary>
    public byte[] Mac1Key { get; }

    /// <summary>HASH(LABEL_COOKIE || S_pub_peer): opens cookie replies from this peer.</summary>
    public byte[] CookieKey { get; }

    /// <summary>Q of the whitepaper; all zero when no preshared key is set.</summary>
    public ReadOnlySpan<byte> PresharedKey => _presharedKey;

    public bool HasPresharedKey { get; private set; }

    public ReadOnlySpan<byte> StaticStatic => _staticStatic;

    public bool HasStaticStatic { get; private set; }

    public void SetPresharedKey(ReadOnlySpan<byte> key)
    {
        if (key.IsEmpty)
        {
            CryptographicOperations.ZeroMemory(_presharedKey);
            HasPresharedKey = false;
            return;
        }

        key[..32].CopyTo(_presharedKey);
        HasPresharedKey = _presharedKey.AsSpan().ContainsAnyExcept((byte)0);
    }

    /// <summary>Recomputes DH(S_priv, S_pub_peer); false (and unusable) for a low-order peer key.</summary>
    public bool SetLocalIdentity(StaticIdentity? identity)
    {
        if (identity is null)
        {
            CryptographicOperations.ZeroMemory(_staticStatic);
            HasStaticStatic = false;
            return false;
        }

        HasStaticStatic = X25519.SharedSecret(identity.PrivateKey, PublicKey, _staticStatic);
        return HasStaticStatic;
    }
}
