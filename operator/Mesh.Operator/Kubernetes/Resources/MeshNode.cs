using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Kubernetes.Resources;

/// <summary>
/// MeshNode (namespaced, short name mnode): one node of a network, as intent plus the live state the coordinator
/// reports. The operator creates one per injected pod and one per exposed Service (<see cref="MeshNodeOrigin"/>,
/// owned by that pod or Service); users create them for subnet routers and exit nodes, which the operator runs as
/// Deployments of <see cref="MeshNodeSpec.Replicas"/> agents.
/// </summary>
[KubernetesEntity(Group = MeshApi.Group, ApiVersion = MeshApi.Version, Kind = KubeKind, PluralName = "meshnodes")]
[CustomResource(CustomResourceScope.Namespaced, "meshnode", ShortNames = ["mnode"])]
[Description("MeshNode is one node of a MeshNetwork. The operator creates one for each pod it injects the agent into and for each Service it exposes; create one yourself for a subnet router or an exit node, which the operator runs as a Deployment.")]
[PrinterColumn("Hostname", "string", ".status.hostname", Description = "The node's name in the mesh")]
[PrinterColumn("IPv4", "string", ".status.ipv4")]
[PrinterColumn("Online", "boolean", ".status.online")]
[PrinterColumn("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("IPv6", "string", ".status.ipv6", Priority = 1)]
[PrinterColumn("Path", "string", ".status.path", Priority = 1, Description = "How peers reach the node: direct <ip:port> or relay \"<region>\"")]
[PrinterColumn("Network", "string", ".spec.network", Priority = 1)]
[PrinterColumn("Origin", "string", ".spec.origin", Priority = 1, Description = "User, Pod or Service")]
[PrinterColumn("Last Seen", "date", ".status.lastSeen", Priority = 1)]
[PrinterColumn("Age", "date", ".metadata.creationTimestamp")]
internal sealed class MeshNode : IKubernetesObject<V1ObjectMeta>, ISpec<MeshNodeSpec>, IStatus<MeshNodeStatus?>
{
    public const string KubeKind = "MeshNode";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = MeshApi.ApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    [Required]
    [Description("The desired node.")]
    public MeshNodeSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    [Description("The node as the coordinator sees it. Written by the operator only.")]
    public MeshNodeStatus? Status { get; set; }
}

/// <summary>Who a MeshNode stands for, which decides who runs its agent and who deletes it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<MeshNodeOrigin>))]
internal enum MeshNodeOrigin
{
    /// <summary>Created by a user: the operator runs the agent as a Deployment (a subnet router or an exit node).</summary>
    User,

    /// <summary>The sidecar of an injected pod; created by the operator and owned by the pod.</summary>
    Pod,

    /// <summary>The proxy of an exposed Service; created by the operator and owned by the Service.</summary>
    Service,
}

[CelRule("!has(self.origin) || self.origin == 'User' || !has(self.replicas) || self.replicas == 1", "replicas applies to User nodes only: a Pod or Service node is one agent")]
internal sealed class MeshNodeSpec
{
    [JsonPropertyName("network")]
    [Required]
    [DnsName]
    [CelRule("self == oldSelf", "network is immutable")]
    [Description("The name of the MeshNetwork the node joins.")]
    public string Network { get; set; } = "";

    [JsonPropertyName("origin")]
    [DefaultValue(MeshNodeOrigin.User)]
    [CelRule("self == oldSelf", "origin is immutable")]
    [Description("User: you created it, and the operator runs its agent as a Deployment. Pod and Service: the operator created it for an injected pod or an exposed Service, owns it through an ownerReference, and deletes it with them.")]
    public MeshNodeOrigin? Origin { get; set; }

    [JsonPropertyName("hostname")]
    [DnsLabel]
    [Description("The node's name in the mesh and in MagicDNS (<hostname>.<baseDomain>). Empty: the MeshNode's name. The coordinator adds a suffix when the name is taken; status.hostname has the name it got.")]
    public string? Hostname { get; set; }

    [JsonPropertyName("tags")]
    [Tag]
    [ListSet]
    [MaxLength(32)]
    [Description("Tags the node registers with, such as tag:router. Its identity in the policy is its tags; the network's MeshAcl tagOwners must allow them.")]
    public List<string>? Tags { get; set; }

    [JsonPropertyName("advertiseRoutes")]
    [Cidr]
    [ListSet]
    [MaxLength(256)]
    [Description("Subnets the node routes to, such as 10.0.0.0/24: a subnet router. The coordinator uses a route once it is approved (mesh-operator routes enable, or the policy's autoApprovers).")]
    public List<string>? AdvertiseRoutes { get; set; }

    [JsonPropertyName("exitNode")]
    [DefaultValue(false)]
    [Description("Offer the node as an exit node: other nodes may send all their internet traffic through it once it is approved.")]
    public bool? ExitNode { get; set; }

    [JsonPropertyName("acceptRoutes")]
    [DefaultValue(false)]
    [Description("Use the subnet routes other nodes advertise.")]
    public bool? AcceptRoutes { get; set; }

    [JsonPropertyName("replicas")]
    [Range(0, 16)]
    [DefaultValue(1)]
    [Description("For User nodes: how many agents the Deployment runs. Each registers as its own mesh node (status.devices); one serves each route at a time and another takes over when it goes offline. 0 stops the node.")]
    public int? Replicas { get; set; }
}

internal sealed class MeshNodeStatus
{
    [JsonPropertyName("observedGeneration")]
    [Description("The metadata.generation this status describes.")]
    public long? ObservedGeneration { get; set; }

    [JsonPropertyName("conditions")]
    [ListMap("type")]
    [MaxLength(16)]
    [Description("Ready: the node is registered and online with the spec applied. Reconciling: the operator is working on it. Stalled: it cannot progress without a change (the reason and message say which).")]
    public List<V1Condition>? Conditions { get; set; }

    [JsonPropertyName("hostname")]
    [Description("The node's name in the mesh. With several replicas, the one serving the routes now.")]
    public string? Hostname { get; set; }

    [JsonPropertyName("nodeID")]
    [Description("The coordinator's ID of the node, as mesh-operator nodes list shows it.")]
    public long? NodeId { get; set; }

    [JsonPropertyName("ipv4")]
    [Description("The node's mesh IPv4 address.")]
    public string? IPv4 { get; set; }

    [JsonPropertyName("ipv6")]
    [Description("The node's mesh IPv6 address.")]
    public string? IPv6 { get; set; }

    [JsonPropertyName("publicKey")]
    [Description("The node's WireGuard public key, nodekey:<64 hex digits>.")]
    public string? PublicKey { get; set; }

    [JsonPropertyName("online")]
    [Description("Whether the node holds a map stream to the coordinator now.")]
    public bool? Online { get; set; }

    [JsonPropertyName("lastSeen")]
    [Description("When the coordinator last heard from the node.")]
    public DateTime? LastSeen { get; set; }

    [JsonPropertyName("path")]
    [Description("How its peers reach the node, as mesh-sidecar status says it: direct <ip:port>, or relay \"<region>\" when it has no direct path; the path most of its peers use.")]
    public string? Path { get; set; }

    [JsonPropertyName("approvedRoutes")]
    [Description("Advertised routes the coordinator approved and uses (0.0.0.0/0 and ::/0 for an approved exit node).")]
    public List<string>? ApprovedRoutes { get; set; }

    [JsonPropertyName("devices")]
    [ListMap("hostname")]
    [Description("Every mesh node this MeshNode runs: one per replica for User nodes, one for Pod and Service nodes.")]
    public List<MeshNodeDevice>? Devices { get; set; }
}

/// <summary>One agent of a MeshNode, as the coordinator sees it.</summary>
internal sealed class MeshNodeDevice
{
    [JsonPropertyName("hostname")]
    [Required]
    [Description("The agent's name in the mesh.")]
    public string Hostname { get; set; } = "";

    [JsonPropertyName("nodeID")]
    [Description("The coordinator's ID of the node.")]
    public long? NodeId { get; set; }

    [JsonPropertyName("ipv4")]
    [Description("Its mesh IPv4 address.")]
    public string? IPv4 { get; set; }

    [JsonPropertyName("ipv6")]
    [Description("Its mesh IPv6 address.")]
    public string? IPv6 { get; set; }

    [JsonPropertyName("publicKey")]
    [Description("Its WireGuard public key.")]
    public string? PublicKey { get; set; }

    [JsonPropertyName("online")]
    [Description("Whether it holds a map stream to the coordinator now.")]
    public bool? Online { get; set; }

    [JsonPropertyName("lastSeen")]
    [Description("When the coordinator last heard from it.")]
    public DateTime? LastSeen { get; set; }

    [JsonPropertyName("path")]
    [Description("How its peers reach it: direct <ip:port> or relay \"<region>\".")]
    public string? Path { get; set; }

    [JsonPropertyName("primaryRoutes")]
    [Description("The approved routes it serves now (each subnet route is served by one node at a time).")]
    public List<string>? PrimaryRoutes { get; set; }
}
