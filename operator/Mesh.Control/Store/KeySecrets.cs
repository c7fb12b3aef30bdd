using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Mesh.Control.Store;

/// <summary>
/// The text form of a secret key: <c>mskey-&lt;kind&gt;-&lt;prefix&gt;-&lt;secret&gt;</c>, prefix 12 and secret
/// 48 base62 characters drawn from <see cref="RandomNumberGenerator"/> (about 285 bits of secret).
/// The prefix identifies a key in listings and is stored in clear; only the SHA-256 of the whole key
/// is stored, which is enough for a secret of this entropy (no password stretching needed), and
/// binds the hash to its prefix and kind. Hashes are compared in constant time.
/// </summary>
internal sealed class SecretKeyFormat(string kind)
{
    public const int PrefixLength = 12;
    public const int SecretLength = 48;
    public const int HashLength = 32;

    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public string Lead { get; } = $"mskey-{kind}-";

    public int KeyLength => Lead.Length + PrefixLength + 1 + SecretLength;

    public (string Key, string Prefix, byte[] Hash) Generate()
    {
        var prefix = RandomNumberGenerator.GetString(Alphabet, PrefixLength);
        var secret = RandomNumberGenerator.GetString(Alphabet, SecretLength);
        var key = Lead + prefix + "-" + secret;
        return (key, prefix, Hash(key));
    }

    /// <summary>Splits a presented key; false unless it has exactly this kind's shape.</summary>
    public bool TryParse(string? presented, [NotNullWhen(true)] out string? prefix)
    {
        prefix = null;
        if (presented is null || presented.Length != KeyLength || !presented.StartsWith(Lead, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = presented.AsSpan(Lead.Length);
        if (rest[PrefixLength] != '-' || !IsBase62(rest[..PrefixLength]) || !IsBase62(rest[(PrefixLength + 1)..]))
        {
            return false;
        }

        prefix = rest[..PrefixLength].ToString();
        return true;
    }

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>True when <paramref name="presented"/> hashes to <paramref name="storedHash"/>; constant time in the hash.</summary>
    public static bool Matches(string presented, byte[] storedHash)
    {
        Span<byte> hash = stackalloc byte[HashLength];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), hash);
        return storedHash.Length == HashLength && CryptographicOperations.FixedTimeEquals(hash, storedHash);
    }

    private static bool IsBase62(ReadOnlySpan<char> text) => !text.ContainsAnyExcept(Base62Values);

    private static readonly System.Buffers.SearchValues<char> Base62Values = System.Buffers.SearchValues.Create(Alphabet);
}

/// <summary>Pre-auth keys: <c>mskey-auth-&lt;prefix&gt;-&lt;secret&gt;</c>. See <see cref="SecretKeyFormat"/>.</summary>
public static class PreAuthKeySecrets
{
    internal static readonly SecretKeyFormat Format = new("auth");

    /// <summary>A fresh key, its prefix, and the hash to store.</summary>
    public static (string Key, string Prefix, byte[] Hash) Generate() => Format.Generate();

    /// <summary>False unless <paramref name="presented"/> has the shape of a pre-auth key.</summary>
    public static bool TryParse(string? presented, [NotNullWhen(true)] out string? prefix) => Format.TryParse(presented, out prefix);

    public static byte[] Hash(string key) => SecretKeyFormat.Hash(key);

    public static bool Matches(string presented, byte[] storedHash) => SecretKeyFormat.Matches(presented, storedHash);
}

/// <summary>Admin API keys: <c>mskey-api-&lt;prefix&gt;-&lt;secret&gt;</c>. See <see cref="SecretKeyFormat"/>.</summary>
public static class ApiKeySecrets
{
    internal static readonly SecretKeyFormat Format = new("api");

    public static (string Key, string Prefix, byte[] Hash) Generate() => Format.Generate();

    public static bool TryParse(string? presented, [NotNullWhen(true)] out string? prefix) => Format.TryParse(presented, out prefix);

    public static byte[] Hash(string key) => SecretKeyFormat.Hash(key);

    public static bool Matches(string presented, byte[] storedHash) => SecretKeyFormat.Matches(presented, storedHash);
}
