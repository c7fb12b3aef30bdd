using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace Mesh.Operator.Injection;

/// <summary>
/// The sidecar injection transform, shared by the admission webhook (not built yet) and
/// `mesh-operator inject`: given a pod (a Pod's or a workload's pod template: metadata and spec)
/// and <see cref="InjectionSettings"/>, decides whether the pod gets the node agent and returns the
/// mutated pod together with the JSON Patch that produces it.
/// </summary>
/// <remarks>
/// <para>Pure: no I/O, no clock, no Kubernetes API. Whatever the webhook knows that a manifest
/// cannot show — the namespace's <c>mesh.meshoperator.io/inject=enabled</c> label, the namespace
/// itself — comes in as <see cref="PodContext"/>.</para>
/// <para>The mutation is written against the typed model (readable, checked by the compiler); the
/// patch is the <see cref="JsonPatch.Diff"/> of the pod before and after. The webhook returns that
/// patch, and the CLI applies the very same patch to the manifest it read, so the two cannot
/// diverge, and fields the typed model does not know survive in the CLI's output.</para>
/// <para>What gets added, and why: docs/operator.md, "Injection".</para>
/// </remarks>
internal sealed class SidecarInjector
{
    private readonly InjectionSettings _settings;

    public SidecarInjector(InjectionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var errors = settings.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException($"invalid injection settings: {string.Join("; ", errors)}", nameof(settings));
        }

