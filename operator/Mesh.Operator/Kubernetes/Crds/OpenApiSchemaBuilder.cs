using System.Collections;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s.Models;

namespace Mesh.Operator.Kubernetes.Crds;

/// <summary>
/// Builds the OpenAPI v3 schema of a CRD version from a C# type by reflection, in the structural form the API server
/// requires (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
/// every node has a type (or is int-or-string), objects list their properties or take additionalProperties, no
/// <c>$ref</c>, and <c>x-kubernetes-preserve-unknown-fields</c> only on <see cref="JsonObject"/> (truly free-form)
/// values. Field names are the <see cref="JsonPropertyNameAttribute"/>s, so the schema and the JSON the operator
/// reads and writes cannot drift apart; properties are sorted, as controller-gen sorts them.
/// It is not a general generator: a property of a type it does not know is an error, not a guess.
/// </summary>
internal static class OpenApiSchemaBuilder
{
    private const int MaxDepth = 16;

    /// <summary>The schema of a kind's root type (apiVersion, kind, metadata, spec, status).</summary>
    public static V1JSONSchemaProps ForKind(Type kind)
    {
        var schema = ForObject(kind, 0);
        schema.Description = kind.GetCustomAttribute<DescriptionAttribute>()?.Description
            ?? throw new InvalidOperationException($"{kind.Name} has no [Description]");
        Describe(schema, "apiVersion", "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources");
        Describe(schema, "kind", "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds");
        return schema;
    }

    private static void Describe(V1JSONSchemaProps schema, string property, string description)
    {
        if (schema.Properties?.TryGetValue(property, out var p) == true)
        {
            p.Description ??= description;
        }
    }

    private static V1JSONSchemaProps ForObject(Type type, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new InvalidOperationException($"{type.Name}: types nest deeper than {MaxDepth}; recursive types have no structural schema");
        }

