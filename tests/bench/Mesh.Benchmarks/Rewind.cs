using System.Runtime.CompilerServices;
using Mesh.WireGuard;
using Mesh.WireGuard.Noise;

namespace Mesh.Benchmarks;

/// <summary>
/// Winds replay protection back so a benchmark can replay a small ring of pre-built messages for
/// as many invocations as BenchmarkDotNet wants, instead of pre-building one message per
/// invocation (1452-byte datagrams × millions of invocations would not fit in memory).
/// </summary>
/// <remarks>
/// The state is private to the core, and the core is not changed for benchmarks, so this reaches
/// it with <see cref="UnsafeAccessorAttribute"/>: free at run time, and a renamed field fails
/// loudly (<see cref="MissingFieldException"/>) at the first call rather than silently measuring a
/// rejected message. Each benchmark also checks every result, for the same reason.
/// </remarks>
internal static class Rewind
{
    /// <summary>Forgets every counter <paramref name="keypair"/> has received.</summary>
    public static void ReceiveCounters(Keypair keypair) => ReplayWindowOf(keypair).Reset();

    /// <summary>Forgets the newest initiation timestamp accepted from <paramref name="peer"/>.</summary>
    public static void InitiationTimestamp(Peer peer) => Array.Clear(LastTimestampOf(HandshakeOf(peer)));

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_replay")]
    private static extern ref ReplayWindow ReplayWindowOf(Keypair keypair);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_handshake")]
    private static extern ref Handshake HandshakeOf(Peer peer);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_lastTimestamp")]
    private static extern ref byte[] LastTimestampOf(Handshake handshake);
}