        _settings = settings;
    }

    public InjectionSettings Settings => _settings;

    /// <summary>Injects the sidecar into <paramref name="pod"/> if it asked for it; <paramref name="pod"/> itself is never changed.</summary>
    public InjectionResult Inject(V1PodTemplateSpec pod, PodContext context)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(context);
        var spec = pod.Spec ?? new V1PodSpec();
        if (IsInjected(pod))
        {
            return InjectionResult.Unchanged(InjectionOutcome.AlreadyInjected, pod);
        }

        var choice = PodMeshRequest.ReadInjectChoice(pod.Metadata, out var choiceError);
        if (choiceError is not null)
        {
            return InjectionResult.Unchanged(InjectionOutcome.Refused, pod, choiceError);
        }

        switch (choice)
        {
            case InjectChoice.OptOut:
                return InjectionResult.Unchanged(InjectionOutcome.OptedOut, pod);
            case InjectChoice.Unset when !context.NamespaceInjectionEnabled:
                return InjectionResult.Unchanged(InjectionOutcome.NotRequested, pod);
        }

        if (spec.HostNetwork == true)
        {
            return InjectionResult.Unchanged(InjectionOutcome.NotApplicable, pod, "a hostNetwork pod shares the node's network: the agent would put its TUN device, routes and MagicDNS address on the node itself");
        }

        if (spec.Os?.Name == "windows")
        {
            return InjectionResult.Unchanged(InjectionOutcome.NotApplicable, pod, "a Windows pod: the agent runs on Linux only");
        }

        var request = PodMeshRequest.Parse(pod.Metadata?.Annotations, out var requestErrors);
        var errors = new List<string>(requestErrors);
        var warnings = new List<string>();
        if (request.Network is { } network && network != _settings.Network.Name)
        {
            errors.Add($"{MeshAnnotations.Network}: the pod asks for network \"{network}\", but the injector is set up for \"{_settings.Network.Name}\"");
        }

        var mutated = Clone(pod);
        mutated.Spec ??= new V1PodSpec();
        var mutatedSpec = mutated.Spec;
        CheckNameClashes(mutatedSpec, errors);
        var dnsPolicyBefore = mutatedSpec.DnsPolicy ?? "ClusterFirst";
        PodDns.Apply(mutatedSpec, _settings, context.Namespace, errors, warnings);
        if (errors.Count > 0)
        {
            return InjectionResult.Unchanged(InjectionOutcome.Refused, pod, [.. errors]);
        }

        // First of the init containers: a native sidecar starts (and passes its startup probe)
        // before the init containers after it, so they have the mesh too.
        mutatedSpec.InitContainers = [SidecarTemplate.Container(_settings, request), .. mutatedSpec.InitContainers ?? []];
        mutatedSpec.Volumes = [.. mutatedSpec.Volumes ?? [], .. SidecarTemplate.Volumes()];

        mutated.Metadata ??= new V1ObjectMeta();
        mutated.Metadata.Annotations = new Dictionary<string, string>(mutated.Metadata.Annotations ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [MeshAnnotations.Status] = new InjectionStatus
            {
                Network = _settings.Network.Name,
                Image = _settings.Image,
                DnsPolicy = _settings.MagicDns ? dnsPolicyBefore : null,
            }.ToJson(),
        };

        var patch = JsonPatch.Diff(ToJson(pod), ToJson(mutated));
        return new InjectionResult(InjectionOutcome.Injected, mutated, patch, warnings);
    }

    /// <summary>
    /// The webhook's form: a Pod from an AdmissionReview. Its metadata and spec sit where a
    /// template's do, so the patch's paths (<c>/metadata/…</c>, <c>/spec/…</c>) apply to the Pod as they are.
    /// </summary>
    public InjectionResult Inject(V1Pod pod, PodContext context)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return Inject(new V1PodTemplateSpec { Metadata = pod.Metadata, Spec = pod.Spec }, context with { Namespace = context.Namespace ?? pod.Metadata?.NamespaceProperty });
    }

    /// <summary>True when the pod carries the status annotation or a container named <c>mesh-sidecar</c>.</summary>
    public static bool IsInjected(V1PodTemplateSpec pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        if (pod.Metadata?.Annotations?.ContainsKey(MeshAnnotations.Status) == true)
        {
            return true;
        }

        var spec = pod.Spec;
        return (spec?.InitContainers ?? []).Concat(spec?.Containers ?? []).Any(c => c.Name == SidecarTemplate.ContainerName);
    }

    /// <summary>
    /// The pod in JSON as the typed model serializes it, with each object's <c>name</c> moved first
    /// (the model writes fields alphabetically; a container or volume reads better name first).
    /// </summary>
    public static JsonNode ToJson(V1PodTemplateSpec pod) => NameFirst(JsonNode.Parse(KubernetesJson.Serialize(pod))!)!;

    private static JsonNode? NameFirst(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                var ordered = new JsonObject();
                var members = obj.ToList();
                obj.Clear();
                foreach (var (name, value) in members.OrderBy(m => m.Key == "name" ? 0 : 1))
                {
                    ordered[name] = NameFirst(value);
                }

                return ordered;
            case JsonArray array:
                var items = array.ToList();
                array.Clear();
                return new JsonArray([.. items.Select(NameFirst)]);
            default:
                return node;
        }
    }

    private static V1PodTemplateSpec Clone(V1PodTemplateSpec pod) => KubernetesJson.Deserialize<V1PodTemplateSpec>(KubernetesJson.Serialize(pod));

    private static void CheckNameClashes(V1PodSpec spec, List<string> errors)
    {
        foreach (var volume in spec.Volumes ?? [])
        {
            if (SidecarTemplate.VolumeNames.Contains(volume.Name))
            {
                errors.Add($"the pod already has a volume named \"{volume.Name}\", which the sidecar needs");
            }
        }

        foreach (var container in (spec.InitContainers ?? []).Concat(spec.Containers ?? []))
        {
            foreach (var port in container.Ports ?? [])
            {
                if (port.ContainerPort == SidecarTemplate.MetricsPort && (port.Protocol ?? "TCP") == "TCP")
                {
                    errors.Add($"container \"{container.Name}\" uses port {SidecarTemplate.MetricsPort}/TCP, the sidecar's health and metrics port");
                }
                else if (port.ContainerPort == SidecarTemplate.WireGuardPort && port.Protocol == "UDP")
                {
                    errors.Add($"container \"{container.Name}\" uses port {SidecarTemplate.WireGuardPort}/UDP, the sidecar's WireGuard port");
                }
            }
        }
    }
}

/// <summary>What the webhook knows about a pod that its manifest may not say.</summary>
/// <param name="Namespace">The pod's namespace (for its DNS search list); null when unknown.</param>
/// <param name="NamespaceInjectionEnabled">The namespace carries <c>mesh.meshoperator.io/inject=enabled</c>: pods without an <c>inject</c> choice are injected.</param>
internal sealed record PodContext(string? Namespace, bool NamespaceInjectionEnabled);
