namespace Mesh.Policy;

/// <summary>
/// How a node's <c>via</c> grants steer its routes (<see cref="ICompiledPolicy.ViaRoutesFor"/>): for each approved
/// subnet route they concern, the routers that may carry it for this node; for exit routes, the exit nodes it may use.
/// The coordinator elects one router per route among <see cref="ViaRoute.Routers"/> (online first, then in topology
/// order, as for the global primary) and gives the route, in this node's netmap, to that router instead of the
/// route's global primary.
/// </summary>
public sealed class ViaRoutes
{
    public static ViaRoutes None { get; } = new([], null);

    public ViaRoutes(IReadOnlyList<ViaRoute> subnets, IReadOnlyList<string>? exitNodes)
    {
        Subnets = subnets;
        ExitNodes = exitNodes;
    }

    /// <summary>The steered subnet routes, in the order their first router appears in the topology.</summary>
    public IReadOnlyList<ViaRoute> Subnets { get; }

    /// <summary>
    /// Null: every approved exit node is offered, as without via. Otherwise the only exit nodes whose exit routes
    /// this node receives (possibly none), in topology order.
    /// </summary>
    public IReadOnlyList<string>? ExitNodes { get; }

    public bool IsEmpty => Subnets.Count == 0 && ExitNodes is null;
}

/// <summary>
/// One approved subnet route as a node's via grants see it: the route as its routers approved it (the prefix
/// handed to the elected router, not the grant's destination), and the routers with one of the via tags that have
/// it approved, in topology order. No router means the route reaches this node through nobody.
/// </summary>
public sealed record ViaRoute(string Prefix, IReadOnlyList<string> Routers);

/// <summary>
/// Route steering by <c>via</c> grants, built on first use per compiled policy (never for a policy without via).
/// A viewer is steered for an approved subnet route when it is a source of a via grant whose destination overlaps
/// the route and no grant without via lets it reach the whole route (then any router will do, and the global
/// primary serves it, as Tailscale does); and for exit routes when a via grant of autogroup:internet (or of public
/// prefixes) applies and no grant without via lets it reach the whole internet.
/// </summary>
internal sealed class ViaRouting
{
    private readonly NodeIndex _index;
    private readonly IReadOnlyList<CompiledRule> _rules;
    private readonly Lazy<PeerGraph> _graph;
    private readonly int[] _viaRules;
    private readonly RouteEntry[] _routes;
    private readonly ViaRoutes?[] _byViewer;
    private readonly IReadOnlyList<string>?[] _served;

    /// <param name="graph">The policy's peer graph, whose per-rule source sets answer "is this node a source" in one bit test.</param>
    public ViaRouting(NodeIndex index, IReadOnlyList<CompiledRule> rules, Lazy<PeerGraph> graph)
    {
        _index = index;
        _rules = rules;
        _graph = graph;
        var via = new List<int>();
        for (var i = 0; i < rules.Count; i++)
        {
            if (rules[i].Via is not null && !rules[i].Src.IsEmpty)
            {
                via.Add(i);
            }
        }

        _viaRules = [.. via];
        _routes = RouteEntry.Collect(index);
        _byViewer = new ViaRoutes?[index.Nodes.Length];
        _served = new IReadOnlyList<string>?[index.Nodes.Length];
    }

    public bool HasVia => _viaRules.Length > 0;

    public ViaRoutes For(NodeEntry viewer)
    {
        if (_viaRules.Length == 0)
        {
            return ViaRoutes.None;
        }

        ref var slot = ref _byViewer[viewer.Index];
        var found = Volatile.Read(ref slot);
        if (found is null)
        {
            var built = Build(viewer);
            found = Interlocked.CompareExchange(ref slot, built, null) ?? built;
        }

        return found;
    }

