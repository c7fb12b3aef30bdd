using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Control.Store;

/// <summary>
/// Hands out mesh addresses: the lowest free address of each family's prefix (default
/// <c>100.64.0.0/10</c> and <c>fd7a:115c:a1e0::/48</c>), so assignments are deterministic and dense,
/// and an address released is the next one given out again.
/// <para>
/// Never given out: the network address, the IPv4 broadcast address, MagicDNS
/// (<c>100.100.100.100</c> and <c>fd7a:115c:a1e0::53</c>), all of <c>100.100.100.0/24</c> (kept for
/// mesh services, as Tailscale does) and <c>100.115.92.0/23</c> (ChromeOS guest VMs, which Tailscale
/// clients route locally), each only where it falls inside the prefix.
/// </para>
/// <para>
/// Pure: no database, no clock. The state loads the addresses of stored nodes with
/// <see cref="MarkInUse"/> at start, then allocates and releases as nodes come and go. Not thread-safe:
/// the state calls it under its own lock. Every operation is O(log n) amortized in the addresses held
/// (a sorted set of addresses freed below a cursor, and a cursor that only moves forward).
/// </para>
/// </summary>
public sealed class IpAllocator
{
    public static readonly IPNetwork DefaultV4Prefix = IPNetwork.Parse("100.64.0.0/10");
    public static readonly IPNetwork DefaultV6Prefix = IPNetwork.Parse("fd7a:115c:a1e0::/48");
    public static readonly IPAddress MagicDnsV4 = IPAddress.Parse("100.100.100.100");
    public static readonly IPAddress MagicDnsV6 = IPAddress.Parse("fd7a:115c:a1e0::53");

    private static readonly IPNetwork ServiceRange = IPNetwork.Parse("100.100.100.0/24");
    private static readonly IPNetwork ChromeOsVmRange = IPNetwork.Parse("100.115.92.0/23");

    private readonly AddressPool? _v4;
    private readonly AddressPool? _v6;

    /// <summary>The default prefixes.</summary>
    public IpAllocator()
        : this(DefaultV4Prefix, DefaultV6Prefix)
    {
    }

    /// <summary>Either prefix may be null (that family is not allocated), not both.</summary>
    public IpAllocator(IPNetwork? v4Prefix, IPNetwork? v6Prefix)
    {
        if (v4Prefix is null && v6Prefix is null)
        {
            throw new ArgumentException("at least one prefix (IPv4 or IPv6) is needed");
        }

        if (v4Prefix is { } v4)
        {
            if (v4.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new ArgumentException($"{v4} is not an IPv4 prefix", nameof(v4Prefix));
            }

            _v4 = new AddressPool(v4, [ServiceRange, ChromeOsVmRange], reserveLast: true);
        }

        if (v6Prefix is { } v6)
        {
            if (v6.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6)
            {
                throw new ArgumentException($"{v6} is not an IPv6 prefix", nameof(v6Prefix));
            }

            _v6 = new AddressPool(v6, [new IPNetwork(MagicDnsV6, 128)], reserveLast: false);
        }
    }

    public IPNetwork? V4Prefix => _v4?.Prefix;

    public IPNetwork? V6Prefix => _v6?.Prefix;

    /// <summary>
    /// Records an address as held (a stored node's). False when it is outside both prefixes (say, the
    /// prefix changed since; it is not tracked) or already held.
    /// </summary>
    public bool MarkInUse(IPAddress address) => Pool(ref address)?.MarkInUse(address) ?? false;

    /// <summary>Returns an address to the pool. False when it was not held.</summary>
    public bool Release(IPAddress address) => Pool(ref address)?.Release(address) ?? false;

    public bool IsInUse(IPAddress address) => Pool(ref address)?.IsHeld(address) ?? false;

    /// <summary>The lowest free IPv4 address, now held. <see cref="IpAllocationException"/> when none is left.</summary>
    public IPAddress AllocateV4() =>
        (_v4 ?? throw new InvalidOperationException("no IPv4 prefix is configured")).Allocate();

    /// <summary>The lowest free IPv6 address, now held. <see cref="IpAllocationException"/> when none is left.</summary>
    public IPAddress AllocateV6() =>
        (_v6 ?? throw new InvalidOperationException("no IPv6 prefix is configured")).Allocate();

    /// <summary>One address of each configured family, or none (when one family is exhausted, the other is not taken).</summary>
    public (IPAddress? V4, IPAddress? V6) Allocate()
    {
        var v4 = _v4?.Allocate();
        try
        {
            return (v4, _v6?.Allocate());
        }
        catch
        {
            if (v4 is not null)
            {
                _v4!.Release(v4);
            }

            throw;
        }
    }

    private AddressPool? Pool(ref IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var pool = address.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
        return pool is not null && pool.Prefix.Contains(address) ? pool : null;
    }

