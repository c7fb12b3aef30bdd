namespace Mesh.Control.Tests.Operations;

/// <summary>Polls a condition until it holds or a deadline passes: the tests' only way to wait.</summary>
internal static class Eventually
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Returns the first value for which <paramref name="done"/> holds; fails with
    /// <paramref name="what"/> and the last value seen after <paramref name="timeout"/>.
    /// </summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"timed out waiting for: {what}; last seen:\n{value}");
            }

            // A pause between polls, bounded by the deadline: not a wait for the condition itself.
            await Task.Delay(Interval, TestContext.Current.CancellationToken);
        }
    }
}