        var properties = new SortedDictionary<string, V1JSONSchemaProps>(StringComparer.Ordinal);
        var required = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is not null)
            {
                continue;
            }

            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name
                ?? throw new InvalidOperationException($"{type.Name}.{property.Name} has no [JsonPropertyName]");
            properties.Add(name, ForProperty(type, property, depth));
            if (property.GetCustomAttribute<RequiredAttribute>() is not null)
            {
                required.Add(name);
            }
        }

        var schema = new V1JSONSchemaProps
        {
            Type = "object",
            Properties = new Dictionary<string, V1JSONSchemaProps>(properties, StringComparer.Ordinal),
            Required = required.Count > 0 ? [.. required] : null,
        };
        AddRules(schema, type.GetCustomAttributes<CelRuleAttribute>());
        return schema;
    }

    private static V1JSONSchemaProps ForProperty(Type owner, PropertyInfo property, int depth)
    {
        var where = $"{owner.Name}.{property.Name}";
        var schema = ForType(property.PropertyType, depth + 1, where);
        schema.Description = property.GetCustomAttribute<DescriptionAttribute>()?.Description ?? schema.Description;

        if (property.GetCustomAttribute<DefaultValueAttribute>() is { } defaultValue)
        {
            schema.DefaultProperty = defaultValue.Value is Enum e ? e.ToString() : defaultValue.Value;
        }

        if (property.GetCustomAttribute<DefaultEmptyObjectAttribute>() is not null)
        {
            if (schema.Type != "object")
            {
                throw new InvalidOperationException($"{where}: [DefaultEmptyObject] on a {schema.Type}");
            }

            schema.DefaultProperty = new Dictionary<string, object>();
        }

        if (property.GetCustomAttribute<RangeAttribute>() is { } range)
        {
            schema.Minimum = Convert.ToDouble(range.Minimum, CultureInfo.InvariantCulture);
            schema.Maximum = Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture);
        }

        var isArray = schema.Type == "array";
        if (property.GetCustomAttribute<MinLengthAttribute>() is { } min)
        {
            if (isArray)
            {
                schema.MinItems = min.Length;
            }
            else
            {
                schema.MinLength = min.Length;
            }
        }

        if (property.GetCustomAttribute<MaxLengthAttribute>() is { } max)
        {
            if (isArray)
            {
                schema.MaxItems = max.Length;
            }
            else
            {
                schema.MaxLength = max.Length;
            }
        }

        if (property.GetCustomAttribute<AllowedValuesAttribute>() is { } allowed)
        {
            StringLeaf(schema, where).EnumProperty = [.. allowed.Values.Select(static v => v!)];
        }

        if (property.GetCustomAttribute<RegularExpressionAttribute>() is { } regex)
        {
            StringLeaf(schema, where).Pattern = regex.Pattern;
        }

        if (property.GetCustomAttribute<StringShapeAttribute>() is { } shape)
        {
            var leaf = StringLeaf(schema, where);
            leaf.Pattern = shape.Pattern;
            leaf.Format = shape.Format ?? leaf.Format;
            leaf.MaxLength ??= shape.MaxLength;
        }

        if (property.GetCustomAttribute<ListMapAttribute>() is { } listMap)
        {
            var items = isArray ? (V1JSONSchemaProps)schema.Items : throw new InvalidOperationException($"{where}: [ListMap] on a {schema.Type}");
            var missing = listMap.Keys.Where(k => items.Required?.Contains(k) != true).ToArray();
            if (missing.Length > 0)
            {
                throw new InvalidOperationException($"{where}: list map keys must be required in the item type: {string.Join(", ", missing)}");
            }

            schema.XKubernetesListType = "map";
            schema.XKubernetesListMapKeys = listMap.Keys;
        }

        if (property.GetCustomAttribute<ListSetAttribute>() is not null)
        {
            if (!isArray || ((V1JSONSchemaProps)schema.Items).Type is "object" or "array")
            {
                throw new InvalidOperationException($"{where}: [ListSet] needs a list of scalars");
            }

            schema.XKubernetesListType = "set";
        }

        AddRules(schema, property.GetCustomAttributes<CelRuleAttribute>());
        return schema;
    }

    /// <summary>The string schema a shape applies to: the property itself, or the items or values it holds.</summary>
    private static V1JSONSchemaProps StringLeaf(V1JSONSchemaProps schema, string where)
    {
        var leaf = schema;
        while (leaf.Type is "array" or "object")
        {
            leaf = leaf.Type == "array" ? (V1JSONSchemaProps)leaf.Items
                : leaf.AdditionalProperties as V1JSONSchemaProps ?? throw new InvalidOperationException($"{where}: a string shape on an object");
        }

        return leaf.Type == "string" ? leaf : throw new InvalidOperationException($"{where}: a string shape on a {leaf.Type}");
    }

    private static void AddRules(V1JSONSchemaProps schema, IEnumerable<CelRuleAttribute> rules)
    {
        var list = rules.Select(static r => new V1ValidationRule { Rule = r.Rule, Message = r.Message }).ToList();
        if (list.Count > 0)
        {
            schema.XKubernetesValidations = list;
        }
    }

    private static V1JSONSchemaProps ForType(Type type, int depth, string where)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
        {
            return new() { Type = "string" };
        }

        if (type == typeof(bool))
        {
            return new() { Type = "boolean" };
        }

        if (type == typeof(int))
        {
            return new() { Type = "integer", Format = "int32" };
        }

        if (type == typeof(long))
        {
            return new() { Type = "integer", Format = "int64" };
        }

        if (type == typeof(double))
        {
            return new() { Type = "number", Format = "double" };
        }

        if (type == typeof(DateTime) || type == typeof(DateTimeOffset))
        {
            return new() { Type = "string", Format = "date-time" };
        }

        if (type.IsEnum)
        {
            if (type.GetCustomAttribute<JsonConverterAttribute>() is null)
            {
                throw new InvalidOperationException($"{where}: enum {type.Name} needs [JsonConverter(typeof(JsonStringEnumConverter<{type.Name}>))] to be written as its names");
            }

            return new() { Type = "string", EnumProperty = [.. Enum.GetNames(type)] };
        }

        if (type == typeof(V1ObjectMeta))
        {
            // As controller-gen: the API server validates metadata itself.
            return new() { Type = "object" };
        }

        if (type == typeof(V1Condition))
        {
            return KnownSchemas.Condition();
        }

        if (type == typeof(ResourceQuantity))
        {
            return KnownSchemas.Quantity();
        }

        if (type == typeof(JsonObject))
        {
            return new() { Type = "object", XKubernetesPreserveUnknownFields = true };
        }

        if (Generic(type, typeof(Dictionary<,>), typeof(IDictionary<,>), typeof(IReadOnlyDictionary<,>)) is { } map)
        {
            if (map[0] != typeof(string))
            {
                throw new InvalidOperationException($"{where}: map keys must be strings");
            }

            return new() { Type = "object", AdditionalProperties = ForType(map[1], depth + 1, where) };
        }

        if (type.IsArray)
        {
            return new() { Type = "array", Items = ForType(type.GetElementType()!, depth + 1, where) };
        }

        if (Generic(type, typeof(List<>), typeof(IList<>), typeof(IReadOnlyList<>), typeof(IEnumerable<>)) is { } list)
        {
            return new() { Type = "array", Items = ForType(list[0], depth + 1, where) };
        }

        // Objects are reflected only when they are the resources' own types: a framework or client type has no
        // descriptions and may carry fields nobody meant to expose.
        if (typeof(IEnumerable).IsAssignableFrom(type) || type.IsPrimitive || !type.IsClass
            || type.Namespace is null || type.Namespace.StartsWith("System", StringComparison.Ordinal)
            || type.Namespace.StartsWith("Microsoft", StringComparison.Ordinal) || type.Namespace.StartsWith("k8s", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{where}: no schema for {type.FullName}");
        }

        return ForObject(type, depth);
    }

    private static Type[]? Generic(Type type, params Type[] definitions) =>
        type.IsGenericType && definitions.Contains(type.GetGenericTypeDefinition()) ? type.GetGenericArguments() : null;
}

