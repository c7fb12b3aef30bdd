namespace Mesh.Operator.Kubernetes;

/// <summary>
/// The Kubernetes API of MeshOperator (DESIGN.md, "Kubernetes API"): group, version, the category every kind is
/// listed under (<c>kubectl get mesh</c>), the condition types every status carries, and the annotation prefix.
/// These names are the public contract; the CRDs in <c>crds/</c> are generated from the types in
/// <see cref="Resources"/>.
/// </summary>
internal static class MeshApi
{
    public const string Group = "mesh.meshoperator.io";
    public const string Version = "v1alpha1";
    public const string ApiVersion = Group + "/" + Version;

    /// <summary>The category of every kind: <c>kubectl get mesh</c> lists them all.</summary>
    public const string Category = "mesh";

    /// <summary>Prefix of every annotation and label the operator reads or writes.</summary>
    public const string AnnotationPrefix = Group + "/";
}

/// <summary>
/// Condition types (metav1.Condition <c>type</c>) of every status, in kstatus' terms so that
/// <c>kubectl wait --for=condition=Ready</c>, Argo CD health and Flux health read them.
/// </summary>
internal static class MeshConditions
{
    /// <summary>The resource is in the state its spec asks for.</summary>
    public const string Ready = "Ready";

    /// <summary>The operator is working towards the spec (kstatus' "abnormal-true" condition).</summary>
    public const string Reconciling = "Reconciling";

    /// <summary>The operator cannot make progress without a change (kstatus' "abnormal-true" condition).</summary>
    public const string Stalled = "Stalled";

    /// <summary>MeshAcl only: the policy parses, validates and its tests pass, merged with the network's other MeshAcls.</summary>
    public const string Valid = "Valid";
}
