using System.Net;
using System.Text.RegularExpressions;
using k8s.Models;

namespace Mesh.Operator.Injection;

/// <summary>Whether a pod asked for the sidecar: its <c>inject</c> label or annotation.</summary>
internal enum InjectChoice
{
    /// <summary>Neither label nor annotation: the namespace decides.</summary>
    Unset,

    /// <summary><c>"true"</c>.</summary>
    Inject,

    /// <summary><c>"false"</c>.</summary>
    OptOut,
}

/// <summary>
/// What a pod's <c>mesh.meshoperator.io/</c> annotations ask of its agent, validated. Values are
/// checked as the agent would check its flags, so a typo is refused at admission instead of
/// crash-looping the sidecar.
/// </summary>
internal sealed partial record PodMeshRequest
{
    public string? Network { get; init; }

    /// <summary>The node's name; null: the pod's name (downward API).</summary>
    public string? Hostname { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public IReadOnlyList<string> AdvertiseRoutes { get; init; } = [];

    public bool AdvertiseExitNode { get; init; }

    public bool AcceptRoutes { get; init; }

    /// <summary>The pod forwards traffic for the mesh (subnet routes or exit node): it needs iptables.</summary>
    public bool Forwards => AdvertiseRoutes.Count > 0 || AdvertiseExitNode;

    /// <summary>The pod's choice, from its label (which wins, as with Istio) or else its annotation; an error for any value but true/false.</summary>
    public static InjectChoice ReadInjectChoice(V1ObjectMeta? metadata, out string? error)
    {
        error = null;
        string? value = null;
        string? source = null;
        if (metadata?.Labels?.TryGetValue(MeshAnnotations.Inject, out var label) == true)
        {
            (value, source) = (label, "label");
        }
        else if (metadata?.Annotations?.TryGetValue(MeshAnnotations.Inject, out var annotation) == true)
        {
            (value, source) = (annotation, "annotation");
        }

        if (value is null)
        {
            return InjectChoice.Unset;
        }

        if (bool.TryParse(value, out var inject))
        {
            return inject ? InjectChoice.Inject : InjectChoice.OptOut;
        }

        error = $"{source} {MeshAnnotations.Inject}: \"{value}\" is neither \"true\" nor \"false\"";
        return InjectChoice.Unset;
    }

    /// <summary>Reads and validates the annotations; every problem is reported, not just the first.</summary>
    public static PodMeshRequest Parse(IDictionary<string, string>? annotations, out IReadOnlyList<string> errors)
    {
        var problems = new List<string>();
        string? Get(string name) => annotations is not null && annotations.TryGetValue(name, out var value) ? value.Trim() : null;

        var network = Get(MeshAnnotations.Network);
        if (network is { Length: 0 })
        {
            network = null;
        }

        var hostname = Get(MeshAnnotations.Hostname);
        if (hostname is not null && !KubernetesNames.IsDnsLabel(hostname))
        {
            problems.Add($"{MeshAnnotations.Hostname}: \"{hostname}\" is not a DNS label (lower-case letters, digits and '-', at most 63)");
        }

        var tags = new List<string>();
        foreach (var tag in Split(Get(MeshAnnotations.Tags)))
        {
            if (!Tag().IsMatch(tag))
            {
                problems.Add($"{MeshAnnotations.Tags}: \"{tag}\" is not a tag (tag:name, name of letters, digits and '-')");
            }
            else if (!tags.Contains(tag, StringComparer.Ordinal))
            {
                tags.Add(tag);
            }
        }

        var routes = new List<string>();
        foreach (var route in Split(Get(MeshAnnotations.AdvertiseRoutes)))
        {
            // The agent's own rule (mesh-sidecar up --advertise-routes): a canonical prefix, no host bits.
            if (!IPNetwork.TryParse(route, out var prefix) || prefix.ToString() != route)
            {
                problems.Add($"{MeshAnnotations.AdvertiseRoutes}: \"{route}\" is not a CIDR prefix with no host bits, such as 10.0.0.0/24");
            }
            else if (!routes.Contains(route, StringComparer.Ordinal))
            {
                routes.Add(route);
            }
        }

        var exitNode = false;
        if (Get(MeshAnnotations.ExitNode) is { } exit && !bool.TryParse(exit, out exitNode))
        {
            // Using an exit node from a pod would send the pod's cluster traffic (Services, cluster
            // DNS) into the tunnel too; only offering one is supported by annotation.
            problems.Add($"{MeshAnnotations.ExitNode}: \"{exit}\" is neither \"true\" (the pod offers itself as an exit node) nor \"false\"");
        }

        var acceptRoutes = false;
        if (Get(MeshAnnotations.AcceptRoutes) is { } accept && !bool.TryParse(accept, out acceptRoutes))
        {
            problems.Add($"{MeshAnnotations.AcceptRoutes}: \"{accept}\" is neither \"true\" nor \"false\"");
        }

        errors = problems;
        return new PodMeshRequest
        {
            Network = network,
            Hostname = hostname,
            Tags = tags,
            AdvertiseRoutes = routes,
            AdvertiseExitNode = exitNode,
            AcceptRoutes = acceptRoutes,
        };
    }

    private static IEnumerable<string> Split(string? list) =>
        (list ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [GeneratedRegex("^tag:[A-Za-z0-9][-A-Za-z0-9]*$")]
    private static partial Regex Tag();
}
