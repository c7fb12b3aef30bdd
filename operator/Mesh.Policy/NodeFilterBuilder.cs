namespace Mesh.Policy;

/// <summary>
/// Builds one node's packet filter from the compiled rules, on demand. The coordinator asks for the filters of the
/// connected nodes only (hundreds of a topology's thousands), so building every node's filter at compile time
/// spent most of the compile on filters nobody read: 1.57 million filter rules for the 10,000-node case in
/// PolicyPerformanceTests, about two thirds of a 2 s compile. Per node, the rules are scanned in policy order; a
/// rule whose destinations cannot concern the node is skipped with one bit test (<see cref="PeerGraph.Reaches"/>),
/// the others are tested against the node with lookups (binary searches in the rule's node lists and address
/// sets). Nothing is stored for nodes that are never asked.
/// The output is exactly what the former eager pass produced (EagerPolicyModel in the tests keeps that pass as the
/// reference): same rules, same order, same destinations in the same order.
/// </summary>
internal sealed class NodeFilterBuilder
{
    private readonly NodeIndex _index;
    private readonly IReadOnlyList<CompiledRule> _rules;
    private readonly Lazy<PeerGraph> _graph;

    public NodeFilterBuilder(NodeIndex index, IReadOnlyList<CompiledRule> rules, Lazy<PeerGraph> graph)
    {
        _index = index;
        _rules = rules;
        _graph = graph;
    }

    /// <summary>The node's filter rules in policy order; empty when the node accepts nothing.</summary>
    public FilterRule[] Build(NodeEntry node)
    {
        var result = new List<FilterRule>();
        var owners = NodesServedBy(node);
        var nets = new List<NetPortRange>();
        var graph = _graph.Value;
        for (var i = 0; i < _rules.Count; i++)
        {
            var rule = _rules[i];
            if (rule.Via is not null)
            {
                if (Via(rule, node) is { } via)
                {
                    result.Add(via);
                }

                continue;
            }

            if ((rule.WildcardDst || graph.Reaches(i, node.Index)) && !rule.Src.IsEmpty && (rule.Entries.Length > 0 || rule.NodeGroups.Length > 0))
            {
                nets.Clear();
                // "*" destinations first, then node destinations, then address destinations (the eager order).
                foreach (var entry in rule.Entries)
                {
                    if (entry.Wildcard)
                    {
                        nets.Add(entry.Net);
                    }
                }

                AddNodeDestinations(rule, owners, nets);
                foreach (var entry in rule.Entries)
                {
                    if (!entry.Wildcard && Touches(node, entry.Set))
                    {
                        nets.Add(entry.Net);
                    }
                }

                if (nets.Count > 0)
                {
                    result.Add(new FilterRule(rule.SrcStrings, nets.ToArray(), rule.Protocols));
                }
            }

            if (rule.SelfPorts is not null && Self(rule, node) is { } self)
            {
                result.Add(self);
            }
        }

        return [.. result];
    }

    /// <summary>
    /// The nodes whose own addresses this node accepts traffic for, sorted: the node itself and, for a subnet
    /// router, the other nodes whose mesh addresses lie inside its approved routes (almost always none).
    /// </summary>
    private int[] NodesServedBy(NodeEntry node)
    {
        if (node.SubnetRoutes.IsEmpty)
        {
            return [node.Index];
        }

        var covered = new List<int> { node.Index };
        foreach (var r in node.SubnetRoutes.Ranges)
        {
            _index.NodesWithAddressIn(r, covered);
        }

        covered.Sort();
        var distinct = new List<int>(covered.Count);
        foreach (var n in covered)
        {
            if (distinct.Count == 0 || distinct[^1] != n)
            {
                distinct.Add(n);
            }
        }

        return [.. distinct];
    }

    /// <summary>Destinations given as nodes (users, groups, tags): each served node's addresses, per port, in rule order.</summary>
    private void AddNodeDestinations(CompiledRule rule, int[] owners, List<NetPortRange> nets)
    {
        foreach (var group in rule.NodeGroups)
        {
            foreach (var n in owners)
            {
                if (Array.BinarySearch(group.Nodes, n) < 0)
                {
                    continue;
                }

                var texts = _index.Nodes[n].AddressTexts;
                foreach (var p in group.Ports)
                {
                    foreach (var text in texts)
                    {
                        nets.Add(new NetPortRange(text, p));
                    }
                }
            }
        }
    }

    /// <summary>
    /// Whether an address destination concerns the node: it holds an address in it, its approved subnet routes
    /// overlap it, or it is an exit node and the destination lies wholly in the public internet.
    /// </summary>
    private static bool Touches(NodeEntry node, IpSet set) =>
        node.HasAnyAddress(set)
        || (!node.SubnetRoutes.IsEmpty && node.SubnetRoutes.Overlaps(set))
        || (node.IsExit && set.IsSubsetOf(WellKnownRanges.Internet));

    /// <summary>
    /// autogroup:self: a user's untagged node accepts the rule's sources that are that same user's untagged nodes,
    /// on every one of the user's nodes. Tagged nodes never take part.
    /// </summary>
    private FilterRule? Self(CompiledRule rule, NodeEntry node)
    {
        if (node.Tagged || node.Node.User is null)
        {
            return null;
        }

        var group = _index.UntaggedNodesOf(node.Node.User);
        var sources = new List<UInt128>();
        foreach (var n in group)
        {
            var member = _index.Nodes[n];
            if (member.HasAnyAddress(rule.ResolvedSrc))
            {
                sources.AddRange(member.Addresses);
            }
        }

        if (sources.Count == 0)
        {
            return null;
        }

        var dsts = new List<NetPortRange>();
        foreach (var n in group)
        {
            var texts = _index.Nodes[n].AddressTexts;
            foreach (var p in rule.SelfPorts!)
            {
                foreach (var text in texts)
                {
                    dsts.Add(new NetPortRange(text, p));
                }
            }
        }

        return new FilterRule(IpSet.OfAddresses(sources).ToStrings(), [.. dsts], rule.Protocols);
    }

    /// <summary>
    /// A grant with <c>via</c> reaches its destinations only through routers carrying one of the via tags: such a
    /// router receives the rule for each destination one of its approved routes serves (a subnet route overlapping
    /// the destination prefix, which then appears whole, as written; its exit routes for autogroup:internet).
    /// Other nodes, the destinations' own included, receive nothing from it.
    /// </summary>
    private static FilterRule? Via(CompiledRule rule, NodeEntry node)
    {
        if (rule.Src.IsEmpty || !rule.ViaServes(node))
        {
            return null;
        }

        var dsts = new List<NetPortRange>();
        foreach (var target in rule.ViaTargets!)
        {
            if (!CompiledRule.Carries(node, target))
            {
                continue;
            }

            IEnumerable<string> texts = target.Prefix is null
                ? node.Node.ApprovedRoutes.Where(static r => r is "0.0.0.0/0" or "::/0")
                : target.Texts;
            foreach (var text in texts)
            {
                foreach (var p in target.Ports)
                {
                    dsts.Add(new NetPortRange(text, p));
                }
            }
        }

        return dsts.Count > 0 ? new FilterRule(rule.SrcStrings, [.. dsts], rule.Protocols) : null;
    }
}
