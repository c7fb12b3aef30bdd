using System.Text;

namespace Mesh.Net.Filter;

/// <summary>How a packet's destination port takes part in matching.</summary>
internal enum PortMatch : byte
{
    /// <summary>TCP, UDP, SCTP: the port must lie in a destination's range.</summary>
    Port,

    /// <summary>ICMP: any destination entry for the address will do, whatever its ports.</summary>
    AnyPort,

    /// <summary>Other protocols have no ports: only an entry open on every port (0-65535) allows them.</summary>
    AllPorts,
}

/// <summary>A rule after parsing: its protocol numbers and address ranges.</summary>
internal sealed record CompiledRule(
    int Index,
    bool[] Protocols,
    AddressRange[] Sources,
    CompiledDestination[] Destinations);

internal readonly record struct CompiledDestination(AddressRange Range, int First, int Last)
{
    public bool AllPorts => First == 0 && Last == ushort.MaxValue;
}

/// <summary>
/// The rules compiled into lookup tables: for each address family and IP protocol, the source
/// address space cut into elementary intervals (every rule's source ranges start or end on an
/// interval boundary), each interval pointing to one shared destination index built from exactly
/// the rules whose sources cover it; the destination index is cut the same way into intervals
/// holding merged port ranges. A lookup is three binary searches (source, destination, port),
/// independent of the number of rules. Rules whose sources are a whole family (<c>*</c>) sit in a
/// separate destination index checked for every source, so they are not copied into every interval.
/// Immutable and safe on any number of threads; compiling allocates, matching never does.
/// </summary>
internal sealed class RuleMatcher
{
    private const int ProtocolCount = 256;

    private readonly SourceIndex?[] _tables;

    private RuleMatcher(SourceIndex?[] tables, AddressSet routedDestinations)
    {
        _tables = tables;
        RoutedDestinations = routedDestinations;
    }

    /// <summary>Every destination a rule names other than by <c>*</c>: the routes this node serves.</summary>
    public AddressSet RoutedDestinations { get; }

    public bool Allows(int family, byte protocol, UInt128 source, UInt128 destination, int port, PortMatch mode)
    {
        var table = _tables[(family * ProtocolCount) + protocol];
        return table is not null && table.Matches(source, destination, port, mode);
    }

    public static RuleMatcher Build(IReadOnlyList<CompiledRule> rules)
    {
        var tables = new SourceIndex?[2 * ProtocolCount];
        var routed = new List<AddressRange>();
        foreach (var rule in rules)
        {
            foreach (var destination in rule.Destinations)
            {
                if (!destination.Range.IsWholeFamily)
                {
                    routed.Add(destination.Range);
                }
            }
        }

        var selected = new List<CompiledRule>();
        for (int family = 0; family < 2; family++)
        {
            for (int protocol = 0; protocol < ProtocolCount; protocol++)
            {
                selected.Clear();
                foreach (var rule in rules)
                {
                    if (rule.Protocols[protocol] && HasFamily(rule.Sources, family) && HasFamily(rule.Destinations, family))
                    {
                        selected.Add(rule);
                    }
                }

                if (selected.Count > 0)
                {
                    tables[(family * ProtocolCount) + protocol] = SourceIndex.Build(family, selected);
                }
            }
        }

        return new RuleMatcher(tables, new AddressSet(routed));
    }

