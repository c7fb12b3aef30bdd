using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mesh.WireGuard;

/// <summary>
/// Cryptokey routing table (whitepaper §2): maps IPv4 and IPv6 prefixes to their owner (a peer)
/// and answers longest-prefix-match lookups, both for choosing the peer of an outgoing packet by
/// destination and for checking that a decrypted packet's source belongs to the peer it came from.
/// </summary>
/// <remarks>
/// <para>
/// What it is: one path-compressed binary trie per address family. Every node holds a masked key
/// and a prefix length; a node with an owner is a route, a node without one only branches. Lookup
/// walks at most one node per distinct prefix length on the path (≤ 33 for IPv4, ≤ 129 for IPv6),
/// comparing whole 128-bit keys, never scanning a list. Addresses are kept as left-aligned
/// <see cref="UInt128"/> values (IPv4 in the top 32 bits) so both families share the code.
/// </para>
/// <para>
/// Concurrency: copy-on-write. The tries are immutable; a writer (serialized by a private lock)
/// builds new nodes along the changed path, reusing every untouched subtree, and publishes the new
/// roots as one <see cref="Snapshot"/> with <see cref="Volatile.Write{T}(ref T, T)"/>. Readers load
/// the snapshot with <see cref="Volatile.Read{T}(ref readonly T)"/> and never lock, so
/// <see cref="Lookup"/> is wait-free, allocation-free and safe on any number of threads while
/// writers run; each lookup sees the table either wholly before or wholly after a write. Writes
/// cost O(depth) allocations, which suits a table changed by configuration, not per packet.
/// </para>
/// <para>
/// What it is not: not a route table for the host (the agent installs OS routes separately), and
/// owners are compared by reference, not by <see cref="object.Equals(object)"/>: a peer object is
/// its own identity.
/// </para>
/// </remarks>
/// <typeparam name="T">The owner type, typically the peer.</typeparam>
public sealed class AllowedIps<T>
    where T : class
{
    private const int V4Bits = 32;
    private const int V6Bits = 128;

    private static readonly UInt128[] Masks = CreateMasks();

    private readonly Lock _writeLock = new();
    private Snapshot _snapshot = Snapshot.Empty;

    /// <summary>Number of prefixes (both families) that have an owner.</summary>
    public int Count => Volatile.Read(ref _snapshot).Count;

    /// <summary>
    /// Routes <paramref name="address"/>/<paramref name="prefixLength"/> to <paramref name="value"/>.
    /// Host bits beyond the prefix are ignored; an identical prefix already present changes owner.
    /// The family is the address's own: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an IPv6
    /// prefix and matches only 16-byte lookups, as in the reference implementations.
    /// </summary>
    public void Insert(IPAddress address, int prefixLength, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var (key, isV6) = ToKey(address, prefixLength);
        var cidr = (byte)prefixLength;
        key &= Masks[cidr];

        lock (_writeLock)
        {
            var current = _snapshot;
            var root = isV6 ? current.V6 : current.V4;
            var added = true;
            var newRoot = InsertNode(root, key, cidr, value, ref added);
            Publish(current, isV6, newRoot, added ? 1 : 0);
        }
    }

    /// <summary>
    /// Removes exactly the prefix <paramref name="address"/>/<paramref name="prefixLength"/> (host
    /// bits ignored). Returns false when that prefix has no owner; shorter or longer prefixes are kept.
    /// </summary>
    public bool Remove(IPAddress address, int prefixLength)
    {
        var (key, isV6) = ToKey(address, prefixLength);
        var cidr = (byte)prefixLength;
        key &= Masks[cidr];

        lock (_writeLock)
        {
            var current = _snapshot;
            var root = isV6 ? current.V6 : current.V4;
            var newRoot = RemoveNode(root, key, cidr, out var removed);
            if (!removed)
            {
                return false;
            }

            Publish(current, isV6, newRoot, -1);
            return true;
        }
    }

    /// <summary>Removes every prefix owned by <paramref name="value"/> (by reference), in both families.</summary>
    public void RemoveAll(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeLock)
        {
            var current = _snapshot;
            var removed = 0;
            var v4 = RemoveOwner(current.V4, value, ref removed);
            var v6 = RemoveOwner(current.V6, value, ref removed);
            if (removed != 0)
            {
                Volatile.Write(ref _snapshot, new Snapshot(v4, v6, current.Count - removed));
            }
        }
    }

    /// <summary>Removes every prefix.</summary>
    public void Clear()
    {
        lock (_writeLock)
        {
            Volatile.Write(ref _snapshot, Snapshot.Empty);
        }
    }

    /// <summary>
    /// The owner of the longest prefix containing <paramref name="address"/>, a raw network-order
    /// address of 4 (IPv4) or 16 (IPv6) bytes, e.g. sliced straight from a packet header; null when
    /// no prefix matches or the span has any other length (it never throws). Lock-free and
    /// allocation-free; safe concurrently with writers.
    /// </summary>
    public T? Lookup(ReadOnlySpan<byte> address)
    {
        var snapshot = Volatile.Read(ref _snapshot);
        Node? node;
        UInt128 key;
        int maxBits;
        if (address.Length == 4)
        {
            node = snapshot.V4;
            key = (UInt128)BinaryPrimitives.ReadUInt32BigEndian(address) << (V6Bits - V4Bits);
            maxBits = V4Bits;
        }
        else if (address.Length == 16)
        {
            node = snapshot.V6;
            key = BinaryPrimitives.ReadUInt128BigEndian(address);
            maxBits = V6Bits;
        }
        else
        {
            // No exception on the per-packet path: a span that is not an address has no owner.
            return null;
        }

        T? best = null;
        while (node is not null)
        {
            if (((key ^ node.Key) & Masks[node.Cidr]) != UInt128.Zero)
            {
                break;
            }

            if (node.Value is not null)
            {
                best = node.Value;
            }

            if (node.Cidr == maxBits)
            {
                break;
            }

            node = BitAt(key, node.Cidr) ? node.One : node.Zero;
        }

        return best;
    }

    /// <summary>The prefixes owned by <paramref name="value"/> (by reference): IPv4 first, each family in address order.</summary>
    public IReadOnlyList<IPNetwork> PrefixesOf(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var snapshot = Volatile.Read(ref _snapshot);
        var result = new List<IPNetwork>();
        CollectOwned(snapshot.V4, value, isV6: false, result);
        CollectOwned(snapshot.V6, value, isV6: true, result);
        return result;
    }

    private void Publish(Snapshot current, bool isV6, Node? newRoot, int countDelta)
    {
        var next = isV6
            ? new Snapshot(current.V4, newRoot, current.Count + countDelta)
            : new Snapshot(newRoot, current.V6, current.Count + countDelta);
        Volatile.Write(ref _snapshot, next);
    }

    private static (UInt128 Key, bool IsV6) ToKey(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        switch (address.AddressFamily)
        {
            case AddressFamily.InterNetwork:
                ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
                ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, V4Bits);
                address.TryWriteBytes(bytes, out _);
                return ((UInt128)BinaryPrimitives.ReadUInt32BigEndian(bytes) << (V6Bits - V4Bits), false);
            case AddressFamily.InterNetworkV6:
                ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
                ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, V6Bits);
                address.TryWriteBytes(bytes, out _);
                return (BinaryPrimitives.ReadUInt128BigEndian(bytes), true);
            default:
                throw new ArgumentException("Only IPv4 and IPv6 addresses can be routed.", nameof(address));
        }
    }

    // Bit `index` counted from the most significant bit (index 0).
    private static bool BitAt(UInt128 key, int index) => ((key >> (127 - index)) & UInt128.One) != UInt128.Zero;

    private static int CommonPrefixLength(UInt128 a, UInt128 b, int limit)
    {
        var common = (int)UInt128.LeadingZeroCount(a ^ b);
        return Math.Min(common, limit);
    }

    private static Node InsertNode(Node? node, UInt128 key, byte cidr, T value, ref bool added)
    {
        if (node is null)
        {
            return new Node(key, cidr, value, null, null);
        }

        var common = CommonPrefixLength(node.Key, key, Math.Min(node.Cidr, cidr));

        if (common == node.Cidr && common == cidr)
        {
            // Same prefix: give it the new owner (or make a branch node a route).
            added = node.Value is null;
            return new Node(node.Key, node.Cidr, value, node.Zero, node.One);
        }

        if (common == node.Cidr)
        {
            // This node's prefix contains the new one: descend on the next bit of the new key.
            return BitAt(key, node.Cidr)
                ? new Node(node.Key, node.Cidr, node.Value, node.Zero, InsertNode(node.One, key, cidr, value, ref added))
                : new Node(node.Key, node.Cidr, node.Value, InsertNode(node.Zero, key, cidr, value, ref added), node.One);
        }

        if (common == cidr)
        {
            // The new prefix contains this node: it becomes the parent.
            return BitAt(node.Key, cidr)
                ? new Node(key, cidr, value, null, node)
                : new Node(key, cidr, value, node, null);
        }

        // The prefixes diverge at bit `common`: join them under an ownerless branch node.
        var leaf = new Node(key, cidr, value, null, null);
        var branchKey = key & Masks[common];
        return BitAt(key, common)
            ? new Node(branchKey, (byte)common, null, node, leaf)
            : new Node(branchKey, (byte)common, null, leaf, node);
    }

    private static Node? RemoveNode(Node? node, UInt128 key, byte cidr, out bool removed)
    {
        removed = false;
        if (node is null || node.Cidr > cidr || ((key ^ node.Key) & Masks[node.Cidr]) != UInt128.Zero)
        {
            return node;
        }

        if (node.Cidr == cidr)
        {
            if (node.Value is null)
            {
                return node;
            }

            removed = true;
            return Compact(node.Key, node.Cidr, null, node.Zero, node.One);
        }

        if (BitAt(key, node.Cidr))
        {
            var one = RemoveNode(node.One, key, cidr, out removed);
            return removed ? Compact(node.Key, node.Cidr, node.Value, node.Zero, one) : node;
        }

        var zero = RemoveNode(node.Zero, key, cidr, out removed);
        return removed ? Compact(node.Key, node.Cidr, node.Value, zero, node.One) : node;
    }

    private static Node? RemoveOwner(Node? node, T owner, ref int removed)
    {
        if (node is null)
        {
            return null;
        }

        var zero = RemoveOwner(node.Zero, owner, ref removed);
        var one = RemoveOwner(node.One, owner, ref removed);
        var value = node.Value;
        if (value is not null && ReferenceEquals(value, owner))
        {
            value = null;
            removed++;
        }

        if (ReferenceEquals(zero, node.Zero) && ReferenceEquals(one, node.One) && ReferenceEquals(value, node.Value))
        {
            return node;
        }

        return Compact(node.Key, node.Cidr, value, zero, one);
    }

    // Keeps the trie path-compressed: an ownerless node survives only while it still branches.
    private static Node? Compact(UInt128 key, byte cidr, T? value, Node? zero, Node? one)
    {
        if (value is null)
        {
            if (zero is null)
            {
                return one;
            }

            if (one is null)
            {
                return zero;
            }
        }

        return new Node(key, cidr, value, zero, one);
    }

    private static void CollectOwned(Node? node, T owner, bool isV6, List<IPNetwork> result)
    {
        if (node is null)
        {
            return;
        }

        if (node.Value is not null && ReferenceEquals(node.Value, owner))
        {
            result.Add(new IPNetwork(ToAddress(node.Key, isV6), node.Cidr));
        }

        CollectOwned(node.Zero, owner, isV6, result);
        CollectOwned(node.One, owner, isV6, result);
    }

    private static IPAddress ToAddress(UInt128 key, bool isV6)
    {
        if (isV6)
        {
            Span<byte> v6 = stackalloc byte[16];
            BinaryPrimitives.WriteUInt128BigEndian(v6, key);
            return new IPAddress(v6);
        }

        Span<byte> v4 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)(key >> (V6Bits - V4Bits)));
        return new IPAddress(v4);
    }

    private static UInt128[] CreateMasks()
    {
        var masks = new UInt128[V6Bits + 1];
        for (var cidr = 1; cidr <= V6Bits; cidr++)
        {
            masks[cidr] = UInt128.MaxValue << (V6Bits - cidr);
        }

        return masks;
    }

    private sealed class Node(UInt128 key, byte cidr, T? value, Node? zero, Node? one)
    {
        public readonly UInt128 Key = key;
        public readonly byte Cidr = cidr;
        public readonly T? Value = value;
        public readonly Node? Zero = zero;
        public readonly Node? One = one;
    }

    private sealed class Snapshot(Node? v4, Node? v6, int count)
    {
        public static readonly Snapshot Empty = new(null, null, 0);

        public readonly Node? V4 = v4;
        public readonly Node? V6 = v6;
        public readonly int Count = count;
    }
}
