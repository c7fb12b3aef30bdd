using System.Runtime.InteropServices;

namespace Mesh.Benchmarks;

/// <summary>
/// libsodium's bare X25519 functions, bound directly (the same native library NSec loads), so the
/// handshake benchmarks can show the floor of the curve arithmetic beneath our NSec-based
/// <see cref="Mesh.WireGuard.Crypto.X25519"/> wrapper. Reference only; the product does not call these.
/// </summary>
internal static partial class Libsodium
{
    private const string Library = "libsodium";

    [LibraryImport(Library, EntryPoint = "sodium_init")]
    internal static partial int Init();

    /// <summary>q = n · p; returns -1 for an all-zero result.</summary>
    [LibraryImport(Library, EntryPoint = "crypto_scalarmult_curve25519")]
    internal static unsafe partial int ScalarMult(byte* q, byte* n, byte* p);

    /// <summary>q = n · 9 (the public key of private key n).</summary>
    [LibraryImport(Library, EntryPoint = "crypto_scalarmult_curve25519_base")]
    internal static unsafe partial int ScalarMultBase(byte* q, byte* n);
}