    /// <summary>
    /// One family. Addresses are offsets from the network address. Invariant: every offset below
    /// <see cref="_next"/> (all of them once <see cref="_tailDone"/>) is held, reserved, or in
    /// <see cref="_free"/>; so the lowest free address is the smallest of <see cref="_free"/>, or else
    /// the first offset from <see cref="_next"/> on that is neither held nor reserved.
    /// </summary>
    private sealed class AddressPool
    {
        private readonly UInt128 _base;
        private readonly UInt128 _last;
        private readonly (UInt128 First, UInt128 Last)[] _reserved;
        private readonly HashSet<UInt128> _held = [];
        private readonly SortedSet<UInt128> _free = [];
        private UInt128 _next;
        private bool _tailDone;

        public AddressPool(IPNetwork prefix, IPNetwork[] reservedRanges, bool reserveLast)
        {
            Prefix = prefix;
            var bits = prefix.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            _base = ToNumber(prefix.BaseAddress);
            _last = prefix.PrefixLength == 0 ? (bits == 32 ? uint.MaxValue : UInt128.MaxValue) : (UInt128.One << (bits - prefix.PrefixLength)) - 1;

            var reserved = new List<(UInt128, UInt128)> { (0, 0) };
            if (reserveLast)
            {
                reserved.Add((_last, _last));
            }

            foreach (var range in reservedRanges)
            {
                // Prefixes either nest or are disjoint: keep the part inside ours.
                if (prefix.Contains(range.BaseAddress))
                {
                    var first = ToNumber(range.BaseAddress) - _base;
                    var size = (UInt128.One << (bits - range.PrefixLength)) - 1;
                    reserved.Add((first, UInt128.Min(first + size, _last)));
                }
                else if (range.Contains(prefix.BaseAddress))
                {
                    reserved.Add((0, _last));
                }
            }

            _reserved = [.. reserved];
        }

        public IPNetwork Prefix { get; }

        public bool IsHeld(IPAddress address) => _held.Contains(ToNumber(address) - _base);

        public bool MarkInUse(IPAddress address)
        {
            var offset = ToNumber(address) - _base;
            if (!_held.Add(offset))
            {
                return false;
            }

            if (IsBehindCursor(offset))
            {
                _free.Remove(offset);
            }

            return true;
        }

        public bool Release(IPAddress address)
        {
            var offset = ToNumber(address) - _base;
            if (!_held.Remove(offset))
            {
                return false;
            }

            if (IsBehindCursor(offset) && ReservedRangeOf(offset) < 0)
            {
                _free.Add(offset);
            }

            return true;
        }

        public IPAddress Allocate()
        {
            UInt128 offset;
            if (_free.Count > 0)
            {
                offset = _free.Min;
                _free.Remove(offset);
            }
            else if (!TryTakeFromCursor(out offset))
            {
                throw new IpAllocationException(Prefix, $"the prefix {Prefix} is exhausted: every usable address is in use");
            }

            _held.Add(offset);
            return ToAddress(_base + offset, Prefix.BaseAddress.AddressFamily);
        }

        private bool IsBehindCursor(UInt128 offset) => _tailDone || offset < _next;

        private bool TryTakeFromCursor(out UInt128 offset)
        {
            while (!_tailDone)
            {
                var candidate = _next;
                var range = ReservedRangeOf(candidate);
                var end = range >= 0 ? _reserved[range].Last : candidate;
                if (end == _last)
                {
                    _tailDone = true;
                }
                else
                {
                    _next = end + 1;
                }

                if (range < 0 && !_held.Contains(candidate))
                {
                    offset = candidate;
                    return true;
                }
            }

            offset = default;
            return false;
        }

        private int ReservedRangeOf(UInt128 offset)
        {
            for (var i = 0; i < _reserved.Length; i++)
            {
                if (offset >= _reserved[i].First && offset <= _reserved[i].Last)
                {
                    return i;
                }
            }

            return -1;
        }

        private static UInt128 ToNumber(IPAddress address)
        {
            Span<byte> bytes = stackalloc byte[16];
            address.TryWriteBytes(bytes, out var written);
            return written == 4 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt128BigEndian(bytes);
        }

        private static IPAddress ToAddress(UInt128 value, AddressFamily family)
        {
            Span<byte> bytes = stackalloc byte[16];
            if (family == AddressFamily.InterNetwork)
            {
                BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)value);
                return new IPAddress(bytes[..4]);
            }

            BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
            return new IPAddress(bytes);
        }
    }
}

/// <summary>A prefix has no free address left.</summary>
public sealed class IpAllocationException(IPNetwork prefix, string message) : Exception(message)
{
    public IPNetwork Prefix { get; } = prefix;
}
