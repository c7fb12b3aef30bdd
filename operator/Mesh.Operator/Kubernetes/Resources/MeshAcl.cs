using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Kubernetes.Resources;

/// <summary>
/// MeshAcl (cluster-scoped, short name macl): access policy for one network, in Tailscale's policy shape. The spec
/// minus <see cref="MeshAclSpec.Network"/> is a policy document (<see cref="MeshPolicy"/>); the network's MeshAcls
/// are merged into one (MeshAclMerge), validated and tested by Mesh.Policy, and installed in the coordinator. A
/// conflict or a failing test makes the merged policy invalid and leaves the last good one in force.
/// </summary>
[KubernetesEntity(Group = MeshApi.Group, ApiVersion = MeshApi.Version, Kind = KubeKind, PluralName = "meshacls")]
[CustomResource(CustomResourceScope.Cluster, "meshacl", ShortNames = ["macl"])]
[Description("MeshAcl is access policy for one MeshNetwork, in Tailscale's policy format: groups, hosts, tagOwners, acls, grants, autoApprovers and tests. All MeshAcls of a network are merged into one policy; a conflict between them or a failing test makes it invalid, and the last valid policy stays in force.")]
[PrinterColumn("Network", "string", ".spec.network")]
[PrinterColumn("Valid", "string", ".status.conditions[?(@.type==\"Valid\")].status", Description = "The merged policy parses, validates and passes its tests")]
[PrinterColumn("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status", Description = "The policy with this MeshAcl is in force in the coordinator")]
[PrinterColumn("Tests", "integer", ".status.testResults.total")]
[PrinterColumn("Failed", "integer", ".status.testResults.failed")]
[PrinterColumn("Reason", "string", ".status.conditions[?(@.type==\"Valid\")].reason", Priority = 1)]
[PrinterColumn("Age", "date", ".metadata.creationTimestamp")]
internal sealed class MeshAcl : IKubernetesObject<V1ObjectMeta>, ISpec<MeshAclSpec>, IStatus<MeshAclStatus?>
{
    public const string KubeKind = "MeshAcl";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = MeshApi.ApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    [Required]
    [Description("The network and the policy.")]
    public MeshAclSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    [Description("Whether the policy is valid and in force, and its test results. Written by the operator only.")]
    public MeshAclStatus? Status { get; set; }
}

/// <summary>
/// The network and the policy sections (the same names and shapes as <see cref="MeshPolicy"/>). Map keys (group and
/// tag names) are left to Mesh.Policy, whose errors reach the status: a CEL rule over the keys of an unbounded map
/// costs more than the API server's estimate allows.
/// </summary>
internal sealed class MeshAclSpec : IPolicySections
{
    [JsonPropertyName("network")]
    [Required]
    [DnsName]
    [CelRule("self == oldSelf", "network is immutable")]
    [Description("The name of the MeshNetwork the policy applies to.")]
    public string Network { get; set; } = "";

    [JsonPropertyName("groups")]
    [Description(PolicyDocs.Groups)]
    public Dictionary<string, List<string>>? Groups { get; set; }

    [JsonPropertyName("hosts")]
    [IpOrCidr]
    [Description(PolicyDocs.Hosts)]
    public Dictionary<string, string>? Hosts { get; set; }

    [JsonPropertyName("tagOwners")]
    [Description(PolicyDocs.TagOwners)]
    public Dictionary<string, List<string>>? TagOwners { get; set; }

    [JsonPropertyName("acls")]
    [Description(PolicyDocs.Acls)]
    public List<PolicyAcl>? Acls { get; set; }

    [JsonPropertyName("grants")]
    [Description(PolicyDocs.Grants)]
    public List<PolicyGrant>? Grants { get; set; }

    [JsonPropertyName("autoApprovers")]
    [Description(PolicyDocs.AutoApprovers)]
    public PolicyAutoApprovers? AutoApprovers { get; set; }

    [JsonPropertyName("tests")]
    [Description(PolicyDocs.Tests)]
    public List<PolicyTest>? Tests { get; set; }
}

internal sealed class MeshAclStatus
{
    [JsonPropertyName("observedGeneration")]
    [Description("The metadata.generation this status describes.")]
    public long? ObservedGeneration { get; set; }

    [JsonPropertyName("conditions")]
    [ListMap("type")]
    [MaxLength(16)]
    [Description("Valid: the network's merged policy parses, validates and passes its tests. Ready: that policy is installed in the coordinator. Reconciling and Stalled as for every kind.")]
    public List<V1Condition>? Conditions { get; set; }

    [JsonPropertyName("testResults")]
    [Description("This MeshAcl's tests, run against the merged policy and the network's nodes.")]
    public PolicyTestResults? TestResults { get; set; }

    [JsonPropertyName("errors")]
    [MaxLength(64)]
    [Description("Why the merged policy is invalid, one problem per entry, naming where it is (acls[2].dst[0] ...). Empty when valid.")]
    public List<string>? Errors { get; set; }
}

internal sealed class PolicyTestResults
{
    [JsonPropertyName("total")]
    [Description("How many tests this MeshAcl has.")]
    public int Total { get; set; }

    [JsonPropertyName("passed")]
    [Description("How many passed.")]
    public int Passed { get; set; }

    [JsonPropertyName("failed")]
    [Description("How many failed.")]
    public int Failed { get; set; }

    [JsonPropertyName("failures")]
    [MaxLength(64)]
    [Description("One line per failed assertion: the test, the destination, and what happened instead.")]
    public List<string>? Failures { get; set; }
}
