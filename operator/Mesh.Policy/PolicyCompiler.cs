namespace Mesh.Policy;

/// <summary>
/// Resolves a parsed policy against a topology: every selector becomes a set of addresses once, every rule becomes
/// a <see cref="CompiledRule"/>, and each node's packet filter is built by walking each destination to the nodes it
/// touches (through the address index), never by testing every rule against every node.
/// </summary>
internal sealed class PolicyCompiler
{
    private readonly PolicyDocument _doc;
    private readonly NodeIndex _index;
    private readonly Dictionary<string, IpSet> _cache = new(StringComparer.Ordinal);

    public PolicyCompiler(PolicyDocument doc, NodeIndex index)
    {
        _doc = doc;
        _index = index;
    }

    public IpSet Resolve(Alias alias)
    {
        if (alias.Set is not null)
        {
            return alias.Set;
        }

        if (_cache.TryGetValue(alias.Name, out var cached))
        {
            return cached;
        }

        var set = alias.Kind switch
        {
            AliasKind.Wildcard => WellKnownRanges.MeshAddresses,
            AliasKind.Internet => WellKnownRanges.Internet,
            AliasKind.User => NodesIps(UserNodes(alias.Name)),
            AliasKind.Group => NodesIps(_doc.Groups[alias.Name].SelectMany(UserNodes)),
            AliasKind.Tag => NodesIps(_index.NodesWithTag(alias.Name)),
            AliasKind.Member => NodesIps(_index.Untagged),
            AliasKind.Tagged => NodesIps(_index.Tagged),
            _ => IpSet.Empty,
        };
        _cache[alias.Name] = set;
        return set;
    }

    private IEnumerable<int> UserNodes(string token) => _index.UsersFor(token).SelectMany(_index.UntaggedNodesOf);

    private IpSet NodesIps(IEnumerable<int> nodes) =>
        IpSet.OfAddresses(nodes.SelectMany(n => _index.Nodes[n].Addresses));

    public List<CompiledRule> CompileRules()
    {
        var rules = new List<CompiledRule>(_doc.Rules.Count);
        foreach (var rule in _doc.Rules)
        {
            var resolved = IpSet.Union(rule.Sources.Select(Resolve));
            var hasWildcard = rule.Sources.Any(static s => s.Kind == AliasKind.Wildcard);
            var src = hasWildcard ? resolved.Union(_index.ApprovedSubnetRoutes) : resolved;
            var entries = new List<DstEntry>();
            List<PortRange>? selfPorts = null;
            var internet = false;
            foreach (var d in rule.Destinations)
            {
                switch (d.Alias.Kind)
                {
                    case AliasKind.Self:
                        (selfPorts ??= []).AddRange(d.Ports);
                        continue;
                    case AliasKind.Internet:
                        // Reached through exit nodes' routes, not through packet filters.
                        internet = true;
                        continue;
                    case AliasKind.Wildcard:
                        foreach (var p in d.Ports)
                        {
                            entries.Add(new DstEntry(new NetPortRange("*", p), IpSet.All, true));
                        }

                        continue;
                }

                var set = Resolve(d.Alias);
                foreach (var r in set.Ranges)
                {
                    foreach (var part in IpText.SplitFamilies(r))
                    {
                        foreach (var (first, bits) in IpText.ToPrefixes(part))
                        {
                            var last = bits == 128 ? first : first | (UInt128.MaxValue >> bits);
                            var text = IpText.FormatPrefix(first, bits);
                            var prefixSet = IpSet.Of(new IpRange(first, last));
                            foreach (var p in d.Ports)
                            {
                                entries.Add(new DstEntry(new NetPortRange(text, p), prefixSet, false));
                            }
                        }
                    }
                }
            }

            rules.Add(new CompiledRule
            {
                Rule = rule,
                Src = src,
                SrcStrings = src.ToStrings(),
                ResolvedSrc = resolved,
                Protocols = rule.Protocols,
                Entries = [.. entries],
                SelfPorts = selfPorts?.ToArray(),
                InternetDst = internet,
                DstAll = entries.Any(static e => e.Wildcard) ? IpSet.All : IpSet.Union(entries.Select(static e => e.Set)),
            });
        }

        return rules;
    }

