using System.Numerics;

namespace Mesh.Net.Filter;

/// <summary>One direction of a flow as this node sent it: protocol, addresses, ports (ICMP echo: identifier, 0).</summary>
internal readonly record struct FlowKey(
    int Family,
    byte Protocol,
    UInt128 Source,
    UInt128 Destination,
    ushort SourcePort,
    ushort DestinationPort);

/// <summary>
/// The flows this node sent recently, so that <see cref="PacketFilter"/> lets their replies in.
/// Kept apart from the compiled rules so that a new netmap swaps the rules and keeps the flows.
/// </summary>
/// <remarks>
/// <para>
/// A bounded, set-associative table: a flow hashes to one set of <see cref="Ways"/> slots. A new
/// flow takes a free or expired slot of its set, else evicts the slot of that set idle longest,
/// so the table never grows past <see cref="Capacity"/> and never allocates after construction.
/// Eviction is least-recently-used within a set, not globally; with 8 ways the difference only
/// shows when the table is full, where any bounded table must forget something.
/// </para>
/// <para>
/// Concurrency: each set is guarded by one of a fixed array of striped locks, held for a scan of
/// 8 slots; any number of threads may call in. The hash is the process-randomized
/// <see cref="HashCode"/>, so a peer cannot aim its replies at one set to push other flows out.
/// </para>
/// <para>
/// Time is passed in as ticks of <see cref="TimeSpan"/> (100 ns) from any monotonic clock; a flow
/// seen at <c>t</c> lives through <c>t + IdleTimeout</c> inclusive and is gone one tick later.
/// </para>
/// </remarks>
public sealed class FlowTable
{
    /// <summary>Slots per set.</summary>
    public const int Ways = 8;

    /// <summary>Default bound: 64k flows, about 4 MB.</summary>
    public const int DefaultCapacity = 65536;

    private const int MaxLocks = 1024;

    // Three parallel arrays, so a lookup reads one cache line of tags for the whole set and then
    // only the slot whose tag matches: a tag is the flow's hash with the low bit set (0 = free).
    // The 48-byte keys of a set span six lines; scanning them all cost about twice as much.
    private readonly uint[] _tags;
    private readonly long[] _lastSeen;
    private readonly FlowKey[] _keys;
    private readonly Lock[] _locks;
    private readonly int _setMask;
    private readonly long _idleTicks;
    private int _count;

    /// <param name="capacity">Upper bound on remembered flows, rounded up to a power of two ≥ 8.</param>
    /// <param name="idleTimeout">How long a flow with no packets stays; default 2 minutes.</param>
    public FlowTable(int capacity = DefaultCapacity, TimeSpan? idleTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 1 << 24);
        var timeout = idleTimeout ?? TimeSpan.FromMinutes(2);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);

        int slots = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, Ways));
        int sets = slots / Ways;
        _tags = new uint[slots];
        _lastSeen = new long[slots];
        _keys = new FlowKey[slots];
        _setMask = sets - 1;
        _locks = new Lock[Math.Min(sets, MaxLocks)];
        for (int i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new Lock();
        }

        _idleTicks = timeout.Ticks;
        IdleTimeout = timeout;
    }

    public int Capacity => _tags.Length;

    public TimeSpan IdleTimeout { get; }

    /// <summary>Slots in use, expired ones included (they are reused before anything is evicted).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Forgets every flow.</summary>
    public void Clear()
    {
        for (int set = 0; set <= _setMask; set++)
        {
            using (_locks[set & (_locks.Length - 1)].EnterScope())
            {
                _tags.AsSpan(set * Ways, Ways).Clear();
            }
        }

        Volatile.Write(ref _count, 0);
    }

    /// <summary>Adds the flow or marks it seen at <paramref name="nowTicks"/>.</summary>
    internal void Record(in FlowKey key, long nowTicks)
    {
        uint hash = Hash(key);
        int first = (int)(hash & (uint)_setMask) * Ways;
        uint tag = hash | 1;
        var tags = _tags.AsSpan(first, Ways);
        var seen = _lastSeen.AsSpan(first, Ways);
        using (_locks[(first / Ways) & (_locks.Length - 1)].EnterScope())
        {
            int free = -1;
            int oldest = -1;
            for (int i = 0; i < Ways; i++)
            {
                uint t = tags[i];
                if (t == 0)
                {
                    if (free < 0)
                    {
                        free = i;
                    }
                }
                else
                {
                    if (t == tag && _keys[first + i] == key)
                    {
                        seen[i] = Math.Max(seen[i], nowTicks);
                        return;
                    }

                    if (oldest < 0 || seen[i] < seen[oldest])
                    {
                        oldest = i;
                    }
                }
            }

            if (free >= 0)
            {
                Interlocked.Increment(ref _count);
            }
            else
            {
                // Every slot is taken: the one idle longest goes, expired or not.
                free = oldest;
            }

            tags[free] = tag;
            seen[free] = nowTicks;
            _keys[first + free] = key;
        }
    }

    /// <summary>
    /// True when the flow was seen within the idle timeout of <paramref name="nowTicks"/>; then, with
    /// <paramref name="touch"/>, it counts as seen now.
    /// </summary>
    internal bool Contains(in FlowKey key, long nowTicks, bool touch)
    {
        uint hash = Hash(key);
        int first = (int)(hash & (uint)_setMask) * Ways;
        uint tag = hash | 1;
        var tags = _tags.AsSpan(first, Ways);
        using (_locks[(first / Ways) & (_locks.Length - 1)].EnterScope())
        {
            for (int i = 0; i < Ways; i++)
            {
                if (tags[i] == tag && _keys[first + i] == key)
                {
                    ref long seen = ref _lastSeen[first + i];
                    if (nowTicks - seen > _idleTicks)
                    {
                        return false;
                    }

                    if (touch && nowTicks > seen)
                    {
                        seen = nowTicks;
                    }

                    return true;
                }
            }
        }

        return false;
    }

    private static uint Hash(in FlowKey key) =>
        (uint)HashCode.Combine(key.Source, key.Destination, key.SourcePort, key.DestinationPort, key.Protocol, key.Family);
}
