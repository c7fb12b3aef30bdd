namespace Mesh.Policy;

internal enum AliasKind
{
    Wildcard,
    User,
    Group,
    Tag,
    Host,
    Prefix,
    Member,
    Tagged,
    Internet,
    Self,

    /// <summary><c>autogroup:danger-all</c>: every address, inside the tailnet or not (sources only).</summary>
    DangerAll,
}

/// <summary>One selector of a policy (<c>*</c>, a user, <c>group:x</c>, <c>tag:x</c>, a host, a CIDR, an autogroup).</summary>
/// <param name="Name">The selector as written; for users, the user token without a <c>user:</c> prefix
/// (<c>odin@example.com</c>, or <c>*@example.com</c> for every user of a domain).</param>
/// <param name="Set">For hosts and prefixes: the addresses named.</param>
internal sealed record Alias(AliasKind Kind, string Name, IpSet? Set = null);

/// <summary>A destination with its ports: <c>tag:server:22,80-90</c>.</summary>
internal sealed record Destination(Alias Alias, PortRange[] Ports);

/// <summary>
/// One rule after parsing: an <c>acls</c> entry, or one <c>ip</c> entry of a grant. <see cref="Protocols"/> null
/// means the default set. <see cref="Via"/> lists the tags of routers a grant is limited to.
/// </summary>
internal sealed record AclRule(string Where, Alias[] Sources, Destination[] Destinations, int[]? Protocols, string[]? Via);

internal sealed record RouteApprover(IpSet Prefix, string Text, Alias[] Approvers);

internal sealed record PolicyTestCase(string Where, string? Src, string? Proto, string[] Accept, string[] Deny);

/// <summary>A parsed and validated policy, before it meets a topology.</summary>
internal sealed class PolicyDocument
{
    public Dictionary<string, string[]> Groups { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, Alias> Hosts { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, Alias[]> TagOwners { get; } = new(StringComparer.Ordinal);

    public List<AclRule> Rules { get; } = [];

    /// <summary>False when the policy has neither <c>acls</c> nor <c>grants</c>: then everything is allowed.</summary>
    public bool HasRules { get; set; }

    public List<RouteApprover> RouteApprovers { get; } = [];

    public List<Alias> ExitNodeApprovers { get; } = [];

    public List<PolicyTestCase> Tests { get; } = [];
}