    /// <summary>Builds every node's filter: the rules (and the destinations within them) that concern the node.</summary>
    public List<FilterRule>?[] BuildFilters(List<CompiledRule> rules)
    {
        var nodes = _index.Nodes;
        var filters = new List<FilterRule>?[nodes.Length];
        var stamp = new int[nodes.Length];
        var stampValue = 0;
        var touched = new Dictionary<int, List<NetPortRange>>();
        var hits = new List<int>();

        foreach (var rule in rules)
        {
            if (rule.Via is not null)
            {
                BuildVia(rule, filters);
                continue;
            }

            if (!rule.Src.IsEmpty && rule.Entries.Length > 0)
            {
                touched.Clear();
                var wild = new List<NetPortRange>();
                foreach (var entry in rule.Entries)
                {
                    if (entry.Wildcard)
                    {
                        wild.Add(entry.Net);
                        continue;
                    }

                    stampValue++;
                    hits.Clear();
                    NodesTouchedBy(entry.Set, hits);
                    foreach (var n in hits)
                    {
                        if (stamp[n] == stampValue)
                        {
                            continue;
                        }

                        stamp[n] = stampValue;
                        if (!touched.TryGetValue(n, out var list))
                        {
                            touched[n] = list = [];
                        }

                        list.Add(entry.Net);
                    }
                }

                if (wild.Count > 0)
                {
                    var shared = new FilterRule(rule.SrcStrings, wild, rule.Protocols);
                    for (var n = 0; n < nodes.Length; n++)
                    {
                        Append(filters, n, touched.TryGetValue(n, out var list)
                            ? new FilterRule(rule.SrcStrings, [.. wild, .. list], rule.Protocols)
                            : shared);
                    }
                }
                else
                {
                    foreach (var (n, list) in touched)
                    {
                        Append(filters, n, new FilterRule(rule.SrcStrings, list, rule.Protocols));
                    }
                }
            }

            if (rule.SelfPorts is not null)
            {
                BuildSelf(rule, filters);
            }
        }

        return filters;
    }

    private static void Append(List<FilterRule>?[] filters, int node, FilterRule rule) =>
        (filters[node] ??= []).Add(rule);

    /// <summary>
    /// Nodes a destination concerns: those holding an address in it, routers whose approved subnet routes overlap
    /// it, and exit nodes when it lies wholly in the public internet.
    /// </summary>
    public void NodesTouchedBy(IpSet set, List<int> into)
    {
        foreach (var r in set.Ranges)
        {
            _index.NodesWithAddressIn(r, into);
        }

        foreach (var n in _index.Routers)
        {
            if (_index.Nodes[n].SubnetRoutes.Overlaps(set))
            {
                into.Add(n);
            }
        }

        if (_index.ExitNodes.Length > 0 && set.IsSubsetOf(WellKnownRanges.Internet))
        {
            into.AddRange(_index.ExitNodes);
        }
    }

    /// <summary>
    /// autogroup:self: each user's untagged nodes accept the rule's sources that are that same user's untagged nodes.
    /// Tagged nodes never take part.
    /// </summary>
    private void BuildSelf(CompiledRule rule, List<FilterRule>?[] filters)
    {
        foreach (var (_, group) in _index.UntaggedByUser)
        {
            var sources = new List<UInt128>();
            foreach (var n in group)
            {
                var node = _index.Nodes[n];
                if (node.HasAnyAddress(rule.ResolvedSrc))
                {
                    sources.AddRange(node.Addresses);
                }
            }

            if (sources.Count == 0)
            {
                continue;
            }

            var dsts = new List<NetPortRange>();
            foreach (var n in group)
            {
                foreach (var p in rule.SelfPorts!)
                {
                    foreach (var a in _index.Nodes[n].Addresses)
                    {
                        dsts.Add(new NetPortRange(IpText.Format(a), p));
                    }
                }
            }

            var fr = new FilterRule(IpSet.OfAddresses(sources).ToStrings(), dsts, rule.Protocols);
            foreach (var n in group)
            {
                Append(filters, n, fr);
            }
        }
    }

    /// <summary>
    /// A grant with <c>via</c> reaches its destination subnets only through routers carrying one of the via tags;
    /// only such routers that have the subnet approved receive a rule.
    /// </summary>
    private void BuildVia(CompiledRule rule, List<FilterRule>?[] filters)
    {
        if (rule.Src.IsEmpty)
        {
            return;
        }

        var candidates = rule.Via!.SelectMany(_index.NodesWithTag).Distinct();
        foreach (var n in candidates)
        {
            var node = _index.Nodes[n];
            var dsts = new List<NetPortRange>();
            foreach (var d in rule.Rule.Destinations)
            {
                var prefixes = new List<string>();
                if (d.Alias.Kind is AliasKind.Prefix or AliasKind.Host && d.Alias.Set is { } set
                    && node.Node.ApprovedRoutes.Any(r => IpText.TryParsePrefix(r, out var rs, out _) && rs.IsSubsetOf(set) && set.IsSubsetOf(rs)))
                {
                    prefixes.AddRange(set.ToPrefixStrings());
                }
                else if (d.Alias.Kind == AliasKind.Internet && node.IsExit)
                {
                    prefixes.AddRange(node.Node.ApprovedRoutes.Where(static r => r is "0.0.0.0/0" or "::/0"));
                }

                foreach (var prefix in prefixes)
                {
                    foreach (var p in d.Ports)
                    {
                        dsts.Add(new NetPortRange(prefix, p));
                    }
                }
            }

            if (dsts.Count > 0)
            {
                Append(filters, n, new FilterRule(rule.SrcStrings, dsts, rule.Protocols));
            }
        }
    }
}
