namespace Mesh.Policy;

/// <summary>One destination of a rule after resolution: the text clients see, the addresses, one port range.</summary>
internal sealed record DstEntry(NetPortRange Net, IpSet Set, bool Wildcard);

/// <summary>Destinations that name nodes (users, groups, tags, autogroup:member/tagged): the nodes, and the ports.</summary>
internal sealed record DstNodeGroup(int[] Nodes, PortRange[] Ports);

/// <summary>
/// A destination of a grant with <c>via</c>, as the routers that carry it see it: the prefix (null for
/// autogroup:internet, carried by exit nodes), its text in filters, and the ports.
/// </summary>
internal sealed record ViaTarget(IpSet? Prefix, string[] Texts, PortRange[] Ports);

/// <summary>A rule resolved against the topology: sets of addresses instead of names.</summary>
internal sealed class CompiledRule
{
    private static readonly IReadOnlyList<string> Star = ["*"];

    public required AclRule Rule { get; init; }

    /// <summary>Sources as the filter carries them (for "*": mesh ranges plus every approved subnet route).</summary>
    public required IpSet Src { get; init; }

    /// <summary>A source is autogroup:danger-all: <see cref="Src"/> is every address and the filter says "*".</summary>
    public bool AnySource { get; init; }

    /// <summary><see cref="Src"/> as filter text; formatted on first use and shared with every rule of the same source.</summary>
    public IReadOnlyList<string> SrcStrings => AnySource ? Star : Src.Texts;

    /// <summary>Sources as resolved from the selectors alone (what autogroup:self narrows).</summary>
    public required IpSet ResolvedSrc { get; init; }

    public required IReadOnlyList<int>? Protocols { get; init; }

    /// <summary>Destinations given as addresses: hosts, CIDRs, "*".</summary>
    public required DstEntry[] Entries { get; init; }

    /// <summary>Destinations given as nodes; each node's own addresses are the destination.</summary>
    public required DstNodeGroup[] NodeGroups { get; init; }

    /// <summary>Ports of the rule's autogroup:self destinations; null when it has none.</summary>
    public required PortRange[]? SelfPorts { get; init; }

    public required bool InternetDst { get; init; }

    /// <summary>A "*" destination: every node receives the rule, even one without addresses.</summary>
    public required bool WildcardDst { get; init; }

    /// <summary>Union of all non-self destinations (every address for "*").</summary>
    public required IpSet DstAll { get; init; }

    /// <summary>The rule is limited to routers with these tags (a grant's <c>via</c>).</summary>
    public string[]? Via => Rule.Via;

    /// <summary>For a <c>via</c> rule: its address and autogroup:internet destinations, in policy order.</summary>
    public ViaTarget[]? ViaTargets { get; init; }

    /// <summary>
    /// Whether a <c>via</c> rule reaches its destinations through this node: the node carries one of the via tags,
    /// and one of its approved routes serves a destination (see <see cref="Carries"/>).
    /// </summary>
    public bool ViaServes(NodeEntry node)
    {
        if (Via is null || ViaTargets is null || !HasAnyTag(node, Via))
        {
            return false;
        }

        foreach (var t in ViaTargets)
        {
            if (Carries(node, t))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether the node's approved routes serve a via destination: a subnet route overlapping the prefix (the
    /// router then accepts the whole prefix as written, as Tailscale's filters do), an exit route for
    /// autogroup:internet, or an exit route for a prefix wholly in the public internet.
    /// </summary>
    public static bool Carries(NodeEntry node, ViaTarget target) =>
        target.Prefix is null
            ? node.IsExit
            : (!node.SubnetRoutes.IsEmpty && node.SubnetRoutes.Overlaps(target.Prefix))
              || (node.IsExit && target.Prefix.IsSubsetOf(WellKnownRanges.Internet));

    private static bool HasAnyTag(NodeEntry node, string[] tags)
    {
        foreach (var t in node.Node.Tags)
        {
            if (Array.IndexOf(tags, t) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    public bool MatchesProtocol(IReadOnlyList<int> wanted)
    {
        if (Protocols is null)
        {
            return true;
        }

        foreach (var p in Protocols)
        {
            if (wanted.Contains(p))
            {
                return true;
            }
        }

        return false;
    }
}
