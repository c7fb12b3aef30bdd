namespace Mesh.Policy;

/// <summary>The immutable result of <see cref="PolicyEngine.Compile"/>.</summary>
internal sealed class CompiledPolicy : ICompiledPolicy
{
    private static readonly IReadOnlyList<FilterRule> AllowAll =
        [new FilterRule(["*"], [new NetPortRange("*", PortRange.Any)], null)];

    private readonly PolicyDocument _doc;
    private readonly NodeIndex _index;
    private readonly PolicyCompiler _compiler;
    private readonly List<CompiledRule> _rules;
    private readonly List<FilterRule>?[] _filters;
    private readonly string[]?[] _peers;

    public CompiledPolicy(PolicyDocument doc, PolicyTopology topology, long version)
    {
        _doc = doc;
        Version = version;
        _index = new NodeIndex(topology);
        _compiler = new PolicyCompiler(doc, _index);
        _rules = _compiler.CompileRules();
        _filters = doc.HasRules ? _compiler.BuildFilters(_rules) : [];
        _peers = new string[_index.Nodes.Length][];
    }

    public long Version { get; }

    internal NodeIndex Index => _index;

    internal PolicyDocument Document => _doc;

    internal PolicyCompiler Compiler => _compiler;

    internal IReadOnlyList<CompiledRule> Rules => _rules;

    public IReadOnlyList<FilterRule>? FilterFor(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        if (!_index.TryGetNode(nodeName, out var node))
        {
            return null;
        }

        if (!_doc.HasRules)
        {
            return AllowAll;
        }

        return _filters[node.Index] is { Count: > 0 } f ? f : null;
    }

    public bool CanSee(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a != b && _index.TryGetNode(a, out var na) && _index.TryGetNode(b, out var nb)
            && (CanAccess(na, nb) || CanAccess(nb, na));
    }

    private bool CanAccess(NodeEntry from, NodeEntry to)
    {
        if (!_doc.HasRules)
        {
            return true;
        }

        foreach (var rule in _rules)
        {
            if (!from.HasAnyAddress(rule.Src))
            {
                continue;
            }

            if (Reaches(rule, to))
            {
                return true;
            }

            if (rule.SelfPorts is not null && !from.Tagged && !to.Tagged && from.Node.User is not null
                && from.Node.User == to.Node.User && from.HasAnyAddress(rule.ResolvedSrc))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether the rule's (non-self) destinations include the node, its subnet routes, or (exit node) the internet.</summary>
    private static bool Reaches(CompiledRule rule, NodeEntry to) =>
        to.HasAnyAddress(rule.DstAll)
        || (!to.SubnetRoutes.IsEmpty && rule.DstAll.Overlaps(to.SubnetRoutes))
        || (to.IsExit && (rule.InternetDst || rule.DstAll.Overlaps(WellKnownRanges.Internet)));

    public IReadOnlyList<string> PeersOf(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        if (!_index.TryGetNode(nodeName, out var node))
        {
            return [];
        }

        return _peers[node.Index] ??= ComputePeers(node);
    }

    private string[] ComputePeers(NodeEntry node)
    {
        var nodes = _index.Nodes;
        if (!_doc.HasRules)
        {
            return [.. nodes.Where(n => n != node).Select(static n => n.Node.Name)];
        }

        // What the node may reach, and who may reach it, as two address sets; then one pass over the nodes.
        var outSets = new List<IpSet>();
        var inSets = new List<IpSet>();
        var reachesInternet = false;
        var selfOut = false;
        var selfIn = new List<IpSet>();
        foreach (var rule in _rules)
        {
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
            var visible = other.HasAnyAddress(outSet)
                || (!other.SubnetRoutes.IsEmpty && outSet.Overlaps(other.SubnetRoutes))
                || (other.IsExit && reachesInternet)
                || other.HasAnyAddress(inSet)
                || (sameUser && (selfOut || selfIn.Any(other.HasAnyAddress)));
            if (visible)
            {
                peers.Add(other.Node.Name);
            }
        }

        return [.. peers];
    }

    public IReadOnlyList<string> AutoApprovedRoutes(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        if (!_index.TryGetNode(nodeName, out var node))
        {
            return [];
        }

        var approved = new List<string>();
        foreach (var route in node.Node.AdvertisedRoutes)
        {
            if (!IpText.TryParsePrefix(route, out var set, out var canonical))
            {
                continue;
            }

            var ok = canonical is "0.0.0.0/0" or "::/0"
                ? _doc.ExitNodeApprovers.Any(a => Approves(a, node))
                : _doc.RouteApprovers.Any(ra => set.IsSubsetOf(ra.Prefix) && ra.Approvers.Any(a => Approves(a, node)));
            if (ok)
            {
                approved.Add(route);
            }
        }

        return approved;
    }

    private bool Approves(Alias approver, NodeEntry node) => approver.Kind switch
    {
        AliasKind.Tag => node.Node.Tags.Contains(approver.Name),
        AliasKind.User => !node.Tagged && node.Node.User is not null && _index.UsersFor(approver.Name).Contains(node.Node.User),
        AliasKind.Group => !node.Tagged && node.Node.User is not null && _doc.Groups.TryGetValue(approver.Name, out var members)
            && members.Any(m => _index.UsersFor(m).Contains(node.Node.User)),
        AliasKind.Member => !node.Tagged,
        _ => false,
    };

    public PolicyTestReport RunTests() => PolicyTestRunner.Run(this);
}
