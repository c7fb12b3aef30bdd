// Temporary stand-ins until the replay window, allowed-IPs trie and TAI64N land; replaced on merge.
using System.Buffers.Binary;
using System.Net;

namespace Mesh.WireGuard;

public sealed class ReplayWindow
{
    private const int Size = 2048;
    private readonly HashSet<ulong> _seen = [];
    private ulong _max;

    public bool TryAccept(ulong counter, ulong rejectAfterMessages)
    {
        if (counter >= rejectAfterMessages || (_max >= Size && counter <= _max - Size) || !_seen.Add(counter))
        {
            return false;
        }

        _max = Math.Max(_max, counter);
        return true;
    }

    public void Reset() { _seen.Clear(); _max = 0; }
}

public sealed class AllowedIps<T> where T : class
{
    private readonly List<(byte[] Addr, int Bits, T Value)> _entries = [];
    private readonly Lock _lock = new();

    public void Insert(IPAddress address, int prefixLength, T value)
    {
        lock (_lock) { _entries.RemoveAll(e => e.Bits == prefixLength && e.Addr.AsSpan().SequenceEqual(Mask(address.GetAddressBytes(), prefixLength))); _entries.Add((Mask(address.GetAddressBytes(), prefixLength), prefixLength, value)); }
    }

    public void RemoveAll(T value) { lock (_lock) { _entries.RemoveAll(e => ReferenceEquals(e.Value, value)); } }

    public void Clear() { lock (_lock) { _entries.Clear(); } }

    public IReadOnlyList<IPNetwork> PrefixesOf(T value) { lock (_lock) { return _entries.Where(e => ReferenceEquals(e.Value, value)).Select(e => new IPNetwork(new IPAddress(e.Addr), e.Bits)).ToList(); } }

    public T? Lookup(ReadOnlySpan<byte> address)
    {
        lock (_lock)
        {
            T? best = null; var bestBits = -1;
            foreach (var e in _entries)
            {
                if (e.Addr.Length == address.Length && e.Bits > bestBits && Mask(address.ToArray(), e.Bits).AsSpan().SequenceEqual(e.Addr)) { best = e.Value; bestBits = e.Bits; }
            }
            return best;
        }
    }

    private static byte[] Mask(byte[] a, int bits) { var r = (byte[])a.Clone(); for (var i = 0; i < r.Length; i++) { var keep = Math.Clamp(bits - i * 8, 0, 8); r[i] &= (byte)(0xFF << (8 - keep)); } return r; }
}

public static class Tai64N
{
    public const int Size = 12;

    public static void Write(Span<byte> destination, long unixTimeNanoseconds)
    {
        var seconds = unixTimeNanoseconds / 1_000_000_000;
        var nanos = (uint)(unixTimeNanoseconds % 1_000_000_000) & ~0xFFFFFFu;
        BinaryPrimitives.WriteUInt64BigEndian(destination, 0x400000000000000aUL + (ulong)seconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], nanos);
    }

    public static bool IsAfter(ReadOnlySpan<byte> candidate, ReadOnlySpan<byte> previous) => candidate.SequenceCompareTo(previous) > 0;
}
