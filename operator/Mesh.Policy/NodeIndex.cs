namespace Mesh.Policy;

/// <summary>One node with its addresses and routes parsed once.</summary>
internal sealed class NodeEntry
{
    public required int Index { get; init; }

    public required PolicyNode Node { get; init; }

    public required UInt128[] Addresses { get; init; }

    /// <summary><see cref="Addresses"/> as text, formatted once.</summary>
    public required string[] AddressTexts { get; init; }

    public required IpSet Ips { get; init; }

    /// <summary>Approved routes other than the exit routes 0.0.0.0/0 and ::/0.</summary>
    public required IpSet SubnetRoutes { get; init; }

    /// <summary>An approved exit route (0.0.0.0/0 or ::/0) makes the node an exit node.</summary>
    public required bool IsExit { get; init; }

    public bool Tagged => Node.IsTagged;

    public bool HasAnyAddress(IpSet set)
    {
        foreach (var a in Addresses)
        {
            if (set.Contains(a))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// The topology indexed once per compile: nodes by name, user, tag and address, so resolving a selector or
/// finding the nodes a destination touches costs what the answer costs, not a scan of every node.
/// </summary>
internal sealed class NodeIndex
{
    private readonly Dictionary<string, int> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<int>> _untaggedByUser = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<int>> _byTag = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _usersByToken = new(StringComparer.Ordinal);
    private readonly (UInt128 Address, int Node)[] _sortedAddresses;

    private readonly IReadOnlyList<PolicyUser> _users;

    public NodeIndex(PolicyTopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        _users = topology.Users;
        foreach (var u in topology.Users)
        {
            AddToken(u.Name, u.Name);
            if (!string.IsNullOrEmpty(u.Email))
            {
                AddToken(u.Email, u.Name);
            }
        }

        var nodes = new NodeEntry[topology.Nodes.Count];
        var addresses = new List<(UInt128, int)>(nodes.Length * 2);
        var routers = new List<int>();
        var exits = new List<int>();
        var untagged = new List<int>();
        var tagged = new List<int>();
        var allRoutes = new List<IpRange>();
        for (var i = 0; i < nodes.Length; i++)
        {
            var n = topology.Nodes[i];
            if (!_byName.TryAdd(n.Name, i))
            {
                throw new PolicyException($"topology: node name \"{n.Name}\" is used twice");
            }

            var addrs = new List<UInt128>(2);
            foreach (var text in new[] { n.IPv4, n.IPv6 })
            {
                if (string.IsNullOrEmpty(text))
                {
                    continue;
                }

                if (!IpText.TryParseAddress(text, out var a))
                {
                    throw new PolicyException($"topology: node \"{n.Name}\": \"{text}\" is not an IP address");
                }

                addrs.Add(a);
                addresses.Add((a, i));
            }

            var subnet = new List<IpRange>();
            var isExit = false;
            foreach (var route in n.ApprovedRoutes)
            {
                if (!IpText.TryParsePrefix(route, out var set, out var canonical))
                {
                    throw new PolicyException($"topology: node \"{n.Name}\": approved route \"{route}\" is not a CIDR");
                }

                if (canonical is "0.0.0.0/0" or "::/0")
                {
                    isExit = true;
                    continue;
                }

                subnet.AddRange(set.Ranges.ToArray());
            }

            var entry = new NodeEntry
            {
                Index = i,
                Node = n,
                Addresses = [.. addrs],
                AddressTexts = [.. addrs.Select(IpText.Format)],
                Ips = IpSet.OfAddresses(addrs),
                SubnetRoutes = IpSet.Of(subnet),
                IsExit = isExit,
            };
            nodes[i] = entry;
            if (!entry.SubnetRoutes.IsEmpty)
            {
                routers.Add(i);
                allRoutes.AddRange(subnet);
            }

            if (isExit)
            {
                exits.Add(i);
            }

            if (n.IsTagged)
            {
                tagged.Add(i);
                foreach (var t in n.Tags)
                {
                    Add(_byTag, t, i);
                }
            }
            else
            {
                untagged.Add(i);
                if (n.User is not null)
                {
                    Add(_untaggedByUser, n.User, i);
                }
            }
        }

        Nodes = nodes;
        addresses.Sort(static (a, b) => a.Item1.CompareTo(b.Item1));
        _sortedAddresses = [.. addresses];
        Routers = [.. routers];
        ExitNodes = [.. exits];
        Untagged = [.. untagged];
        Tagged = [.. tagged];
        ApprovedSubnetRoutes = IpSet.Of(allRoutes);
    }

    public NodeEntry[] Nodes { get; }

    public int[] Routers { get; }

    public int[] ExitNodes { get; }

    public int[] Untagged { get; }

    public int[] Tagged { get; }

    /// <summary>Every node's approved subnet routes (exit routes excluded).</summary>
    public IpSet ApprovedSubnetRoutes { get; }

    public IEnumerable<KeyValuePair<string, List<int>>> UntaggedByUser => _untaggedByUser;

    private void AddToken(string token, string user)
    {
        if (!_usersByToken.TryGetValue(token, out var list))
        {
            _usersByToken[token] = list = [];
        }

        if (!list.Contains(user))
        {
            list.Add(user);
        }
    }

    private static void Add(Dictionary<string, List<int>> map, string key, int node)
    {
        if (!map.TryGetValue(key, out var list))
        {
            map[key] = list = [];
        }

        list.Add(node);
    }

    public bool TryGetNode(string name, out NodeEntry node)
    {
        if (_byName.TryGetValue(name, out var i))
        {
            node = Nodes[i];
            return true;
        }

        node = null!;
        return false;
    }

    /// <summary>
    /// Users a policy token names: an email, or a user name with or without a trailing '@', each with or without a
    /// <c>user:</c> prefix; <c>*@example.com</c> names every user whose email is in that domain.
    /// </summary>
    public IReadOnlyList<string> UsersFor(string token)
    {
        if (token.StartsWith("user:", StringComparison.Ordinal))
        {
            token = token[5..];
        }

        if (_usersByToken.TryGetValue(token, out var list))
        {
            return list;
        }

        if (token.StartsWith("*@", StringComparison.Ordinal))
        {
            return UsersOfDomain(token.AsSpan(2));
        }

        var trimmed = token.TrimEnd('@');
        return trimmed.Length != token.Length && _usersByToken.TryGetValue(trimmed, out list) ? list : [];
    }

    /// <summary>Users whose email is in <paramref name="domain"/> (compared without regard to case).</summary>
    private List<string> UsersOfDomain(ReadOnlySpan<char> domain)
    {
        var found = new List<string>();
        foreach (var u in _users)
        {
            var at = u.Email?.LastIndexOf('@') ?? -1;
            if (at >= 0 && u.Email.AsSpan(at + 1).Equals(domain, StringComparison.OrdinalIgnoreCase) && !found.Contains(u.Name))
            {
                found.Add(u.Name);
            }
        }

        return found;
    }

    public IReadOnlyList<int> UntaggedNodesOf(string user) =>
        _untaggedByUser.TryGetValue(user, out var list) ? list : [];

    public IReadOnlyList<int> NodesWithTag(string tag) => _byTag.TryGetValue(tag, out var list) ? list : [];

    /// <summary>Nodes with an address inside <paramref name="range"/>, by binary search over the sorted addresses.</summary>
    public void NodesWithAddressIn(IpRange range, List<int> into)
    {
        int lo = 0, hi = _sortedAddresses.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_sortedAddresses[mid].Address < range.First)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        for (var i = lo; i < _sortedAddresses.Length && _sortedAddresses[i].Address <= range.Last; i++)
        {
            into.Add(_sortedAddresses[i].Node);
        }
    }
}
