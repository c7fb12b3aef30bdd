namespace Mesh.Policy.Tests;

/// <summary>
/// The engine's original eager evaluation, kept as the reference the lazy per-node paths are compared with: every
/// node's filter built in one pass over the rules (walking each destination to the nodes it touches), and each
/// node's peers from two address-set unions. Slow on large topologies; exact by construction.
/// </summary>
internal static class EagerPolicyModel
{
    /// <summary>Every node's filter, indexed like the topology; null where the node accepts nothing.</summary>
    public static List<FilterRule>?[] Filters(CompiledPolicy policy)
    {
        var index = policy.Index;
        var nodes = index.Nodes;
        var filters = new List<FilterRule>?[nodes.Length];
        if (!policy.Document.HasRules)
        {
            for (var n = 0; n < nodes.Length; n++)
            {
                filters[n] = [new FilterRule(["*"], [new NetPortRange("*", PortRange.Any)], null)];
            }

            return filters;
        }

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

        foreach (var rule in policy.Rules)
        {
            if (rule.Via is not null)
            {
                Via(index, rule, filters);
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
                        var routers = RoutersCovering(index, node);
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
                    NodesTouchedBy(index, entry.Set, hits);
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
                    for (var n = 0; n < nodes.Length; n++)
                    {
                        Append(filters, n, new FilterRule(rule.SrcStrings, [.. wild, .. perNode[n] ?? []], rule.Protocols));
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
                Self(index, rule, filters);
            }
        }

        return filters;
    }

    private static List<int> RoutersCovering(NodeIndex index, NodeEntry node)
    {
        if (index.Routers.Length == 0 || !node.HasAnyAddress(index.ApprovedSubnetRoutes))
        {
            return [];
        }

        return [.. index.Routers.Where(r => r != node.Index && node.HasAnyAddress(index.Nodes[r].SubnetRoutes))];
    }

    private static void Append(List<FilterRule>?[] filters, int node, FilterRule rule) =>
        (filters[node] ??= []).Add(rule);

    private static void NodesTouchedBy(NodeIndex index, IpSet set, List<int> into)
    {
        foreach (var r in set.Ranges)
        {
            index.NodesWithAddressIn(r, into);
        }

        foreach (var n in index.Routers)
        {
            if (index.Nodes[n].SubnetRoutes.Overlaps(set))
            {
                into.Add(n);
            }
        }

        if (index.ExitNodes.Length > 0 && set.IsSubsetOf(WellKnownRanges.Internet))
        {
            into.AddRange(index.ExitNodes);
        }
    }

    private static void Self(NodeIndex index, CompiledRule rule, List<FilterRule>?[] filters)
    {
        foreach (var (_, group) in index.UntaggedByUser)
        {
            var sources = new List<UInt128>();
            foreach (var n in group)
            {
                var node = index.Nodes[n];
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
                    foreach (var a in index.Nodes[n].Addresses)
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
    /// A grant with via: each node carrying a via tag receives, per destination, the destination whole when one of
    /// its approved subnet routes overlaps it (or, for autogroup:internet or a prefix wholly in the internet, when it
    /// is an exit node: its exit routes for autogroup:internet).
    /// </summary>
    private static void Via(NodeIndex index, CompiledRule rule, List<FilterRule>?[] filters)
    {
        if (rule.Src.IsEmpty)
        {
            return;
        }

        foreach (var node in index.Nodes)
        {
            var dsts = ViaDestinations(rule, node);
            if (dsts.Count > 0)
            {
                Append(filters, node.Index, new FilterRule(rule.SrcStrings, dsts, rule.Protocols));
            }
        }
    }

    private static List<NetPortRange> ViaDestinations(CompiledRule rule, NodeEntry node)
    {
        var dsts = new List<NetPortRange>();
        if (!node.Node.Tags.Any(t => rule.Via!.Contains(t)))
        {
            return dsts;
        }

        var subnets = new List<IpSet>();
        foreach (var r in node.Node.ApprovedRoutes)
        {
            if (IpText.TryParsePrefix(r, out var set, out var canonical) && canonical is not ("0.0.0.0/0" or "::/0"))
            {
                subnets.Add(set);
            }
        }

        var exits = node.Node.ApprovedRoutes.Where(static r => r is "0.0.0.0/0" or "::/0").ToList();
        foreach (var d in rule.Rule.Destinations)
        {
            var prefixes = new List<string>();
            if (d.Alias.Kind is AliasKind.Prefix or AliasKind.Host && d.Alias.Set is { } set
                && (subnets.Any(r => r.Overlaps(set)) || (exits.Count > 0 && set.IsSubsetOf(WellKnownRanges.Internet))))
            {
                prefixes.AddRange(set.ToPrefixStrings());
            }
            else if (d.Alias.Kind == AliasKind.Internet)
            {
                prefixes.AddRange(exits);
            }

            foreach (var prefix in prefixes)
            {
                foreach (var p in d.Ports)
                {
                    dsts.Add(new NetPortRange(prefix, p));
                }
            }
        }

        return dsts;
    }

    /// <summary>The node's peers: what it may reach and who may reach it, as two address sets, then one pass over the nodes.</summary>
    public static List<string> Peers(CompiledPolicy policy, NodeEntry node)
    {
        var nodes = policy.Index.Nodes;
        if (!policy.Document.HasRules)
        {
            return [.. nodes.Where(n => n != node).Select(static n => n.Node.Name)];
        }

        var outSets = new List<IpSet>();
        var inSets = new List<IpSet>();
        var reachesInternet = false;
        var selfOut = false;
        var selfIn = new List<IpSet>();
        var viaOut = new HashSet<NodeEntry>();
        foreach (var rule in policy.Rules)
        {
            if (rule.Via is not null)
            {
                // A via rule connects its sources with the routers that carry its destinations, and nothing else.
                var routers = nodes.Where(n => ViaDestinations(rule, n).Count > 0).ToList();
                if (node.HasAnyAddress(rule.Src))
                {
                    viaOut.UnionWith(routers);
                }

                if (routers.Contains(node))
                {
                    inSets.Add(rule.Src);
                }

                continue;
            }

            if (node.HasAnyAddress(rule.Src))
            {
                outSets.Add(rule.DstAll);
                reachesInternet |= rule.InternetDst || rule.DstAll.Overlaps(WellKnownRanges.Internet);
                selfOut |= rule.SelfPorts is not null && node.HasAnyAddress(rule.ResolvedSrc);
            }

            if (Reaches(rule, node))
            {
                inSets.Add(rule.Src);
            }

            if (rule.SelfPorts is not null)
            {
                selfIn.Add(rule.ResolvedSrc);
            }
        }

        var outSet = IpSet.Union(outSets);
        var inSet = IpSet.Union(inSets);
        var peers = new List<string>();
        foreach (var other in nodes)
        {
            if (other == node)
            {
                continue;
            }

            var sameUser = !node.Tagged && !other.Tagged && node.Node.User is not null && node.Node.User == other.Node.User;
            var visible = viaOut.Contains(other)
                || other.HasAnyAddress(outSet)
                || (!other.SubnetRoutes.IsEmpty && outSet.Overlaps(other.SubnetRoutes))
                || (other.IsExit && reachesInternet)
                || other.HasAnyAddress(inSet)
                || (sameUser && (selfOut || selfIn.Any(other.HasAnyAddress)));
            if (visible)
            {
                peers.Add(other.Node.Name);
            }
        }

        return peers;
    }

    private static bool Reaches(CompiledRule rule, NodeEntry to) =>
        to.HasAnyAddress(rule.DstAll)
        || (!to.SubnetRoutes.IsEmpty && rule.DstAll.Overlaps(to.SubnetRoutes))
        || (to.IsExit && (rule.InternetDst || rule.DstAll.Overlaps(WellKnownRanges.Internet)));
}