    private ViaRoutes Build(NodeEntry viewer)
    {
        // Tags per steered route (index into _routes), and for exit routes.
        var graph = _graph.Value;
        SortedDictionary<int, HashSet<string>>? subnetTags = null;
        HashSet<string>? exitTags = null;
        foreach (var i in _viaRules)
        {
            var rule = _rules[i];
            if (!graph.IsSource(i, viewer.Index))
            {
                continue;
            }

            foreach (var target in rule.ViaTargets!)
            {
                if (target.Prefix is null || target.Prefix.IsSubsetOf(WellKnownRanges.Internet))
                {
                    (exitTags ??= new HashSet<string>(StringComparer.Ordinal)).UnionWith(rule.Via!);
                }

                if (target.Prefix is null)
                {
                    continue;
                }

                for (var k = 0; k < _routes.Length; k++)
                {
                    if (_routes[k].Set.Overlaps(target.Prefix))
                    {
                        subnetTags ??= [];
                        if (!subnetTags.TryGetValue(k, out var tags))
                        {
                            subnetTags[k] = tags = new HashSet<string>(StringComparer.Ordinal);
                        }

                        tags.UnionWith(rule.Via!);
                    }
                }
            }
        }

        if (subnetTags is null && exitTags is null)
        {
            return ViaRoutes.None;
        }

        // Grants without via the viewer is a source of: a route they cover whole is not steered.
        var plain = new List<CompiledRule>();
        for (var i = 0; i < _rules.Count; i++)
        {
            var rule = _rules[i];
            if (rule.Via is null && !rule.Src.IsEmpty && graph.IsSource(i, viewer.Index))
            {
                plain.Add(rule);
            }
        }

        var subnets = new List<ViaRoute>();
        foreach (var (k, tags) in subnetTags ?? [])
        {
            var route = _routes[k];
            if (plain.Exists(r => r.WildcardDst || route.Set.IsSubsetOf(r.DstAll)))
            {
                continue;
            }

            var routers = new List<string>();
            foreach (var n in route.Routers)
            {
                if (HasAnyTag(_index.Nodes[n], tags))
                {
                    routers.Add(_index.Nodes[n].Node.Name);
                }
            }

            subnets.Add(new ViaRoute(route.Text, routers));
        }

        List<string>? exits = null;
        if (exitTags is not null && !plain.Exists(r => r.InternetDst || r.WildcardDst || WellKnownRanges.Internet.IsSubsetOf(r.DstAll)))
        {
            exits = [];
            foreach (var n in _index.ExitNodes)
            {
                if (HasAnyTag(_index.Nodes[n], exitTags))
                {
                    exits.Add(_index.Nodes[n].Node.Name);
                }
            }
        }

        return subnets.Count == 0 && exits is null ? ViaRoutes.None : new ViaRoutes(subnets, exits);
    }

    /// <summary>
    /// The router's approved subnet routes that a via grant may send traffic to through it: it carries one of the
    /// grant's via tags and the route overlaps one of the grant's destinations.
    /// </summary>
    public IReadOnlyList<string> ServedBy(NodeEntry router)
    {
        if (_viaRules.Length == 0 || router.SubnetRoutes.IsEmpty || !router.Tagged)
        {
            return [];
        }

        ref var slot = ref _served[router.Index];
        var found = Volatile.Read(ref slot);
        if (found is null)
        {
            var built = BuildServed(router);
            found = Interlocked.CompareExchange(ref slot, built, null) ?? built;
        }

        return found;
    }

    private string[] BuildServed(NodeEntry router)
    {
        var served = new List<string>();
        foreach (var route in _routes)
        {
            if (Array.BinarySearch(route.Routers, router.Index) < 0)
            {
                continue;
            }

            foreach (var i in _viaRules)
            {
                var rule = _rules[i];
                if (HasAnyTag(router, rule.Via!) && Array.Exists(rule.ViaTargets!, t => t.Prefix is not null && route.Set.Overlaps(t.Prefix)))
                {
                    served.Add(route.Text);
                    break;
                }
            }
        }

        return [.. served];
    }

    private static bool HasAnyTag(NodeEntry node, IReadOnlyCollection<string> tags)
    {
        foreach (var t in node.Node.Tags)
        {
            if (tags.Contains(t))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One approved subnet route as written (exit routes excluded), and the routers that have it approved, ascending.</summary>
    private sealed record RouteEntry(string Text, IpSet Set, int[] Routers)
    {
        public static RouteEntry[] Collect(NodeIndex index)
        {
            var byText = new Dictionary<string, (IpSet Set, List<int> Routers)>(StringComparer.Ordinal);
            var order = new List<string>();
            foreach (var n in index.Routers)
            {
                foreach (var route in index.Nodes[n].Node.ApprovedRoutes)
                {
                    if (!IpText.TryParsePrefix(route, out var set, out var canonical) || canonical is "0.0.0.0/0" or "::/0")
                    {
                        continue;
                    }

                    if (!byText.TryGetValue(route, out var entry))
                    {
                        byText[route] = entry = (set, []);
                        order.Add(route);
                    }

                    if (entry.Routers.Count == 0 || entry.Routers[^1] != n)
                    {
                        entry.Routers.Add(n);
                    }
                }
            }

            return [.. order.Select(t => new RouteEntry(t, byText[t].Set, [.. byText[t].Routers]))];
        }
    }
}
