namespace Mesh.Policy;

/// <summary>
/// Who appears in whose netmap, as node sets per rule: for each rule, the nodes its sources hold (<c>src</c>) and the
/// nodes it reaches (<c>dst</c>: own addresses, overlapping subnet routes, exit nodes for internet destinations; for a
/// grant with <c>via</c>, only the via routers that carry its destinations).
/// A node's peers are then the union of <c>dst</c> over the rules it is a source of, and of <c>src</c> over the rules
/// that reach it, plus its own user's nodes under autogroup:self. This replaces building two address-set unions per
/// node (tens of milliseconds each on 10,000 nodes, so minutes for a coordinator asking for every connected node)
/// with a few hundred word-wise ORs. Rules that name the same selector share one set. The <c>dst</c> sets also
/// let <see cref="NodeFilterBuilder"/> skip, with one bit test, the rules whose destinations cannot concern a node.
/// Built once per compiled policy, on the first FilterFor or PeersOf; immutable afterwards, so safe to share.
/// </summary>
internal sealed class PeerGraph
{
    private readonly NodeIndex _index;
    private readonly IReadOnlyList<CompiledRule> _rules;
    private readonly NodeBits[] _src;
    private readonly NodeBits[] _dst;
    private readonly NodeBits?[] _selfSrc;
    private readonly NodeBits _selfIn;
    private readonly int _distinct;

    public PeerGraph(NodeIndex index, IReadOnlyList<CompiledRule> rules)
    {
        _index = index;
        _rules = rules;
        var words = (index.Nodes.Length + 63) >> 6;
        var byAddresses = new Dictionary<IpSet, NodeBits>(ReferenceEqualityComparer.Instance);
        var byReach = new Dictionary<IpSet, NodeBits>(ReferenceEqualityComparer.Instance);
        var byReachInternet = new Dictionary<IpSet, NodeBits>(ReferenceEqualityComparer.Instance);
        var scratch = new List<int>();
        var id = 0;

        NodeBits Holding(IpSet set)
        {
            if (!byAddresses.TryGetValue(set, out var bits))
            {
                bits = new NodeBits(words, id++);
                scratch.Clear();
                foreach (var r in set.Ranges)
                {
                    index.NodesWithAddressIn(r, scratch);
                }

                foreach (var n in scratch)
                {
                    bits.Set(n);
                }

                byAddresses[set] = bits;
            }

            return bits;
        }

        NodeBits Reached(CompiledRule rule)
        {
            var internet = rule.InternetDst || rule.DstAll.Overlaps(WellKnownRanges.Internet);
            var cache = internet ? byReachInternet : byReach;
            if (!cache.TryGetValue(rule.DstAll, out var bits))
            {
                bits = new NodeBits(words, id++);
                bits.Or(Holding(rule.DstAll));
                foreach (var n in index.Routers)
                {
                    if (rule.DstAll.Overlaps(index.Nodes[n].SubnetRoutes))
                    {
                        bits.Set(n);
                    }
                }

                if (internet)
                {
                    foreach (var n in index.ExitNodes)
                    {
                        bits.Set(n);
                    }
                }

                cache[rule.DstAll] = bits;
            }

            return bits;
        }

        // A via rule reaches the routers that carry its destinations for it, and nothing else.
        NodeBits ViaRouters(CompiledRule rule)
        {
            var bits = new NodeBits(words, id++);
            foreach (var tag in rule.Via!)
            {
                foreach (var n in index.NodesWithTag(tag))
                {
                    if (rule.ViaServes(index.Nodes[n]))
                    {
                        bits.Set(n);
                    }
                }
            }

            return bits;
        }

        _src = new NodeBits[rules.Count];
        _dst = new NodeBits[rules.Count];
        _selfSrc = new NodeBits?[rules.Count];
        _selfIn = new NodeBits(words, -1);
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            _src[i] = Holding(rule.Src);
            _dst[i] = rule.Via is null ? Reached(rule) : ViaRouters(rule);
            if (rule.SelfPorts is not null)
            {
                var self = Holding(rule.ResolvedSrc);
                _selfSrc[i] = self;
                _selfIn.Or(self);
            }
        }

