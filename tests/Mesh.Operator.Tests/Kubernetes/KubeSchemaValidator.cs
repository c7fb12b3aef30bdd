using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using k8s;
using k8s.Models;

namespace Mesh.Operator.Tests.Kubernetes;

/// <summary>
/// Validates objects against a CRD's schema as the API server does with strict field validation (kubectl's default):
/// JsonSchema.Net evaluates the OpenAPI keywords; unknown fields are refused except under
/// <c>x-kubernetes-preserve-unknown-fields</c> (the API server would prune them, and strict validation refuses them);
/// and what JSON Schema cannot say is checked here: <c>x-kubernetes-list-type</c> map keys and set items are unique,
/// <c>format: cidr</c> parses as Go's net.ParseCIDR would (date-time and uri by JsonSchema.Net). CEL rules (<c>x-kubernetes-validations</c>) are not
/// evaluated: no CEL engine here.
/// </summary>
internal sealed class KubeSchemaValidator
{
    // Formats are checked: date-time and uri by JsonSchema.Net, cidr here; int32, int64 and double are advisory.
    private static readonly EvaluationOptions Options = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };

    private static readonly HashSet<string> CheckedFormats = new(StringComparer.Ordinal) { "date-time", "uri" };

    private readonly JsonObject _schema;
    private readonly JsonSchema _jsonSchema;

    private KubeSchemaValidator(JsonObject schema)
    {
        _schema = schema;
        _jsonSchema = JsonSchema.FromText(ToJsonSchema(schema).ToJsonString());
    }

    public JsonObject Schema => _schema;

    public static KubeSchemaValidator For(V1CustomResourceDefinition crd) => new(SchemaOf(crd));

    /// <summary>The version's openAPIV3Schema as JSON, exactly as the CRD carries it.</summary>
    public static JsonObject SchemaOf(V1CustomResourceDefinition crd) =>
        (JsonObject)JsonNode.Parse(KubernetesJson.Serialize(crd.Spec.Versions.Single().Schema.OpenAPIV3Schema))!;

    /// <summary>Every problem, "path: what"; empty when the object is valid.</summary>
    public List<string> Validate(JsonNode instance)
    {
        var errors = new List<string>();
        var result = _jsonSchema.Evaluate(JsonSerializer.SerializeToElement(instance), Options);
        if (!result.IsValid)
        {
            foreach (var detail in result.Details ?? [])
            {
                foreach (var (keyword, message) in detail.Errors ?? [])
                {
                    errors.Add($"{detail.InstanceLocation}: {keyword}: {message}");
                }
            }

            if (errors.Count == 0)
            {
                errors.Add("invalid (no detail)");
            }
        }

        CheckKubernetesKeywords(_schema, instance, "", errors);
        return errors;
    }

    /// <summary>The CRD schema as a JSON Schema that refuses unknown fields; x-kubernetes-* keywords are left to <see cref="CheckKubernetesKeywords"/>.</summary>
    public static JsonObject ToJsonSchema(JsonObject k8s)
    {
        var o = new JsonObject();
        foreach (var (key, value) in k8s)
        {
            switch (key)
            {
                case "properties":
                    o[key] = new JsonObject(((JsonObject)value!).Select(static p => KeyValuePair.Create(p.Key, (JsonNode?)ToJsonSchema((JsonObject)p.Value!))));
                    break;
                case "items" or "not":
                    o[key] = ToJsonSchema((JsonObject)value!);
                    break;
                case "additionalProperties":
                    o[key] = value is JsonObject ap ? ToJsonSchema(ap) : value!.DeepClone();
                    break;
                case "anyOf" or "allOf" or "oneOf":
                    o[key] = new JsonArray([.. ((JsonArray)value!).Select(static s => (JsonNode?)ToJsonSchema((JsonObject)s!))]);
                    break;
                case "nullable":
                    break;
                case "format":
                    if (CheckedFormats.Contains(value!.GetValue<string>()))
                    {
                        o[key] = value.DeepClone();
                    }

                    break;
                default:
                    if (!key.StartsWith("x-kubernetes-", StringComparison.Ordinal))
                    {
                        o[key] = value?.DeepClone();
                    }

                    break;
            }
        }

        var preserve = k8s["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
        if (k8s["type"]?.GetValue<string>() == "object" && !preserve && !k8s.ContainsKey("additionalProperties") && k8s.ContainsKey("properties"))
        {
            o["additionalProperties"] = false;
        }

        if (k8s["nullable"]?.GetValue<bool>() == true && k8s["type"] is JsonNode type)
        {
            o["type"] = new JsonArray(type.DeepClone(), "null");
        }

        return o;
    }

    private static void CheckKubernetesKeywords(JsonObject schema, JsonNode? instance, string path, List<string> errors)
    {
        switch (instance)
        {
            case JsonObject obj:
                var properties = schema["properties"] as JsonObject;
                var additional = schema["additionalProperties"] as JsonObject;
                foreach (var (name, value) in obj)
                {
                    if (properties?[name] is JsonObject sub)
                    {
                        CheckKubernetesKeywords(sub, value, $"{path}/{name}", errors);
                    }
                    else if (additional is not null)
                    {
                        CheckKubernetesKeywords(additional, value, $"{path}/{name}", errors);
                    }
                }

                break;
            case JsonArray array:
                CheckList(schema, array, path, errors);
                if (schema["items"] is JsonObject items)
                {
                    for (var i = 0; i < array.Count; i++)
                    {
                        CheckKubernetesKeywords(items, array[i], $"{path}/{i}", errors);
                    }
                }

                break;
            case JsonValue value when schema["format"]?.GetValue<string>() == "cidr" && value.TryGetValue<string>(out var text) && !IsGoCidr(text):
                errors.Add($"{path}: format: \"{text}\" is not a CIDR");
                break;
        }
    }

    private static void CheckList(JsonObject schema, JsonArray array, string path, List<string> errors)
    {
        var listType = schema["x-kubernetes-list-type"]?.GetValue<string>();
        if (listType is not ("map" or "set"))
        {
            return;
        }

        var keys = listType == "map" ? schema["x-kubernetes-list-map-keys"]!.AsArray().Select(static k => k!.GetValue<string>()).ToArray() : null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < array.Count; i++)
        {
            var identity = keys is null
                ? array[i]?.ToJsonString() ?? "null"
                : string.Join("\u0000", keys.Select(k => array[i]?[k]?.ToJsonString() ?? "null"));
            if (!seen.Add(identity))
            {
                errors.Add($"{path}/{i}: x-kubernetes-list-type {listType}: duplicate {(keys is null ? "item" : "key " + string.Join(",", keys))} {identity.Replace('\u0000', ',')}");
            }
        }
    }

    /// <summary>Go's net.ParseCIDR: an address, '/', and a prefix length within its family (host bits may be set).</summary>
    private static bool IsGoCidr(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash > 0
            && IPAddress.TryParse(text.AsSpan(0, slash), out var address)
            && !text.AsSpan(0, slash).Contains('%')
            && (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || text.AsSpan(0, slash).Count('.') == 3)
            && int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bits)
            && bits <= (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)
            && text[(slash + 1)..] == bits.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Fills in schema defaults as the API server does on create: a field's default applies when the field is absent and its parent present.</summary>
    public static void ApplyDefaults(JsonObject schema, JsonNode? instance)
    {
        switch (instance)
        {
            case JsonObject obj:
                if (schema["properties"] is JsonObject properties)
                {
                    foreach (var (name, sub) in properties)
                    {
                        if (!obj.ContainsKey(name) && sub!["default"] is JsonNode d)
                        {
                            obj[name] = d.DeepClone();
                        }

                        if (obj[name] is JsonNode child)
                        {
                            ApplyDefaults((JsonObject)sub!, child);
                        }
                    }
                }
                else if (schema["additionalProperties"] is JsonObject additional)
                {
                    foreach (var (_, value) in obj.ToList())
                    {
                        ApplyDefaults(additional, value);
                    }
                }

                break;
            case JsonArray array when schema["items"] is JsonObject items:
                foreach (var item in array)
                {
                    ApplyDefaults(items, item);
                }

                break;
        }
    }
}
