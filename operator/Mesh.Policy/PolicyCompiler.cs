namespace Mesh.Policy;

/// <summary>
/// Resolves a parsed policy against a topology: every selector becomes a set of addresses once, every rule becomes
/// a <see cref="CompiledRule"/>. Per-node filters and peers are derived from the compiled rules on demand
/// (<see cref="NodeFilterBuilder"/>, <see cref="PeerGraph"/>).
/// </summary>
internal sealed class PolicyCompiler
{
    private readonly PolicyDocument _doc;
    private readonly NodeIndex _index;
    private readonly Dictionary<string, IpSet> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]> _nodeCache = new(StringComparer.Ordinal);

    // "*" sources plus the approved subnet routes, by the resolved set: one set (and one text form) for all such rules.
    private readonly Dictionary<IpSet, IpSet> _withRoutes = new(ReferenceEqualityComparer.Instance);

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
            AliasKind.DangerAll => IpSet.All,
            _ when NamesNodes(alias) => IpSet.OfAddresses(ResolveNodes(alias).SelectMany(n => _index.Nodes[n].Addresses)),
            _ => IpSet.Empty,
        };
        _cache[alias.Name] = set;
        return set;
    }

    private IEnumerable<int> UserNodes(string token) => _index.UsersFor(token).SelectMany(_index.UntaggedNodesOf);

    private IpSet WithRoutes(IpSet resolved)
    {
        if (!_withRoutes.TryGetValue(resolved, out var set))
        {
            _withRoutes[resolved] = set = resolved.Union(_index.ApprovedSubnetRoutes);
        }

        return set;
    }

    public List<CompiledRule> CompileRules()
    {
        var rules = new List<CompiledRule>(_doc.Rules.Count);
        foreach (var rule in _doc.Rules)
        {
            var resolved = IpSet.Union(rule.Sources.Select(Resolve));
            var dangerAll = rule.Sources.Any(static s => s.Kind == AliasKind.DangerAll);
            var hasWildcard = rule.Sources.Any(static s => s.Kind == AliasKind.Wildcard);
            var src = hasWildcard && !dangerAll ? WithRoutes(resolved) : resolved;
            var entries = new List<DstEntry>();
            var nodeGroups = new List<DstNodeGroup>();
            var dstSets = new List<IpSet>();
            List<PortRange>? selfPorts = null;
            var internet = false;
            List<ViaTarget>? viaTargets = rule.Via is null ? null : [];
            foreach (var d in rule.Destinations)
            {
                if (viaTargets is not null && d.Alias.Kind is AliasKind.Internet or AliasKind.Prefix or AliasKind.Host)
                {
                    var target = d.Alias.Kind == AliasKind.Internet ? null : d.Alias.Set!;
                    viaTargets.Add(new ViaTarget(target, target?.ToPrefixStrings().ToArray() ?? [], d.Ports));
                }

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
                AnySource = dangerAll,
                ResolvedSrc = resolved,
                Protocols = rule.Protocols,
                Entries = [.. entries],
                NodeGroups = [.. nodeGroups],
                // A grant with via reaches only what its routers carry: subnets and the internet, never autogroup:self.
                SelfPorts = rule.Via is null ? selfPorts?.ToArray() : null,
                InternetDst = internet,
                WildcardDst = entries.Any(static e => e.Wildcard),
                DstAll = entries.Any(static e => e.Wildcard) ? IpSet.All : IpSet.Union(dstSets),
                ViaTargets = viaTargets?.ToArray(),
            });
        }

        return rules;
    }
}
