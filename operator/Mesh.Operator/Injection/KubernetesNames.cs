using System.Text.RegularExpressions;

namespace Mesh.Operator.Injection;

/// <summary>Kubernetes' name rules (apimachinery <c>validation.IsDNS1123Label</c>, <c>IsDNS1123Subdomain</c>, <c>IsConfigMapKey</c>).</summary>
internal static partial class KubernetesNames
{
    public static bool IsDnsLabel(string value) => value.Length is > 0 and <= 63 && DnsLabel().IsMatch(value);

    public static bool IsDnsSubdomain(string value) => value.Length is > 0 and <= 253 && DnsSubdomain().IsMatch(value);

    public static bool IsConfigMapKey(string value) => value.Length is > 0 and <= 253 && value is not ("." or "..") && !value.StartsWith("..", StringComparison.Ordinal) && ConfigMapKey().IsMatch(value);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^[-._a-zA-Z0-9]+$")]
    private static partial Regex ConfigMapKey();
}
