using System.Diagnostics;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// Polling with a deadline: the only way the harness waits for something to happen. The delay
/// between attempts is a polling interval, never the synchronization itself.
/// </summary>
internal static class Eventually
{
    internal static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>True as soon as <paramref name="condition"/> holds; false once <paramref name="timeout"/> has passed without it.</summary>
    public static async Task<bool> TryAsync(Func<CancellationToken, Task<bool>> condition, TimeSpan timeout, CancellationToken cancellationToken, TimeSpan? interval = null)
    {
        var start = Stopwatch.GetTimestamp();
        while (true)
        {
            if (await condition(cancellationToken))
            {
                return true;
            }

            if (Stopwatch.GetElapsedTime(start) >= timeout)
            {
                return false;
            }

            await Task.Delay(interval ?? DefaultInterval, cancellationToken);
        }
    }

    public static Task<bool> TryAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken, TimeSpan? interval = null) =>
        TryAsync(_ => Task.FromResult(condition()), timeout, cancellationToken, interval);
}
