using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Mesh.WireGuard;

/// <summary>
/// A peer's Curve25519 public key as a value: usable as a dictionary key without allocating,
/// compared in constant time, printed as base64 like `wg` does.
/// </summary>
public readonly struct NoisePublicKey : IEquatable<NoisePublicKey>
{
    public const int Size = 32;
    private readonly ulong _a, _b, _c, _d;

    public NoisePublicKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != Size)
        {
            throw new ArgumentException($"A public key is {Size} bytes, not {key.Length}.", nameof(key));
        }

        _a = BinaryPrimitives.ReadUInt64LittleEndian(key);
        _b = BinaryPrimitives.ReadUInt64LittleEndian(key[8..]);
        _c = BinaryPrimitives.ReadUInt64LittleEndian(key[16..]);
        _d = BinaryPrimitives.ReadUInt64LittleEndian(key[24..]);
    }

    public bool IsZero => (_a | _b | _c | _d) == 0;

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _a);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], _d);
    }

    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        CopyTo(bytes);
        return bytes;
    }

    public static NoisePublicKey FromBase64(string text)
    {
        var bytes = Convert.FromBase64String(text);
        return new NoisePublicKey(bytes);
    }

    /// <summary>Constant time: the four words are combined without branching.</summary>
    public bool Equals(NoisePublicKey other) => ((_a ^ other._a) | (_b ^ other._b) | (_c ^ other._c) | (_d ^ other._d)) == 0;

    public override bool Equals(object? obj) => obj is NoisePublicKey other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _d);

    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return Convert.ToBase64String(bytes);
    }

    public string ToHex()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    public static bool operator ==(NoisePublicKey left, NoisePublicKey right) => left.Equals(right);

    public static bool operator !=(NoisePublicKey left, NoisePublicKey right) => !left.Equals(right);

    internal static bool FixedTimeEquals(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => CryptographicOperations.FixedTimeEquals(a, b);
}
