using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Kubernetes.Resources;

/// <summary>
/// The sections of a Tailscale policy file, shared by a MeshAcl's spec and <see cref="MeshPolicy"/> (the policy
/// document). Field names and shapes are Tailscale's, so a policy file and a MeshAcl's spec convert into each other
/// (MeshAclPolicy) and Mesh.Policy reads the result.
/// </summary>
internal interface IPolicySections
{
    Dictionary<string, List<string>>? Groups { get; }

    Dictionary<string, string>? Hosts { get; }

    Dictionary<string, List<string>>? TagOwners { get; }

    List<PolicyAcl>? Acls { get; }

    List<PolicyGrant>? Grants { get; }

    PolicyAutoApprovers? AutoApprovers { get; }

    List<PolicyTest>? Tests { get; }
}

/// <summary>A Tailscale policy document: what <c>mesh-operator policy set</c> installs, with no network attached.</summary>
internal sealed class MeshPolicy : IPolicySections
{
    [JsonPropertyName("groups")]
    public Dictionary<string, List<string>>? Groups { get; set; }

    [JsonPropertyName("hosts")]
    public Dictionary<string, string>? Hosts { get; set; }

    [JsonPropertyName("tagOwners")]
    public Dictionary<string, List<string>>? TagOwners { get; set; }

    [JsonPropertyName("acls")]
    public List<PolicyAcl>? Acls { get; set; }

    [JsonPropertyName("grants")]
    public List<PolicyGrant>? Grants { get; set; }

    [JsonPropertyName("autoApprovers")]
    public PolicyAutoApprovers? AutoApprovers { get; set; }

    [JsonPropertyName("tests")]
    public List<PolicyTest>? Tests { get; set; }
}

/// <summary>The descriptions of the policy sections, for <c>kubectl explain meshacl.spec</c>.</summary>
internal static class PolicyDocs
{
    public const string Groups = "Named sets of users: {\"group:eng\": [\"alice@example.com\", \"bob@example.com\"]}. Names start with group:; members are users (emails), not groups.";
    public const string Hosts = "Names for addresses and prefixes: {\"corp-net\": \"10.0.0.0/16\", \"db\": \"10.0.1.5\"}, usable wherever an address is.";
    public const string TagOwners = "Who may give a node a tag: {\"tag:router\": [\"group:ops\"]}. A tag must be listed here to be used anywhere; an empty list means only the operator (through its auth keys) may.";
    public const string Acls = "Rules that allow traffic, in order (there is no deny): each lets the src selectors reach the dst host:ports. Nothing is reachable that no acl or grant allows, unless the policy has neither acls nor grants.";
    public const string Grants = "Rules in Tailscale's newer grant form: src may reach dst over ip (ports and protocols), optionally only through routers with the via tags. Grants and acls may be used together.";
    public const string AutoApprovers = "Who may advertise routes and exit nodes without an admin approving them.";
    public const string Tests = "Assertions checked whenever the merged policy changes: src must reach every accept destination and none of the deny ones. A failing test makes the policy invalid.";
}

/// <summary>One <c>acls</c> rule.</summary>
internal sealed class PolicyAcl
{
    [JsonPropertyName("action")]
    [Required]
    [AllowedValues("accept")]
    [Description("Always accept: rules only allow.")]
    public string Action { get; set; } = "accept";

    [JsonPropertyName("src")]
    [Required]
    [Description("Who may connect: users (alice@example.com), group:x, tag:x, hosts, addresses or prefixes, autogroup:member, autogroup:tagged, or *.")]
    public List<string> Src { get; set; } = [];

    [JsonPropertyName("proto")]
    [MaxLength(16)]
    [Description("The IP protocol: a name (tcp, udp, icmp, ...) or an IANA number. Empty: TCP, UDP, ICMP and ICMPv6.")]
    public string? Proto { get; set; }

    [JsonPropertyName("dst")]
    [Required]
    [Description("Where to: selector:ports, such as tag:db:5432, group:eng:22,80-90, 10.0.0.0/24:*, autogroup:internet:* (through exit nodes) or autogroup:self:*.")]
    public List<string> Dst { get; set; } = [];
}

/// <summary>One <c>grants</c> rule.</summary>
internal sealed class PolicyGrant
{
    [JsonPropertyName("src")]
    [Required]
    [Description("Who may connect; the same selectors as in acls, and autogroup:danger-all (every address).")]
    public List<string> Src { get; set; } = [];

    [JsonPropertyName("dst")]
    [Required]
    [Description("What they may reach: selectors without ports (ports go in ip).")]
    public List<string> Dst { get; set; } = [];

    [JsonPropertyName("ip")]
    [Description("Ports and protocols: *, 22, 80-443, tcp:443, icmp:*. Required unless app is given.")]
    public List<string>? Ip { get; set; }

    [JsonPropertyName("via")]
    [Tag]
    [Description("Only through subnet routers or exit nodes with one of these tags (route steering per source).")]
    public List<string>? Via { get; set; }

    [JsonPropertyName("app")]
    [Description("Application capabilities, {\"example.com/cap/name\": [{...}]}: validated and passed on, not enforced by packet filters.")]
    public Dictionary<string, List<JsonObject>>? App { get; set; }

    [JsonPropertyName("srcPosture")]
    [Description("Device posture conditions (accepted and not enforced).")]
    public List<string>? SrcPosture { get; set; }
}

internal sealed class PolicyAutoApprovers
{
    [JsonPropertyName("routes")]
    [Description("For each prefix, who may advertise it or a subnet of it without approval: {\"10.0.0.0/16\": [\"tag:router\"]}.")]
    public Dictionary<string, List<string>>? Routes { get; set; }

    [JsonPropertyName("exitNode")]
    [Description("Who may offer an exit node without approval: users, groups or tags.")]
    public List<string>? ExitNode { get; set; }
}

/// <summary>One <c>tests</c> entry.</summary>
internal sealed class PolicyTest
{
    [JsonPropertyName("src")]
    [Required]
    [Description("The source: one user, group, tag, host or address.")]
    public string Src { get; set; } = "";

    [JsonPropertyName("proto")]
    [MaxLength(16)]
    [Description("The protocol to test; empty: TCP, UDP, ICMP and ICMPv6.")]
    public string? Proto { get; set; }

    [JsonPropertyName("accept")]
    [Description("Destinations src must reach: host:port, one host and one port each.")]
    public List<string>? Accept { get; set; }

    [JsonPropertyName("deny")]
    [Description("Destinations src must not reach.")]
    public List<string>? Deny { get; set; }
}