        _distinct = id;
    }

    /// <summary>
    /// Whether rule <paramref name="rule"/>'s (non-self) destinations may concern the node: it holds an address in
    /// them, routes a subnet overlapping them, or is an exit node and they include the internet. Every node that
    /// receives part of the rule's filter passes; a node that passes may still receive nothing (the rule's
    /// destinations are one union here, a node must lie in one destination entry there).
    /// </summary>
    public bool Reaches(int rule, int node) => _dst[rule].Has(node);

    /// <summary>Whether the node holds an address in rule <paramref name="rule"/>'s sources (one bit test).</summary>
    public bool IsSource(int rule, int node) => _src[rule].Has(node);

    /// <summary>The node's peers, in topology order.</summary>
    public string[] Peers(NodeEntry node)
    {
        var n = node.Index;
        var acc = new NodeBits(_selfIn.Words, -1);
        var merged = new bool[_distinct];
        var selfOut = false;
        for (var i = 0; i < _rules.Count; i++)
        {
            if (_src[i].Has(n))
            {
                Merge(acc, _dst[i], merged);
                selfOut |= _selfSrc[i]?.Has(n) == true;
            }

            if (_dst[i].Has(n))
            {
                Merge(acc, _src[i], merged);
            }
        }

        if (!node.Tagged && node.Node.User is not null)
        {
            foreach (var m in _index.UntaggedNodesOf(node.Node.User))
            {
                if (selfOut || _selfIn.Has(m))
                {
                    acc.Set(m);
                }
            }
        }

        acc.Clear(n);
        var nodes = _index.Nodes;
        var peers = new string[acc.Count()];
        var k = 0;
        foreach (var m in acc)
        {
            peers[k++] = nodes[m].Node.Name;
        }

        return peers;
    }

    private static void Merge(NodeBits acc, NodeBits bits, bool[] merged)
    {
        if (!merged[bits.Id])
        {
            merged[bits.Id] = true;
            acc.Or(bits);
        }
    }

    /// <summary>A fixed-size set of node indices, one bit each.</summary>
    private sealed class NodeBits
    {
        private readonly ulong[] _words;

        public NodeBits(int words, int id)
        {
            _words = new ulong[words];
            Id = id;
        }

        /// <summary>Dense number among the graph's shared sets, for de-duplicating merges; -1 for scratch sets.</summary>
        public int Id { get; }

        public int Words => _words.Length;

        public bool Has(int n) => (_words[n >> 6] & (1UL << n)) != 0;

        public void Set(int n) => _words[n >> 6] |= 1UL << n;

        public void Clear(int n) => _words[n >> 6] &= ~(1UL << n);

        public void Or(NodeBits other)
        {
            var a = _words.AsSpan();
            ReadOnlySpan<ulong> b = other._words;
            var i = 0;
            var width = System.Numerics.Vector<ulong>.Count;
            if (System.Numerics.Vector.IsHardwareAccelerated)
            {
                for (; i <= a.Length - width; i += width)
                {
                    (new System.Numerics.Vector<ulong>(a[i..]) | new System.Numerics.Vector<ulong>(b[i..])).CopyTo(a[i..]);
                }
            }

            for (; i < a.Length; i++)
            {
                a[i] |= b[i];
            }
        }

        public int Count()
        {
            var c = 0;
            foreach (var w in _words)
            {
                c += System.Numerics.BitOperations.PopCount(w);
            }

            return c;
        }

        public Enumerator GetEnumerator() => new(_words);

        public struct Enumerator
        {
            private readonly ulong[] _words;
            private int _word;
            private ulong _rest;

            public Enumerator(ulong[] words)
            {
                _words = words;
                _word = -1;
                _rest = 0;
                Current = -1;
            }

            public int Current { get; private set; }

            public bool MoveNext()
            {
                while (_rest == 0)
                {
                    if (++_word >= _words.Length)
                    {
                        return false;
                    }

                    _rest = _words[_word];
                }

                Current = (_word << 6) + System.Numerics.BitOperations.TrailingZeroCount(_rest);
                _rest &= _rest - 1;
                return true;
            }
        }
    }
}
