using System.Net;
using k8s.Models;

namespace Mesh.Operator.Injection;

/// <summary>The network a pod's agent joins: its name, its coordinator, and where the pod finds its pre-auth key.</summary>
/// <param name="Name">The MeshNetwork's name; a pod that asks for another one (annotation <c>network</c>) is refused.</param>
/// <param name="LoginServer">The coordinator's URL as the pod reaches it (MESH_LOGIN_SERVER).</param>
/// <param name="AuthKeySecret">A Secret in the pod's namespace holding the pre-auth key (MESH_AUTHKEY).</param>
/// <param name="AuthKeySecretKey">The key of that Secret's data.</param>
/// <param name="BaseDomain">The network's MagicDNS domain (<c>dns.base_domain</c>), added to the pod's search list.</param>
internal sealed record MeshNetworkTarget(string Name, Uri LoginServer, string AuthKeySecret, string AuthKeySecretKey = "authkey", string BaseDomain = "mesh.internal");

/// <summary>
/// What the injector needs besides the pod: the sidecar image, the network, and how to keep cluster
/// DNS working next to MagicDNS. The webhook fills it from the MeshNetwork and the operator's
/// configuration; `mesh-operator inject` from its flags.
/// </summary>
internal sealed record InjectionSettings
{
    /// <summary>No image is published yet (the Dockerfiles are a later issue): pass your own.</summary>
    public const string DefaultImage = "meshoperator/mesh-sidecar:latest";

    public const string DefaultClusterDomain = "cluster.local";

    public required MeshNetworkTarget Network { get; init; }

    public string Image { get; init; } = DefaultImage;

    /// <summary>Point the pod's resolv.conf at MagicDNS (pod <c>dnsConfig</c>); false leaves the pod's DNS alone.</summary>
    public bool MagicDns { get; init; } = true;

    /// <summary>The cluster DNS Service's IPs (kube-dns), needed to rewrite a <c>ClusterFirst</c> pod's DNS.</summary>
    public IReadOnlyList<IPAddress> ClusterDns { get; init; } = [];

    public string ClusterDomain { get; init; } = DefaultClusterDomain;

    /// <summary>The sidecar's requests and limits; null: <see cref="SidecarTemplate.DefaultResources"/>.</summary>
    public V1ResourceRequirements? Resources { get; init; }

    /// <summary>What is wrong with these settings, empty when nothing is.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Image))
        {
            errors.Add("the sidecar image is empty");
        }

        if (!KubernetesNames.IsDnsSubdomain(Network.Name))
        {
            errors.Add($"network \"{Network.Name}\" is not a valid Kubernetes name");
        }

        if (!Network.LoginServer.IsAbsoluteUri || Network.LoginServer.Scheme is not ("http" or "https"))
        {
            errors.Add($"the login server \"{Network.LoginServer}\" is not an http(s) URL");
        }

        if (!KubernetesNames.IsDnsSubdomain(Network.AuthKeySecret))
        {
            errors.Add($"the auth key Secret \"{Network.AuthKeySecret}\" is not a valid Secret name");
        }

        if (!KubernetesNames.IsConfigMapKey(Network.AuthKeySecretKey))
        {
            errors.Add($"the auth key Secret key \"{Network.AuthKeySecretKey}\" is not a valid key");
        }

        if (!KubernetesNames.IsDnsSubdomain(Network.BaseDomain))
        {
            errors.Add($"the base domain \"{Network.BaseDomain}\" is not a DNS name");
        }

        if (!KubernetesNames.IsDnsSubdomain(ClusterDomain))
        {
            errors.Add($"the cluster domain \"{ClusterDomain}\" is not a DNS name");
        }

        if (ClusterDns.Count > 2)
        {
            errors.Add("at most two cluster DNS addresses: a pod has three nameservers, and MagicDNS takes one");
        }

        return errors;
    }
}
