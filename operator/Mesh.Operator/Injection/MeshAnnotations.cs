namespace Mesh.Operator.Injection;

/// <summary>
/// The pod annotations and labels of the public contract (DESIGN.md, "Annotations and labels"), all
/// under <c>mesh.meshoperator.io/</c>, and the status annotation the injector writes.
/// </summary>
internal static class MeshAnnotations
{
    public const string Prefix = "mesh.meshoperator.io/";

    /// <summary><c>"true"</c> injects, <c>"false"</c> opts out (also read from the pod's labels; the label wins).</summary>
    public const string Inject = Prefix + "inject";

    /// <summary>The MeshNetwork the pod joins (default: the injector's network).</summary>
    public const string Network = Prefix + "network";

    /// <summary>The node's name in the mesh (default: the pod's name).</summary>
    public const string Hostname = Prefix + "hostname";

    /// <summary>Comma list of <c>tag:name</c>.</summary>
    public const string Tags = Prefix + "tags";

    /// <summary>Comma list of CIDR prefixes the pod offers as subnet routes.</summary>
    public const string AdvertiseRoutes = Prefix + "advertise-routes";

    /// <summary><c>"true"</c>: the pod offers itself as an exit node.</summary>
    public const string ExitNode = Prefix + "exit-node";

    /// <summary><c>"true"</c>: the pod routes to other nodes' approved subnet routes.</summary>
    public const string AcceptRoutes = Prefix + "accept-routes";

    /// <summary>Written by the injector: what it added, as JSON (like Istio's <c>sidecar.istio.io/status</c>).</summary>
    public const string Status = Prefix + "status";

    /// <summary>Namespace label that injects every pod in the namespace (the webhook's concern; a manifest cannot show it).</summary>
    public const string NamespaceInjectLabel = Prefix + "inject";

    /// <summary>The namespace label's value that turns injection on.</summary>
    public const string NamespaceInjectEnabled = "enabled";
}