/// <summary>Schemas of the Kubernetes types the resources use, as the API server's own OpenAPI and controller-gen write them.</summary>
internal static class KnownSchemas
{
    /// <summary>metav1.Condition (k8s.io/apimachinery/pkg/apis/meta/v1, types.go), with its validation markers.</summary>
    public static V1JSONSchemaProps Condition() => new()
    {
        Type = "object",
        Description = "Condition contains details for one aspect of the current state of this API Resource.",
        Required = ["lastTransitionTime", "message", "reason", "status", "type"],
        Properties = new Dictionary<string, V1JSONSchemaProps>(StringComparer.Ordinal)
        {
            ["lastTransitionTime"] = new()
            {
                Type = "string",
                Format = "date-time",
                Description = "lastTransitionTime is the last time the condition transitioned from one status to another. This should be when the underlying condition changed. If that is not known, then using the time when the API field changed is acceptable.",
            },
            ["message"] = new()
            {
                Type = "string",
                MaxLength = 32768,
                Description = "message is a human readable message indicating details about the transition. This may be an empty string.",
            },
            ["observedGeneration"] = new()
            {
                Type = "integer",
                Format = "int64",
                Minimum = 0,
                Description = "observedGeneration represents the .metadata.generation that the condition was set based upon. For instance, if .metadata.generation is currently 12, but the .status.conditions[x].observedGeneration is 9, the condition is out of date with respect to the current state of the instance.",
            },
            ["reason"] = new()
            {
                Type = "string",
                MinLength = 1,
                MaxLength = 1024,
                Pattern = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                Description = "reason contains a programmatic identifier indicating the reason for the condition's last transition. Producers of specific condition types may define expected values and meanings for this field, and whether the values are considered a guaranteed API. The value should be a CamelCase string. This field may not be empty.",
            },
            ["status"] = new()
            {
                Type = "string",
                EnumProperty = ["True", "False", "Unknown"],
                Description = "status of the condition, one of True, False, Unknown.",
            },
            ["type"] = new()
            {
                Type = "string",
                MaxLength = 316,
                Pattern = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                Description = "type of condition in CamelCase or in foo.example.com/CamelCase.",
            },
        },
    };

    /// <summary>resource.Quantity: an integer or a string such as 1Gi (x-kubernetes-int-or-string).</summary>
    public static V1JSONSchemaProps Quantity() => new()
    {
        AnyOf = [new() { Type = "integer" }, new() { Type = "string" }],
        Pattern = SchemaPatterns.Quantity,
        XKubernetesIntOrString = true,
    };
}
