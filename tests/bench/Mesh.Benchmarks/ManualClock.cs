namespace Mesh.Benchmarks;

/// <summary>
/// A clock the benchmarks step by hand, so the engine's timers and the handshake flood limit see
/// exactly the time a benchmark wants them to see. Same shape as the unit tests' manual clock.
/// </summary>
internal sealed class ManualClock : TimeProvider
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
