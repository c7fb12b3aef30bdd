using k8s.Models;

namespace Mesh.Operator.Injection;

/// <summary>What the injector decided for one pod.</summary>
internal enum InjectionOutcome
{
    /// <summary>The sidecar was added: <see cref="InjectionResult.Patch"/> says how.</summary>
    Injected,

    /// <summary>No <c>inject</c> label or annotation, and the namespace is not labelled for injection.</summary>
    NotRequested,

    /// <summary><c>inject: "false"</c>.</summary>
    OptedOut,

    /// <summary>The pod already has the sidecar (the status annotation, or a container named <c>mesh-sidecar</c>).</summary>
    AlreadyInjected,

    /// <summary>The pod cannot take the sidecar (host network, Windows); <see cref="InjectionResult.Messages"/> says why.</summary>
    NotApplicable,

    /// <summary>The pod asked for the sidecar with settings that cannot work; <see cref="InjectionResult.Messages"/> lists them. The webhook denies such a pod.</summary>
    Refused,
}

/// <summary>
/// The injector's answer: the outcome, the pod as it is after injection (the input itself when
/// nothing was injected), the JSON Patch that turns the input into it (paths from the pod's root:
/// <c>/metadata/…</c>, <c>/spec/…</c>), and messages — warnings when injected, reasons otherwise.
/// </summary>
internal sealed record InjectionResult(
    InjectionOutcome Outcome,
    V1PodTemplateSpec Pod,
    IReadOnlyList<JsonPatchOperation> Patch,
    IReadOnlyList<string> Messages)
{
    public static InjectionResult Unchanged(InjectionOutcome outcome, V1PodTemplateSpec pod, params string[] messages) => new(outcome, pod, [], messages);
}
