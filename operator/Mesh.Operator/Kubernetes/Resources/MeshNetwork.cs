using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Kubernetes.Resources;

/// <summary>
/// MeshNetwork (cluster-scoped, short name mnet): one mesh, a "tailnet" — its address prefixes, DNS, relay and key
/// expiry, and the coordinator that serves it, run by the operator (<see cref="CoordinatorMode.Managed"/>) or
/// another cluster's (<see cref="CoordinatorMode.External"/>). Intent only: live state (keys, endpoints, online)
/// lives in the coordinator and comes back in <see cref="Status"/>.
/// </summary>
[KubernetesEntity(Group = MeshApi.Group, ApiVersion = MeshApi.Version, Kind = KubeKind, PluralName = "meshnetworks")]
[CustomResource(CustomResourceScope.Cluster, "meshnetwork", ShortNames = ["mnet"])]
[Description("MeshNetwork is one mesh (a tailnet): its address prefixes, DNS, relay, node key expiry, and the coordinator that serves it, either run by the operator (Managed) or run elsewhere (External).")]
[PrinterColumn("Coordinator", "string", ".spec.coordinator.mode", Description = "Managed or External")]
[PrinterColumn("URL", "string", ".status.coordinatorURL", Description = "The URL nodes use to reach the coordinator")]
[PrinterColumn("Nodes", "integer", ".status.nodes", Description = "Nodes registered in the network")]
[PrinterColumn("Online", "integer", ".status.onlineNodes", Description = "Nodes connected to the coordinator now")]
[PrinterColumn("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("IPv4", "string", ".spec.prefixes.v4", Priority = 1, Description = "The IPv4 prefix node addresses come from")]
[PrinterColumn("Domain", "string", ".spec.dns.baseDomain", Priority = 1, Description = "The MagicDNS base domain")]
[PrinterColumn("Reason", "string", ".status.conditions[?(@.type==\"Ready\")].reason", Priority = 1)]
[PrinterColumn("Age", "date", ".metadata.creationTimestamp")]
internal sealed class MeshNetwork : IKubernetesObject<V1ObjectMeta>, ISpec<MeshNetworkSpec>, IStatus<MeshNetworkStatus?>
{
    public const string KubeKind = "MeshNetwork";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = MeshApi.ApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    [Required]
    [Description("The desired mesh.")]
    public MeshNetworkSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    [Description("What the operator and the coordinator observed. Written by the operator only.")]
    public MeshNetworkStatus? Status { get; set; }
}

internal sealed class MeshNetworkSpec
{
    [JsonPropertyName("coordinator")]
    [Required]
    [Description("The coordination server of this network: run by the operator (mode Managed) or reached at a URL (mode External).")]
    public MeshCoordinatorSpec Coordinator { get; set; } = new();

    [JsonPropertyName("prefixes")]
    [DefaultEmptyObject]
    [Description("The prefixes node addresses are allocated from. Used by a Managed coordinator; an External coordinator has its own.")]
    public MeshPrefixes? Prefixes { get; set; }

    [JsonPropertyName("dns")]
    [DefaultEmptyObject]
    [Description("DNS that nodes receive: MagicDNS names for every node, nameservers, extra records and split DNS. Used by a Managed coordinator.")]
    public MeshDns? Dns { get; set; }

    [JsonPropertyName("relay")]
    [DefaultEmptyObject]
    [Description("The relay (DERP-style) and STUN server embedded in a Managed coordinator, used by nodes that have no direct UDP path to each other.")]
    public MeshRelay? Relay { get; set; }

    [JsonPropertyName("nodeKeyExpiry")]
    [Duration]
    [DefaultValue("180d")]
    [Description("How long a node's key is valid after it registers, such as 180d or 2160h; 0 means keys never expire. Nodes created by the operator (pods, Services, routers) are tagged and do not expire. Used by a Managed coordinator.")]
    public string? NodeKeyExpiry { get; set; }
}

internal sealed class MeshPrefixes
{
    [JsonPropertyName("v4")]
    [Cidr]
    [DefaultValue("100.64.0.0/10")]
    [Description("The IPv4 prefix node addresses come from, inside 100.64.0.0/10 (CGNAT space).")]
    public string? V4 { get; set; }

    [JsonPropertyName("v6")]
    [Cidr]
    [DefaultValue("fd7a:115c:a1e0::/48")]
    [Description("The IPv6 prefix node addresses come from, a ULA prefix.")]
    public string? V6 { get; set; }
}

internal sealed class MeshDns
{
    [JsonPropertyName("magicDNS")]
    [DefaultValue(true)]
    [Description("Whether every node answers <hostname> and <hostname>.<baseDomain> for every node it may reach, at 100.100.100.100 and fd7a:115c:a1e0::53.")]
    public bool? MagicDns { get; set; }

    [JsonPropertyName("baseDomain")]
    [DnsName]
    [DefaultValue("mesh.internal")]
    [Description("The domain of MagicDNS names: a node web is web.<baseDomain>.")]
    public string? BaseDomain { get; set; }

    [JsonPropertyName("nameservers")]
    [IpAddress]
    [MaxLength(16)]
    [Description("Resolvers for names outside the mesh, IPv4 or IPv6 addresses. Empty: nodes keep their own resolvers.")]
    public List<string>? Nameservers { get; set; }

    [JsonPropertyName("extraRecords")]
    [MaxLength(1024)]
    [Description("DNS records served to every node in addition to the nodes' own names.")]
    public List<MeshDnsRecord>? ExtraRecords { get; set; }

    [JsonPropertyName("splitDNS")]
    [ListMap("domain")]
    [MaxLength(64)]
    [Description("Resolvers for particular domains: queries for a domain (and its subdomains) go to its nameservers.")]
    public List<MeshSplitDns>? SplitDns { get; set; }
}

internal sealed class MeshDnsRecord
{
    [JsonPropertyName("name")]
    [Required]
    [DnsName]
    [Description("The name, such as grafana.mesh.internal.")]
    public string Name { get; set; } = "";

    [JsonPropertyName("type")]
    [AllowedValues("A", "AAAA")]
    [DefaultValue("A")]
    [Description("A for an IPv4 address, AAAA for an IPv6 address.")]
    public string? Type { get; set; }

    [JsonPropertyName("value")]
    [Required]
    [IpAddress]
    [Description("The address the name resolves to.")]
    public string Value { get; set; } = "";
}

internal sealed class MeshSplitDns
{
    [JsonPropertyName("domain")]
    [Required]
    [DnsName]
    [Description("The domain, such as corp.example.com; its subdomains go to the same nameservers.")]
    public string Domain { get; set; } = "";

    [JsonPropertyName("nameservers")]
    [Required]
    [IpAddress]
    [MinLength(1)]
    [MaxLength(8)]
    [Description("The resolvers for the domain, IPv4 or IPv6 addresses.")]
    public List<string> Nameservers { get; set; } = [];
}

internal sealed class MeshRelay
{
    [JsonPropertyName("enabled")]
    [DefaultValue(true)]
    [Description("Whether the coordinator serves the relay (at /derp on its HTTP port) and STUN. With false, nodes that cannot reach each other directly cannot talk unless extraRelayMapURLs names other relays.")]
    public bool? Enabled { get; set; }

    [JsonPropertyName("regionID")]
    [Range(1, 1_000_000)]
    [DefaultValue(999)]
    [Description("The region ID of the embedded relay in the relay map nodes receive.")]
    public int? RegionId { get; set; }

    [JsonPropertyName("regionCode")]
    [DnsLabel]
    [DefaultValue("mesh")]
    [Description("The short name of the embedded relay's region, shown by mesh-sidecar status as relay \"<regionCode>\".")]
    public string? RegionCode { get; set; }

    [JsonPropertyName("stunPort")]
    [Range(1, 65535)]
    [DefaultValue(3478)]
    [Description("The UDP port of the STUN server; the next port answers too, so nodes can tell NATs that map per destination.")]
    public int? StunPort { get; set; }

    [JsonPropertyName("extraRelayMapURLs")]
    [HttpUrl]
    [MaxLength(16)]
    [Description("URLs of further relay maps (JSON, Tailscale's DERPMap shape) merged after the embedded region.")]
    public List<string>? ExtraRelayMapUrls { get; set; }
}

internal sealed class MeshNetworkStatus
{
    [JsonPropertyName("observedGeneration")]
    [Description("The metadata.generation this status describes; older than metadata.generation while the operator catches up.")]
    public long? ObservedGeneration { get; set; }

    [JsonPropertyName("conditions")]
    [ListMap("type")]
    [MaxLength(16)]
    [Description("Ready: the coordinator serves the network as specified. Reconciling: the operator is working on it. Stalled: it cannot progress without a change (the reason and message say which).")]
    public List<V1Condition>? Conditions { get; set; }

    [JsonPropertyName("coordinatorURL")]
    [Description("The URL nodes use to reach the coordinator (its server_url).")]
    public string? CoordinatorUrl { get; set; }

    [JsonPropertyName("nodes")]
    [Description("How many nodes are registered in the network, whoever created them.")]
    public int? Nodes { get; set; }

    [JsonPropertyName("onlineNodes")]
    [Description("How many of them hold a map stream to the coordinator now.")]
    public int? OnlineNodes { get; set; }
}
