namespace Mesh.Policy;

/// <summary>Facts about a policy that the coordinator checks admin input against.</summary>
public static class PolicyTags
{
    /// <summary>The tags the policy defines in <c>tagOwners</c>: the only tags a node or a key may carry.</summary>
    public static IReadOnlySet<string> Defined(string policyText) =>
        PolicyParser.Parse(policyText).TagOwners.Keys.ToHashSet(StringComparer.Ordinal);
}
