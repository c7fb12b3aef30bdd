namespace Mesh.WireGuard.Tests;

/// <summary>A clock the test steps by hand: monotonic timestamps in ticks and a matching wall clock.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private long _ticks = TimeSpan.FromHours(1).Ticks;
    private DateTimeOffset _utc = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override DateTimeOffset GetUtcNow() => _utc;

    public void Advance(TimeSpan by)
    {
        Interlocked.Add(ref _ticks, by.Ticks);
        _utc += by;
    }
}

/// <summary>Deterministic randomness (a counter through SHA-256) so handshakes are reproducible.</summary>
internal sealed class SeededRandom(int seed) : IRandomSource
{
    private long _counter = seed * 1_000_000L;

    public void Fill(Span<byte> buffer)
    {
        Span<byte> block = stackalloc byte[32];
        var offset = 0;
        while (offset < buffer.Length)
        {
            var n = Interlocked.Increment(ref _counter);
            System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(n), block);
            var take = Math.Min(32, buffer.Length - offset);
            block[..take].CopyTo(buffer[offset..]);
            offset += take;
        }
    }
}
