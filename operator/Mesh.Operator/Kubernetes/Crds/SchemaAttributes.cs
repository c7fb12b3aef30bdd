namespace Mesh.Operator.Kubernetes.Crds;

// Attributes the CRD generator (OpenApiSchemaBuilder, CrdBuilder) reads from the resource types. Standard ones are
// used where they exist: [Description] (System.ComponentModel) for descriptions, [DefaultValue] for scalar
// defaults, [Required], [Range], [MinLength]/[MaxLength], [AllowedValues] and [RegularExpression]
// (System.ComponentModel.DataAnnotations). The ones below say what those cannot.

/// <summary>The scope, names and categories of a kind; group, version, kind and plural come from [KubernetesEntity].</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class CustomResourceAttribute(CustomResourceScope scope, string singular) : Attribute
{
    public CustomResourceScope Scope { get; } = scope;

    public string Singular { get; } = singular;

    public string[] ShortNames { get; init; } = [];

    public string[] Categories { get; init; } = [MeshApi.Category];
}

internal enum CustomResourceScope
{
    Namespaced,
    Cluster,
}

/// <summary>One column of <c>kubectl get</c>; priority 1 shows only with <c>-o wide</c>.</summary>
/// <param name="type">An OpenAPI type name: string, integer, number, boolean, or date (shown as an age).</param>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
internal sealed class PrinterColumnAttribute(string name, string type, string jsonPath) : Attribute
{
    public string Name { get; } = name;

    public string Type { get; } = type;

    public string JsonPath { get; } = jsonPath;

    public int Priority { get; init; }

    public string? Description { get; init; }
}

/// <summary>A CEL rule (<c>x-kubernetes-validations</c>) the API server checks on create and update.</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property, AllowMultiple = true)]
internal sealed class CelRuleAttribute(string rule, string message) : Attribute
{
    public string Rule { get; } = rule;

    public string Message { get; } = message;
}

/// <summary>
/// A list of objects merged by key (<c>x-kubernetes-list-type: map</c>): server-side apply and strategic merges
/// treat items with the same keys as one, and duplicates are refused. The keys must be required in the item type.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class ListMapAttribute(params string[] keys) : Attribute
{
    public string[] Keys { get; } = keys;
}

/// <summary>A list of scalars without duplicates (<c>x-kubernetes-list-type: set</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class ListSetAttribute : Attribute;

/// <summary>
/// <c>default: {}</c> on an object field, so that the defaults of its own fields apply when it is left out
/// (the API server defaults a nested field only when its parent is present).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class DefaultEmptyObjectAttribute : Attribute;

/// <summary>
/// The shape of a string: a pattern and, where Kubernetes knows one, a format. Applied to the property's string, or
/// to every item of a list or every value of a map of strings.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal abstract class StringShapeAttribute(string pattern, string? format = null, int? maxLength = null) : Attribute
{
    public string Pattern { get; } = pattern;

    public string? Format { get; } = format;

    public int? MaxLength { get; } = maxLength;
}

/// <summary>An IPv4 or IPv6 prefix such as <c>10.0.0.0/24</c> or <c>fd7a:115c:a1e0::/48</c>.</summary>
internal sealed class CidrAttribute() : StringShapeAttribute(SchemaPatterns.Cidr, "cidr", 43);

/// <summary>An IPv4 or IPv6 address, or a prefix (what a policy's <c>hosts</c> entry may be).</summary>
internal sealed class IpOrCidrAttribute() : StringShapeAttribute(SchemaPatterns.IpOrCidr, null, 43);

/// <summary>An IPv4 or IPv6 address.</summary>
internal sealed class IpAddressAttribute() : StringShapeAttribute(SchemaPatterns.IpAddress, null, 39);

/// <summary>A tag such as <c>tag:router</c>.</summary>
internal sealed class TagAttribute() : StringShapeAttribute(SchemaPatterns.Tag, null, 64);

/// <summary>A duration as the coordinator's config writes it: <c>90s</c>, <c>30m</c>, <c>24h</c>, <c>180d</c>, <c>1h30m</c>; <c>0</c>.</summary>
internal sealed class DurationAttribute() : StringShapeAttribute(SchemaPatterns.Duration, null, 32);

/// <summary>A DNS label (RFC 1123): lower-case letters, digits and '-', at most 63.</summary>
internal sealed class DnsLabelAttribute() : StringShapeAttribute(SchemaPatterns.DnsLabel, null, 63);

/// <summary>A DNS name (RFC 1123 subdomain), which is also the form of a Kubernetes object name.</summary>
internal sealed class DnsNameAttribute() : StringShapeAttribute(SchemaPatterns.DnsName, null, 253);

/// <summary>An http or https URL.</summary>
internal sealed class HttpUrlAttribute() : StringShapeAttribute(SchemaPatterns.HttpUrl, "uri", 2048);

/// <summary>
/// Regular expressions of the schemas: the subset that RE2 (the API server's) and .NET agree on: no lookaround,
/// no backreferences.
/// </summary>
internal static class SchemaPatterns
{
    private const string V4 = @"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

    // Coarse for IPv6 (hex groups and colons, at least one "::" or seven colons are not counted): the API server's
    // "cidr" format and the operator check it exactly; the pattern catches the usual slips.
    private const string V6 = @"[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}";

    private const string V4Bits = "(3[0-2]|[12]?[0-9])";
    private const string V6Bits = "(12[0-8]|1[01][0-9]|[1-9]?[0-9])";

    public const string Cidr = "^(" + V4 + "/" + V4Bits + "|" + V6 + "/" + V6Bits + ")$";

    public const string IpAddress = "^(" + V4 + "|" + V6 + ")$";

    public const string IpOrCidr = "^(" + V4 + "(/" + V4Bits + ")?|" + V6 + "(/" + V6Bits + ")?)$";

    public const string Tag = "^tag:[a-zA-Z][a-zA-Z0-9-]*$";

    public const string Duration = "^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h|d|w))+)$";

    public const string DnsLabel = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

    public const string DnsName = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

    public const string HttpUrl = "^https?://[^\\s/$.?#][^\\s]*$";

    /// <summary>resource.Quantity, as the API server and controller-gen write it.</summary>
    public const string Quantity = "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";
}
