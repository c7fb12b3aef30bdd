namespace Mesh.Policy;

/// <summary>
/// The part of the coordinator's state that a policy is evaluated against: users and nodes.
/// The coordinator builds one from its database whenever users, nodes, tags or routes change;
/// the policy engine never reads anything else.
/// </summary>
public sealed record PolicyTopology(IReadOnlyList<PolicyUser> Users, IReadOnlyList<PolicyNode> Nodes)
{
    public static PolicyTopology Empty { get; } = new([], []);
}

/// <summary>A user. Policies name users by <see cref="Email"/> (or by <see cref="Name"/> followed by '@').</summary>
public sealed record PolicyUser(long Id, string Name, string? Email);

/// <summary>
/// One node. A node is owned by a user (<see cref="User"/>, the user's <see cref="PolicyUser.Name"/>) unless it
/// carries tags, in which case its identity is its tags and it belongs to no user for policy purposes.
/// </summary>
/// <param name="Name">Unique node name (hostname).</param>
/// <param name="User">Owning user's name; ignored when <paramref name="Tags"/> is non-empty.</param>
/// <param name="Tags">Tags such as <c>tag:server</c>.</param>
/// <param name="IPv4">Mesh IPv4 address, or null.</param>
/// <param name="IPv6">Mesh IPv6 address, or null.</param>
/// <param name="AdvertisedRoutes">Routes the node offers (CIDRs; 0.0.0.0/0 and ::/0 make it an exit node candidate).</param>
/// <param name="ApprovedRoutes">Routes an admin or an auto-approver approved.</param>
public sealed record PolicyNode(
    string Name,
    string? User,
    IReadOnlyList<string> Tags,
    string? IPv4,
    string? IPv6,
    IReadOnlyList<string> AdvertisedRoutes,
    IReadOnlyList<string> ApprovedRoutes)
{
    public bool IsTagged => Tags.Count > 0;
}
