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
    private readonly NodeFilterBuilder _filterBuilder;
    private readonly Lazy<PeerGraph> _peerGraph;
    private readonly Lazy<ViaRouting> _viaRouting;

    // Per node, built on first request and then shared by every caller (see NodeFilterBuilder, PeerGraph).
    private readonly FilterRule[]?[] _filters;
    private readonly IReadOnlyList<string>?[] _peers;
    private string[]? _names;
    private readonly bool _hasVia;
    private readonly Lock _testLock = new();

    public CompiledPolicy(PolicyDocument doc, PolicyTopology topology, long version)
    {
        _doc = doc;
        Version = version;
        _index = new NodeIndex(topology);
        _compiler = new PolicyCompiler(doc, _index);
        _rules = _compiler.CompileRules();
        _peerGraph = new Lazy<PeerGraph>(() => new PeerGraph(_index, _rules), LazyThreadSafetyMode.ExecutionAndPublication);
        _filterBuilder = new NodeFilterBuilder(_index, _rules, _peerGraph);
        _viaRouting = new Lazy<ViaRouting>(() => new ViaRouting(_index, _rules, _peerGraph), LazyThreadSafetyMode.ExecutionAndPublication);
        _hasVia = _rules.Exists(static r => r.Via is not null);
        _filters = new FilterRule[_index.Nodes.Length][];
        _peers = new IReadOnlyList<string>?[_index.Nodes.Length];
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

        ref var slot = ref _filters[node.Index];
        var filter = Volatile.Read(ref slot);
        if (filter is null)
        {
            var built = _filterBuilder.Build(node);
            filter = Interlocked.CompareExchange(ref slot, built, null) ?? built;
        }

        return filter.Length > 0 ? filter : null;
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

    /// <summary>
    /// Whether the rule's (non-self) destinations include the node, its subnet routes, or (exit node) the internet;
    /// for a grant with <c>via</c>, whether the node is a via router carrying its destinations.
    /// </summary>
    private static bool Reaches(CompiledRule rule, NodeEntry to) =>
        rule.Via is not null
            ? rule.ViaServes(to)
            : to.HasAnyAddress(rule.DstAll)
              || (!to.SubnetRoutes.IsEmpty && rule.DstAll.Overlaps(to.SubnetRoutes))
              || (to.IsExit && (rule.InternetDst || rule.DstAll.Overlaps(WellKnownRanges.Internet)));

    public IReadOnlyList<string> PeersOf(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        if (!_index.TryGetNode(nodeName, out var node))
        {
            return [];
        }

        ref var slot = ref _peers[node.Index];
        var peers = Volatile.Read(ref slot);
        if (peers is null)
        {
            IReadOnlyList<string> built;
            if (!_doc.HasRules)
            {
                built = new AllButOne(Names(), node.Index);
            }
            else
            {
                var graph = _peerGraph.Value.Peers(node);
                // Peers come in topology order and never include the node itself, so as many as
                // there are other nodes means every one of them: the shared list does, without a copy.
                built = graph.Length == _index.Nodes.Length - 1 ? new AllButOne(Names(), node.Index) : graph;
            }

            peers = Interlocked.CompareExchange(ref slot, built, null) ?? built;
        }

        return peers;
    }

    /// <summary>Every node's name in topology order, made once and shared by the "everyone but me" peer lists.</summary>
    private string[] Names()
    {
        var names = Volatile.Read(ref _names);
        if (names is null)
        {
            var built = Array.ConvertAll(_index.Nodes, n => n.Node.Name);
            names = Interlocked.CompareExchange(ref _names, built, null) ?? built;
        }

        return names;
    }

    /// <summary>
    /// Every node but one, as a view of the shared name list: with everyone allowed to reach everyone,
    /// a copy per node cost 10,000 × 10,000 references per compiled policy (80 KB for each node asked
    /// about, 160 MB for 1,000 map streams and the previous policy, tests/bench/coordinator.sh).
    /// </summary>
    private sealed class AllButOne(string[] names, int skip) : IReadOnlyList<string>
    {
        public int Count => names.Length - 1;

        public string this[int index] => (uint)index < (uint)Count
            ? names[index < skip ? index : index + 1]
            : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<string> GetEnumerator()
        {
            for (var i = 0; i < names.Length; i++)
            {
                if (i != skip)
                {
                    yield return names[i];
                }
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public ViaRoutes ViaRoutesFor(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        return _hasVia && _doc.HasRules && _index.TryGetNode(nodeName, out var node) ? _viaRouting.Value.For(node) : ViaRoutes.None;
    }

    public IReadOnlyList<string> ViaServedRoutes(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        return _hasVia && _doc.HasRules && _index.TryGetNode(nodeName, out var node) ? _viaRouting.Value.ServedBy(node) : [];
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

    public bool DefinesTag(string tag) => _doc.TagOwners.ContainsKey(tag);

    public bool MayOwnTag(string tag, string? user, IReadOnlyList<string> tags)
    {
        ArgumentNullException.ThrowIfNull(tag);
        ArgumentNullException.ThrowIfNull(tags);
        return _doc.TagOwners.TryGetValue(tag, out var owners) && owners.Any(owner => owner.Kind switch
        {
            AliasKind.Tag => tags.Contains(owner.Name),
            AliasKind.User => user is not null && _index.UsersFor(owner.Name).Contains(user),
            AliasKind.Group => user is not null && _doc.Groups.TryGetValue(owner.Name, out var members)
                && members.Any(m => _index.UsersFor(m).Contains(user)),
            AliasKind.Member => user is not null,
            _ => false,
        });
    }

    public PolicyTestReport RunTests()
    {
        // The runner resolves test selectors through the compiler's caches (plain dictionaries); the compiled
        // policy is shared across threads, so runs take turns.
        lock (_testLock)
        {
            return PolicyTestRunner.Run(this);
        }
    }
}
