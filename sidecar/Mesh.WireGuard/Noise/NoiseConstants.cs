using System.Text;
using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Noise;

/// <summary>
/// The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s construction and WireGuard's identifier and labels
/// (whitepaper §5.4). The initial chaining key and hash are computed once from those strings.
/// </summary>
public static class NoiseConstants
{
    public const string Construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    public const string Identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
    public const string LabelMac1 = "mac1----";
    public const string LabelCookie = "cookie--";

    private static readonly byte[] InitialChainingKeyBytes = ComputeInitialChainingKey();
    private static readonly byte[] InitialHashBytes = ComputeInitialHash();

    /// <summary>C_i = HASH(CONSTRUCTION).</summary>
    public static ReadOnlySpan<byte> InitialChainingKey => InitialChainingKeyBytes;

    /// <summary>H_i = HASH(C_i || IDENTIFIER).</summary>
    public static ReadOnlySpan<byte> InitialHash => InitialHashBytes;

    private static byte[] ComputeInitialChainingKey()
    {
        var ck = new byte[Blake2s.HashSize];
        Blake2s.Hash(Encoding.ASCII.GetBytes(Construction), ck);
        return ck;
    }

    private static byte[] ComputeInitialHash()
    {
        var h = new byte[Blake2s.HashSize];
        Blake2s.Hash(ComputeInitialChainingKey(), Encoding.ASCII.GetBytes(Identifier), h);
        return h;
    }

    /// <summary>HASH(label || publicKey): the mac1 key (LABEL_MAC1) or the cookie key (LABEL_COOKIE) of a static key.</summary>
    internal static byte[] LabelledKey(string label, ReadOnlySpan<byte> publicKey)
    {
        var key = new byte[Blake2s.HashSize];
        Blake2s.Hash(Encoding.ASCII.GetBytes(label), publicKey, key);
        return key;
    }
}

/// <summary>
/// The two values a Noise handshake starts from: C = HASH(construction) and H = HASH(C || identifier).
/// WireGuard's own identifier is <see cref="WireGuard"/>; other uses of the same handshake (the
/// mesh's control channel) pick another identifier so their messages can never be confused.
/// </summary>
public sealed class NoiseProtocol
{
    public static readonly NoiseProtocol WireGuard = new(NoiseConstants.Construction, NoiseConstants.Identifier);

    private readonly byte[] _chainingKey = new byte[Blake2s.HashSize];
    private readonly byte[] _hash = new byte[Blake2s.HashSize];

    public NoiseProtocol(string construction, string identifier)
    {
        Identifier = identifier;
        Blake2s.Hash(Encoding.ASCII.GetBytes(construction), _chainingKey);
        Blake2s.Hash(_chainingKey, Encoding.ASCII.GetBytes(identifier), _hash);
    }

    public string Identifier { get; }

    public ReadOnlySpan<byte> InitialChainingKey => _chainingKey;

    public ReadOnlySpan<byte> InitialHash => _hash;
}
