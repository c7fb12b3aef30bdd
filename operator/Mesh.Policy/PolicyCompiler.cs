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
    private readonly Dictionary<string, int[]> _nodeCache = new(StringComparer.Ordinal);

    public PolicyCompiler(PolicyDocument doc, NodeIndex index)
    {
        _doc = doc;
        _index = index;
    }

    /// <summary>Whether the selector names nodes (rather than addresses).</summary>
    public static bool NamesNodes(Alias alias) =>
        alias.Kind is AliasKind.User or AliasKind.Group or AliasKind.Tag or AliasKind.Member or AliasKind.Tagged;

    /// <summary>The nodes a user, group, tag or autogroup:member/tagged selector names, sorted, each once.</summary>
    public int[] ResolveNodes(Alias alias)
    {
        if (_nodeCache.TryGetValue(alias.Name, out var cached))
        {
            return cached;
        }

        IEnumerable<int> nodes = alias.Kind switch
        {
            AliasKind.User => UserNodes(alias.Name),
            AliasKind.Group => _doc.Groups[alias.Name].SelectMany(UserNodes),
            AliasKind.Tag => _index.NodesWithTag(alias.Name),
            AliasKind.Member => _index.Untagged,
            AliasKind.Tagged => _index.Tagged,
            _ => [],
        };
        var result = nodes.Distinct().Order().ToArray();
        _nodeCache[alias.Name] = result;
        return result;
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
            _ when NamesNodes(alias) => IpSet.OfAddresses(ResolveNodes(alias).SelectMany(n => _index.Nodes[n].Addresses)),
            _ => IpSet.Empty,
        };
        _cache[alias.Name] = set;
        return set;
    }

    private IEnumerable<int> UserNodes(string token) => _index.UsersFor(token).SelectMany(_index.UntaggedNodesOf);

    public List<CompiledRule> CompileRules()
    {
        var rules = new List<CompiledRule>(_doc.Rules.Count);
        foreach (var rule in _doc.Rules)
        {
            var resolved = IpSet.Union(rule.Sources.Select(Resolve));
            var hasWildcard = rule.Sources.Any(static s => s.Kind == AliasKind.Wildcard);
            var src = hasWildcard ? resolved.Union(_index.ApprovedSubnetRoutes) : resolved;
            var entries = new List<DstEntry>();
            var nodeGroups = new List<DstNodeGroup>();
            var dstSets = new List<IpSet>();
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
                dstSets.Add(set);
                if (NamesNodes(d.Alias))
                {
                    nodeGroups.Add(new DstNodeGroup(ResolveNodes(d.Alias), d.Ports));
                    continue;
                }

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
                NodeGroups = [.. nodeGroups],
                SelfPorts = selfPorts?.ToArray(),
                InternetDst = internet,
                DstAll = entries.Any(static e => e.Wildcard) ? IpSet.All : IpSet.Union(dstSets),
            });
        }

        return rules;
    }

    /// <summary>Builds every node's filter: the rules (and the destinations within them) that concern the node.</summary>
    public List<FilterRule>?[] BuildFilters(List<CompiledRule> rules)
    {
        var nodes = _index.Nodes;
        var filters = new List<FilterRule>?[nodes.Length];
        var perNode = new List<NetPortRange>?[nodes.Length];
        var touched = new List<int>();
        var stamp = new int[nodes.Length];
        var stampValue = 0;
        var hits = new List<int>();

        void Add(int n, NetPortRange net)
        {
            var list = perNode[n];
            if (list is null)
            {
                perNode[n] = list = [];
                touched.Add(n);
            }

            list.Add(net);
        }

        foreach (var rule in rules)
        {
            if (rule.Via is not null)
            {
                BuildVia(rule, filters);
                continue;
            }

            if (!rule.Src.IsEmpty && (rule.Entries.Length > 0 || rule.NodeGroups.Length > 0))
            {
                touched.Clear();
                var wild = new List<NetPortRange>();
                foreach (var group in rule.NodeGroups)
                {
                    foreach (var n in group.Nodes)
                    {
                        var node = nodes[n];
                        var routers = RoutersCovering(node);
                        foreach (var p in group.Ports)
                        {
                            foreach (var text in node.AddressTexts)
                            {
                                var net = new NetPortRange(text, p);
                                Add(n, net);
                                foreach (var r in routers)
                                {
                                    Add(r, net);
                                }
                            }
                        }
                    }
                }

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
                        if (stamp[n] != stampValue)
                        {
                            stamp[n] = stampValue;
                            Add(n, entry.Net);
                        }
                    }
                }

                if (wild.Count > 0)
                {
                    var shared = new FilterRule(rule.SrcStrings, wild, rule.Protocols);
                    for (var n = 0; n < nodes.Length; n++)
                    {
                        Append(filters, n, perNode[n] is { } list
                            ? new FilterRule(rule.SrcStrings, [.. wild, .. list], rule.Protocols)
                            : shared);
                    }
                }
                else
                {
                    foreach (var n in touched)
                    {
                        Append(filters, n, new FilterRule(rule.SrcStrings, perNode[n]!, rule.Protocols));
                    }
                }

                foreach (var n in touched)
                {
                    perNode[n] = null;
                }
            }

            if (rule.SelfPorts is not null)
            {
                BuildSelf(rule, filters);
            }
        }

        return filters;
    }

    /// <summary>Routers (other than the node) whose approved routes hold one of the node's own addresses; almost always none.</summary>
    private List<int> RoutersCovering(NodeEntry node)
    {
        if (_index.Routers.Length == 0 || !node.HasAnyAddress(_index.ApprovedSubnetRoutes))
        {
            return [];
        }

        return [.. _index.Routers.Where(r => r != node.Index && node.HasAnyAddress(_index.Nodes[r].SubnetRoutes))];
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

        // One lookup in the union of all routes before scanning the routers.
        if (_index.ApprovedSubnetRoutes.Overlaps(set))
        {
            foreach (var n in _index.Routers)
            {
                if (_index.Nodes[n].SubnetRoutes.Overlaps(set))
                {
                    into.Add(n);
                }
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
