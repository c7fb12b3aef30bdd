using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Mesh.WireGuard.Crypto;

/// <summary>
/// Curve25519 Diffie-Hellman (RFC 7748) from libsodium — the native library that NSec ships and
/// wraps. WireGuard's DH(private, public) (whitepaper §5.4) is the raw X25519 output; an all-zero
/// result (a low-order public key) is refused. libsodium's scalar multiplication is called directly
/// rather than through NSec's key objects: tests/bench/micro.sh measured the object route at 3× the
/// cost of the curve arithmetic and ~330 B allocated per call; this route allocates nothing.
/// </summary>
public static partial class X25519
{
    public const int KeySize = 32;
    private const string Library = "libsodium";

    static X25519()
    {
        // Idempotent and thread-safe; selects the fastest implementation for this CPU.
        if (SodiumInit() < 0)
        {
            throw new CryptographicException("libsodium failed to initialise (sodium_init).");
        }
    }

    /// <summary>Fills <paramref name="privateKey"/> from the system CSPRNG and clamps it.</summary>
    public static void GeneratePrivateKey(Span<byte> privateKey)
    {
        RandomNumberGenerator.Fill(privateKey[..KeySize]);
        ClampPrivateKey(privateKey);
    }

    /// <summary>Clamps a scalar as RFC 7748 §5 (and `wg genkey`) do.</summary>
    public static void ClampPrivateKey(Span<byte> key)
    {
        key[0] &= 248;
        key[31] &= 127;
        key[31] |= 64;
    }

    public static unsafe void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        if (privateKey.Length < KeySize || publicKey.Length < KeySize)
        {
            throw new ArgumentException($"X25519 keys are {KeySize} bytes.");
        }

        fixed (byte* q = publicKey)
        fixed (byte* n = privateKey)
        {
            if (ScalarMultBase(q, n) != 0)
            {
                throw new CryptographicException("X25519 public key derivation failed.");
            }
        }
    }

    /// <summary>DH(privateKey, publicKey); returns false when the result would be all zero.</summary>
    public static unsafe bool SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared)
    {
        if (privateKey.Length < KeySize || publicKey.Length < KeySize || shared.Length < KeySize)
        {
            throw new ArgumentException($"X25519 keys and shared secrets are {KeySize} bytes.");
        }

        fixed (byte* q = shared)
        fixed (byte* n = privateKey)
        fixed (byte* p = publicKey)
        {
            // libsodium returns -1 when the product is the identity (low-order input).
            if (ScalarMult(q, n, p) != 0)
            {
                shared[..KeySize].Clear();
                return false;
            }
        }

        return true;
    }

    [LibraryImport(Library, EntryPoint = "sodium_init")]
    private static partial int SodiumInit();

    [LibraryImport(Library, EntryPoint = "crypto_scalarmult_curve25519")]
    private static unsafe partial int ScalarMult(byte* q, byte* n, byte* p);

    [LibraryImport(Library, EntryPoint = "crypto_scalarmult_curve25519_base")]
    private static unsafe partial int ScalarMultBase(byte* q, byte* n);
}
