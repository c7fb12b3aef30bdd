namespace Mesh.Policy;

/// <summary>One destination of a rule after resolution: the text clients see, the addresses, one port range.</summary>
internal sealed record DstEntry(NetPortRange Net, IpSet Set, bool Wildcard);

/// <summary>Destinations that name nodes (users, groups, tags, autogroup:member/tagged): the nodes, and the ports.</summary>
internal sealed record DstNodeGroup(int[] Nodes, PortRange[] Ports);

/// <summary>A rule resolved against the topology: sets of addresses instead of names.</summary>
internal sealed class CompiledRule
{
    public required AclRule Rule { get; init; }

    /// <summary>Sources as the filter carries them (for "*": mesh ranges plus every approved subnet route).</summary>
    public required IpSet Src { get; init; }

    /// <summary><see cref="Src"/> as filter text; formatted on first use and shared with every rule of the same source.</summary>
    public IReadOnlyList<string> SrcStrings => Src.Texts;

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
