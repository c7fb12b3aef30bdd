namespace Mesh.Policy;

internal readonly record struct IpRange(UInt128 First, UInt128 Last);

/// <summary>An immutable set of addresses as sorted, disjoint, non-adjacent ranges. Lookups are binary searches.</summary>
internal sealed class IpSet
{
    private readonly IpRange[] _ranges;
    private IReadOnlyList<string>? _texts;

    private IpSet(IpRange[] normalised) => _ranges = normalised;

    public static IpSet Empty { get; } = new([]);

    /// <summary>Every address, both families.</summary>
    public static IpSet All { get; } = new([new IpRange(UInt128.Zero, UInt128.MaxValue)]);

    public ReadOnlySpan<IpRange> Ranges => _ranges;

    public bool IsEmpty => _ranges.Length == 0;

    public static IpSet Of(IpRange range) => new([range]);

    public static IpSet Of(IEnumerable<IpRange> ranges)
    {
        var list = ranges.ToList();
        if (list.Count == 0)
        {
            return Empty;
        }

        list.Sort(static (a, b) => a.First.CompareTo(b.First));
        var merged = new List<IpRange>(list.Count);
        var cur = list[0];
        for (var i = 1; i < list.Count; i++)
        {
            var r = list[i];
            if (cur.Last == UInt128.MaxValue || r.First <= cur.Last + 1)
            {
                if (r.Last > cur.Last)
                {
                    cur = cur with { Last = r.Last };
                }
            }
            else
            {
                merged.Add(cur);
                cur = r;
            }
        }

        merged.Add(cur);
        return new IpSet([.. merged]);
    }

    public static IpSet OfAddresses(IEnumerable<UInt128> addresses) => Of(addresses.Select(a => new IpRange(a, a)));

    public static IpSet Union(IEnumerable<IpSet> sets)
    {
        var list = sets.Where(static s => !s.IsEmpty).Distinct().ToList();
        return list.Count switch
        {
            0 => Empty,
            1 => list[0],
            _ => Of(list.SelectMany(static s => s._ranges)),
        };
    }

    public IpSet Union(IpSet other) => other.IsEmpty ? this : IsEmpty ? other : Of(_ranges.Concat(other._ranges));

    public IpSet Except(IpSet other)
    {
        if (other.IsEmpty || IsEmpty)
        {
            return this;
        }

        var result = new List<IpRange>();
        foreach (var r in _ranges)
        {
            var first = r.First;
            var done = false;
            foreach (var o in other._ranges)
            {
                if (o.Last < first || o.First > r.Last)
                {
                    continue;
                }

                if (o.First > first)
                {
                    result.Add(new IpRange(first, o.First - 1));
                }

                if (o.Last >= r.Last)
                {
                    done = true;
                    break;
                }

                first = o.Last + 1;
            }

            if (!done)
            {
                result.Add(new IpRange(first, r.Last));
            }
        }

        return Of(result);
    }

    public IpSet Intersect(IpSet other) => Except(Except(other));

    /// <summary>Index of the first range whose Last is at or after <paramref name="address"/>.</summary>
    private int LowerBound(UInt128 address)
    {
        int lo = 0, hi = _ranges.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].Last < address)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    public bool Contains(UInt128 address)
    {
        var i = LowerBound(address);
        return i < _ranges.Length && _ranges[i].First <= address;
    }

    public bool Overlaps(IpRange range)
    {
        var i = LowerBound(range.First);
        return i < _ranges.Length && _ranges[i].First <= range.Last;
    }

    public bool Overlaps(IpSet other)
    {
        var (small, large) = _ranges.Length <= other._ranges.Length ? (this, other) : (other, this);
        foreach (var r in small._ranges)
        {
            if (large.Overlaps(r))
            {
                return true;
            }
        }

        return false;
    }

    public bool Covers(IpRange range)
    {
        var i = LowerBound(range.First);
        return i < _ranges.Length && _ranges[i].First <= range.First && _ranges[i].Last >= range.Last;
    }

    public bool IsSubsetOf(IpSet other)
    {
        foreach (var r in _ranges)
        {
            if (!other.Covers(r))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Tailscale's text form: addresses, CIDRs, or "a-b" ranges.</summary>
    public List<string> ToStrings()
    {
        var list = new List<string>(_ranges.Length);
        foreach (var r in _ranges)
        {
            list.AddRange(IpText.FormatRange(r));
        }

        return list;
    }

    /// <summary>
    /// <see cref="ToStrings"/>, formatted on first use and then shared: rules that name the same selector share one
    /// set, so a large source (autogroup:member over thousands of nodes) is formatted once per compile, not once per
    /// rule. Callers must not mutate the list.
    /// </summary>
    public IReadOnlyList<string> Texts
    {
        get
        {
            var texts = Volatile.Read(ref _texts);
            if (texts is null)
            {
                var built = ToStrings().AsReadOnly();
                texts = Interlocked.CompareExchange(ref _texts, built, null) ?? built;
            }

            return texts;
        }
    }

    /// <summary>The set as CIDR blocks (single addresses without a length).</summary>
    public List<string> ToPrefixStrings()
    {
        var list = new List<string>(_ranges.Length);
        foreach (var r in _ranges)
        {
            foreach (var part in IpText.SplitFamilies(r))
            {
                foreach (var (first, bits) in IpText.ToPrefixes(part))
                {
                    list.Add(IpText.FormatPrefix(first, bits));
                }
            }
        }

        return list;
    }

    public override string ToString() => string.Join(",", ToStrings());
}
