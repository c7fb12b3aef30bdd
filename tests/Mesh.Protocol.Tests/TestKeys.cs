using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Tests;

/// <summary>Fresh Curve25519 key pairs for tests.</summary>
internal static class TestKeys
{
    public static (byte[] Private, NoisePublicKey Public) NewPair()
    {
        var privateKey = new byte[32];
        X25519.GeneratePrivateKey(privateKey);
        var publicKey = new byte[32];
        X25519.PublicKey(privateKey, publicKey);
        return (privateKey, new NoisePublicKey(publicKey));
    }
}
