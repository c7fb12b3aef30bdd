using System.Security.Cryptography;

namespace Mesh.WireGuard;

/// <summary>
/// Where the core gets randomness (ephemeral keys, indices, cookie secrets, jitter). Passed in so
/// tests can make handshakes reproducible. Implementations must be safe to call from any thread.
/// </summary>
public interface IRandomSource
{
    void Fill(Span<byte> buffer);
}

/// <summary>The operating system's CSPRNG.</summary>
public sealed class SystemRandomSource : IRandomSource
{
    public static readonly SystemRandomSource Instance = new();

    public void Fill(Span<byte> buffer) => RandomNumberGenerator.Fill(buffer);
}