    private static bool HasFamily(AddressRange[] ranges, int family)
    {
        foreach (var range in ranges)
        {
            if (range.Family == family)
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasFamily(CompiledDestination[] destinations, int family)
    {
        foreach (var destination in destinations)
        {
            if (destination.Range.Family == family)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Sorted unique interval starts covering [0, max]: 0, every start, every end + 1.</summary>
    private static UInt128[] Boundaries(IEnumerable<AddressRange> ranges, int family)
    {
        var set = new SortedSet<UInt128> { UInt128.Zero };
        var max = AddressRange.MaxOf(family);
        foreach (var range in ranges)
        {
            set.Add(range.Start);
            if (range.End < max)
            {
                set.Add(range.End + 1);
            }
        }

        return [.. set];
    }

    private sealed class SourceIndex
    {
        private readonly UInt128[] _starts;
        private readonly DestinationIndex?[] _destinations;
        private readonly DestinationIndex? _anySource;

        private SourceIndex(UInt128[] starts, DestinationIndex?[] destinations, DestinationIndex? anySource)
        {
            _starts = starts;
            _destinations = destinations;
            _anySource = anySource;
        }

        public bool Matches(UInt128 source, UInt128 destination, int port, PortMatch mode)
        {
            if (_anySource is not null && _anySource.Matches(destination, port, mode))
            {
                return true;
            }

            int i = Intervals.Floor(_starts, source);
            var index = i >= 0 ? _destinations[i] : null;
            return index is not null && index.Matches(destination, port, mode);
        }

        public static SourceIndex Build(int family, List<CompiledRule> rules)
        {
            var anySource = new List<CompiledRule>();
            var specific = new List<CompiledRule>();
            var specificRanges = new List<AddressRange>();
            foreach (var rule in rules)
            {
                bool whole = false;
                foreach (var range in rule.Sources)
                {
                    whole |= range.Family == family && range.IsWholeFamily;
                }

                if (whole)
                {
                    anySource.Add(rule);
                    continue;
                }

                specific.Add(rule);
                foreach (var range in rule.Sources)
                {
                    if (range.Family == family)
                    {
                        specificRanges.Add(range);
                    }
                }
            }

            var starts = Boundaries(specificRanges, family);
            var covering = new List<int>?[starts.Length];
            for (int r = 0; r < specific.Count; r++)
            {
                foreach (var range in specific[r].Sources)
                {
                    if (range.Family != family)
                    {
                        continue;
                    }

                    int lo = Intervals.Floor(starts, range.Start);
                    int hi = Intervals.Floor(starts, range.End);
                    for (int i = lo; i <= hi; i++)
                    {
                        var list = covering[i] ??= [];
                        if (list.Count == 0 || list[^1] != r)
                        {
                            list.Add(r);
                        }
                    }
                }
            }

            // Neighbouring intervals usually hold the same rules: share one destination index per
            // distinct rule set, then merge runs of intervals that point to the same index.
            var interned = new Dictionary<string, DestinationIndex>(StringComparer.Ordinal);
            var key = new StringBuilder();
            var mergedStarts = new List<UInt128>();
            var mergedIndexes = new List<DestinationIndex?>();
            for (int i = 0; i < starts.Length; i++)
            {
                DestinationIndex? index = null;
                var list = covering[i];
                if (list is not null)
                {
                    key.Clear();
                    foreach (int r in list)
                    {
                        key.Append(r).Append(',');
                    }

                    var k = key.ToString();
                    if (!interned.TryGetValue(k, out index))
                    {
                        var chosen = new List<CompiledRule>(list.Count);
                        foreach (int r in list)
                        {
                            chosen.Add(specific[r]);
                        }

                        index = DestinationIndex.Build(family, chosen);
                        interned.Add(k, index);
                    }
                }

                if (mergedIndexes.Count == 0 || !ReferenceEquals(mergedIndexes[^1], index))
                {
                    mergedStarts.Add(starts[i]);
                    mergedIndexes.Add(index);
                }
            }

            return new SourceIndex(
                [.. mergedStarts],
                [.. mergedIndexes],
                anySource.Count > 0 ? DestinationIndex.Build(family, anySource) : null);
        }
    }

    private sealed class DestinationIndex
    {
        private readonly UInt128[] _starts;
        private readonly PortSet?[] _ports;

        private DestinationIndex(UInt128[] starts, PortSet?[] ports)
        {
            _starts = starts;
            _ports = ports;
        }

        public bool Matches(UInt128 destination, int port, PortMatch mode)
        {
            int i = Intervals.Floor(_starts, destination);
            var ports = i >= 0 ? _ports[i] : null;
            return ports is not null && ports.Matches(port, mode);
        }

        public static DestinationIndex Build(int family, List<CompiledRule> rules)
        {
            var entries = new List<CompiledDestination>();
            foreach (var rule in rules)
            {
                foreach (var destination in rule.Destinations)
                {
                    if (destination.Range.Family == family)
                    {
                        entries.Add(destination);
                    }
                }
            }

            var ranges = new List<AddressRange>(entries.Count);
            foreach (var entry in entries)
            {
                ranges.Add(entry.Range);
            }

            var starts = Boundaries(ranges, family);
            var perInterval = new List<CompiledDestination>?[starts.Length];
            foreach (var entry in entries)
            {
                int lo = Intervals.Floor(starts, entry.Range.Start);
                int hi = Intervals.Floor(starts, entry.Range.End);
                for (int i = lo; i <= hi; i++)
                {
                    (perInterval[i] ??= []).Add(entry);
                }
            }

            var mergedStarts = new List<UInt128>();
            var mergedPorts = new List<PortSet?>();
            for (int i = 0; i < starts.Length; i++)
            {
                var ports = perInterval[i] is { } list ? PortSet.Build(list) : null;
                if (mergedPorts.Count == 0 || !PortSet.SameAs(mergedPorts[^1], ports))
                {
                    mergedStarts.Add(starts[i]);
                    mergedPorts.Add(ports);
                }
            }

            return new DestinationIndex([.. mergedStarts], [.. mergedPorts]);
        }
    }

    /// <summary>Merged, sorted, disjoint port ranges; <see cref="All"/> when one entry opens every port.</summary>
    private sealed class PortSet
    {
        private readonly int[] _firsts;
        private readonly int[] _lasts;

        private PortSet(int[] firsts, int[] lasts, bool all)
        {
            _firsts = firsts;
            _lasts = lasts;
            All = all;
        }

        public bool All { get; }

        public bool Matches(int port, PortMatch mode)
        {
            switch (mode)
            {
                case PortMatch.AnyPort:
                    return true;
                case PortMatch.AllPorts:
                    return All;
                default:
                    var firsts = _firsts;
                    int lo = 0;
                    int hi = firsts.Length - 1;
                    while (lo <= hi)
                    {
                        int mid = (int)((uint)(lo + hi) >> 1);
                        if (firsts[mid] <= port)
                        {
                            lo = mid + 1;
                        }
                        else
                        {
                            hi = mid - 1;
                        }
                    }

                    return lo > 0 && port <= _lasts[lo - 1];
            }
        }

        public static PortSet Build(List<CompiledDestination> entries)
        {
            var sorted = new List<CompiledDestination>(entries);
            sorted.Sort((a, b) => a.First.CompareTo(b.First));
            var firsts = new List<int>();
            var lasts = new List<int>();
            bool all = false;
            foreach (var entry in sorted)
            {
                all |= entry.AllPorts;
                if (lasts.Count > 0 && entry.First <= lasts[^1] + 1)
                {
                    lasts[^1] = Math.Max(lasts[^1], entry.Last);
                }
                else
                {
                    firsts.Add(entry.First);
                    lasts.Add(entry.Last);
                }
            }

            return new PortSet([.. firsts], [.. lasts], all);
        }

        public static bool SameAs(PortSet? a, PortSet? b)
        {
            if (ReferenceEquals(a, b))
            {
                return true;
            }

            return a is not null && b is not null && a.All == b.All
                && a._firsts.AsSpan().SequenceEqual(b._firsts) && a._lasts.AsSpan().SequenceEqual(b._lasts);
        }
    }
}
