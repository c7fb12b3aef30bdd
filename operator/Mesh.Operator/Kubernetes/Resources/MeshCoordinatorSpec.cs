using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using k8s.Models;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Kubernetes.Resources;

/// <summary>Who runs a network's coordinator: the operator, or someone else at a URL.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CoordinatorMode>))]
internal enum CoordinatorMode
{
    /// <summary>The operator runs it: a Deployment, a Service, a PVC for its database, and Secrets for its keys.</summary>
    Managed,

    /// <summary>Another cluster (or host) runs it; this cluster's nodes join it with an auth key.</summary>
    External,
}

[CelRule("self.mode == 'External' ? has(self.external) : !has(self.external)", "external is required when mode is External, and allowed only then")]
[CelRule("self.mode == 'Managed' || !has(self.managed)", "managed is allowed only when mode is Managed")]
internal sealed class MeshCoordinatorSpec
{
    [JsonPropertyName("mode")]
    [Required]
    [Description("Managed: the operator runs the coordinator in the operator's namespace (settings in managed). External: nodes join a coordinator run elsewhere (settings in external).")]
    public CoordinatorMode Mode { get; set; }

    [JsonPropertyName("managed")]
    [Description("How the operator runs the coordinator (mode Managed). Left out: every default.")]
    public ManagedCoordinator? Managed { get; set; }

    [JsonPropertyName("external")]
    [Description("Where the coordinator is and how to join it (mode External).")]
    public ExternalCoordinator? External { get; set; }
}

/// <summary>The coordinator as the operator runs it: one writer over one SQLite database on a PVC.</summary>
internal sealed class ManagedCoordinator
{
    [JsonPropertyName("image")]
    [MaxLength(512)]
    [Description("The container image of mesh-operator to run as the coordinator. Empty: the operator's own image.")]
    public string? Image { get; set; }

    [JsonPropertyName("replicas")]
    [Range(0, 1)]
    [DefaultValue(1)]
    [Description("1 runs the coordinator; 0 stops it (nodes keep their tunnels, but nothing new reaches them). It is a single writer over its database, so never more than 1.")]
    public int? Replicas { get; set; }

    [JsonPropertyName("serverURL")]
    [HttpUrl]
    [Description("The URL nodes use to reach the coordinator (its server_url). Empty: the Service's cluster DNS name, http://<network>-coordinator.<namespace>.svc:8080, which only nodes inside the cluster reach.")]
    public string? ServerUrl { get; set; }

    [JsonPropertyName("storage")]
    [DefaultEmptyObject]
    [Description("The PersistentVolumeClaim that holds the coordinator's database and keys.")]
    public CoordinatorStorage? Storage { get; set; }

    [JsonPropertyName("service")]
    [DefaultEmptyObject]
    [Description("The Service in front of the coordinator: HTTP 8080/tcp (node API, admin API, relay) and STUN 3478/udp.")]
    public CoordinatorService? Service { get; set; }
}

internal sealed class CoordinatorStorage
{
    [JsonPropertyName("size")]
    [DefaultValue("1Gi")]
    [Description("The size of the volume, such as 1Gi.")]
    public ResourceQuantity? Size { get; set; }

    [JsonPropertyName("storageClassName")]
    [DnsName]
    [Description("The StorageClass of the volume. Empty: the cluster's default class.")]
    public string? StorageClassName { get; set; }
}

/// <summary>The Service types a coordinator can be exposed with.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CoordinatorServiceType>))]
internal enum CoordinatorServiceType
{
    ClusterIP,
    NodePort,
    LoadBalancer,
}

internal sealed class CoordinatorService
{
    [JsonPropertyName("type")]
    [DefaultValue(CoordinatorServiceType.ClusterIP)]
    [Description("ClusterIP when every node is in the cluster; NodePort or LoadBalancer so nodes outside it can reach the coordinator (then set serverURL to the address they use).")]
    public CoordinatorServiceType? Type { get; set; }

    [JsonPropertyName("annotations")]
    [Description("Annotations for the Service, such as a cloud load balancer's settings.")]
    public Dictionary<string, string>? Annotations { get; set; }
}

/// <summary>A coordinator run elsewhere, joined with an auth key.</summary>
internal sealed class ExternalCoordinator
{
    [JsonPropertyName("url")]
    [Required]
    [HttpUrl]
    [Description("The coordinator's URL, as nodes reach it (its server_url), such as https://mesh.example.com.")]
    public string Url { get; set; } = "";

    [JsonPropertyName("authKeySecretRef")]
    [Required]
    [Description("The Secret holding a reusable pre-auth key (mesh-operator preauthkeys create --reusable --tags ...) that this cluster's nodes register with. In the operator's namespace.")]
    public SecretKeyRef AuthKeySecretRef { get; set; } = new();

    [JsonPropertyName("apiKeySecretRef")]
    [Description("The Secret holding an API key for the coordinator's admin API (mesh-operator apikeys create). Without it the operator cannot install MeshAcl policy or report node status for this network. In the operator's namespace.")]
    public SecretKeyRef? ApiKeySecretRef { get; set; }
}

/// <summary>One key of a Secret in the operator's namespace.</summary>
internal sealed class SecretKeyRef
{
    [JsonPropertyName("name")]
    [Required]
    [DnsName]
    [Description("The Secret's name.")]
    public string Name { get; set; } = "";

    [JsonPropertyName("key")]
    [MinLength(1)]
    [MaxLength(253)]
    [RegularExpression("^[-._a-zA-Z0-9]+$")]
    [DefaultValue("key")]
    [Description("The key in the Secret's data.")]
    public string? Key { get; set; }
}
