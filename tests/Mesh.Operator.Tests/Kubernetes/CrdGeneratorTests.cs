using System.ComponentModel;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using k8s.Models;
using Mesh.Control.Configuration;
using Mesh.Operator.Kubernetes;
using Mesh.Operator.Kubernetes.Crds;
using Mesh.Operator.Kubernetes.Resources;

namespace Mesh.Operator.Tests.Kubernetes;

/// <summary>The generated CRDs: structural schemas, names, printer columns, conditions, defaults that match the coordinator's.</summary>
public sealed class CrdGeneratorTests
{
    public static TheoryData<string> Kinds => [.. CrdBuilder.Kinds.Select(static k => k.Name)];

    private static V1CustomResourceDefinition Crd(string kind) => CrdBuilder.Build(CrdBuilder.Kinds.Single(k => k.Name == kind));

    private static JsonObject Schema(string kind) => KubeSchemaValidator.SchemaOf(Crd(kind));

    /// <summary>Every schema node with its path, depth first.</summary>
    private static IEnumerable<(string Path, JsonObject Node)> Walk(JsonObject node, string path = "")
    {
        yield return (path, node);
        foreach (var (name, sub) in node["properties"] as JsonObject ?? [])
        {
            foreach (var n in Walk((JsonObject)sub!, $"{path}.{name}"))
            {
                yield return n;
            }
        }

        foreach (var (key, suffix) in new[] { ("items", "[]"), ("additionalProperties", "{}") })
        {
            if (node[key] is JsonObject child)
            {
                foreach (var n in Walk(child, path + suffix))
                {
                    yield return n;
                }
            }
        }

        foreach (var (i, sub) in (node["anyOf"] as JsonArray ?? []).Index())
        {
            foreach (var n in Walk((JsonObject)sub!, $"{path}(anyOf {i})"))
            {
                yield return n;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Schema_IsStructural(string kind)
    {
        var problems = new List<string>();
        foreach (var (path, node) in Walk(Schema(kind)))
        {
            var isAnyOfBranch = path.EndsWith(')');
            if (node.ContainsKey("$ref"))
            {
                problems.Add($"{path}: $ref");
            }

            if (node["x-kubernetes-int-or-string"]?.GetValue<bool>() == true)
            {
                // The one node allowed to have no type: anyOf integer/string, nothing else inside.
                if (node.ContainsKey("type") || node["anyOf"] is not JsonArray { Count: 2 })
                {
                    problems.Add($"{path}: int-or-string must be anyOf [integer, string] without type");
                }

                continue;
            }

            var type = node["type"]?.GetValue<string>();
            if (type is null)
            {
                problems.Add($"{path}: no type");
                continue;
            }

            if (isAnyOfBranch && node.Count != 1)
            {
                problems.Add($"{path}: anyOf branches may carry the type only");
            }

            if (type == "object")
            {
                var preserve = node["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
                var hasProperties = node.ContainsKey("properties");
                var hasAdditional = node.ContainsKey("additionalProperties");
                if (hasProperties && hasAdditional)
                {
                    problems.Add($"{path}: properties and additionalProperties together");
                }

                if (!hasProperties && !hasAdditional && !preserve && path != ".metadata")
                {
                    problems.Add($"{path}: an object with no properties, no additionalProperties and no x-kubernetes-preserve-unknown-fields");
                }

                foreach (var required in node["required"] as JsonArray ?? [])
                {
                    if (node["properties"]?[required!.GetValue<string>()] is null)
                    {
                        problems.Add($"{path}: required {required} is not a property");
                    }
                }
            }

            if (type == "array" && node["items"] is not JsonObject)
            {
                problems.Add($"{path}: an array without items");
            }

            if (node.ContainsKey("uniqueItems") || node.ContainsKey("additionalItems") || node.ContainsKey("patternProperties") || node.ContainsKey("definitions") || node.ContainsKey("id"))
            {
                problems.Add($"{path}: a keyword CRD schemas forbid");
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Schema_PreservesUnknownFields_OnlyUnderGrantApp(string kind)
    {
        var preserved = Walk(Schema(kind)).Where(static n => n.Node["x-kubernetes-preserve-unknown-fields"] is not null).Select(static n => n.Path).ToList();
        Assert.Equal(kind == nameof(MeshAcl) ? [".spec.grants[].app{}[]"] : [], preserved);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Schema_EveryFieldHasADescription(string kind)
    {
        var missing = Walk(Schema(kind))
            .Where(static n => n.Path.Length > 0 && !n.Path.EndsWith("[]", StringComparison.Ordinal) && !n.Path.EndsWith("{}", StringComparison.Ordinal)
                && !n.Path.EndsWith(')') && n.Path != ".metadata" && !n.Node.ContainsKey("description"))
            .Select(static n => n.Path)
            .ToList();
        Assert.True(missing.Count == 0, "no description (kubectl explain shows it): " + string.Join(", ", missing));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Conditions_AreAListMapKeyedByType_OfMetaV1Condition(string kind)
    {
        var conditions = Schema(kind)["properties"]!["status"]!["properties"]!["conditions"]!;
        Assert.Equal("array", conditions["type"]!.GetValue<string>());
        Assert.Equal("map", conditions["x-kubernetes-list-type"]!.GetValue<string>());
        Assert.Equal(["type"], conditions["x-kubernetes-list-map-keys"]!.AsArray().Select(static k => k!.GetValue<string>()));
        var item = conditions["items"]!;
        Assert.Equal(["lastTransitionTime", "message", "reason", "status", "type"], item["required"]!.AsArray().Select(static k => k!.GetValue<string>()));
        Assert.Equal(["True", "False", "Unknown"], item["properties"]!["status"]!["enum"]!.AsArray().Select(static k => k!.GetValue<string>()));
        Assert.Equal("date-time", item["properties"]!["lastTransitionTime"]!["format"]!.GetValue<string>());
        Assert.NotNull(Schema(kind)["properties"]!["status"]!["properties"]!["observedGeneration"]);
    }

    [Theory]
    [InlineData(nameof(MeshNetwork), "meshnetworks", "meshnetwork", "mnet", "Cluster")]
    [InlineData(nameof(MeshNode), "meshnodes", "meshnode", "mnode", "Namespaced")]
    [InlineData(nameof(MeshAcl), "meshacls", "meshacl", "macl", "Cluster")]
    public void Names_AreDesignsNames(string kind, string plural, string singular, string shortName, string scope)
    {
        var crd = Crd(kind);
        Assert.Equal($"{plural}.mesh.meshoperator.io", crd.Metadata.Name);
        Assert.Equal("mesh.meshoperator.io", crd.Spec.Group);
        Assert.Equal(scope, crd.Spec.Scope);
        Assert.Equal(kind, crd.Spec.Names.Kind);
        Assert.Equal(kind + "List", crd.Spec.Names.ListKind);
        Assert.Equal(plural, crd.Spec.Names.Plural);
        Assert.Equal(singular, crd.Spec.Names.Singular);
        Assert.Equal([shortName], crd.Spec.Names.ShortNames);
        Assert.Equal(["mesh"], crd.Spec.Names.Categories);
        var version = Assert.Single(crd.Spec.Versions);
        Assert.Equal("v1alpha1", version.Name);
        Assert.True(version.Served);
        Assert.True(version.Storage);
        Assert.NotNull(version.Subresources.Status);
        Assert.Null(version.Subresources.Scale);
    }

    [Theory]
    [InlineData(nameof(MeshNode), "Hostname,IPv4,Online,Ready,Age", "IPv6,Path,Network,Origin,Last Seen")]
    [InlineData(nameof(MeshNetwork), "Coordinator,URL,Nodes,Online,Ready,Age", "IPv4,Domain,Reason")]
    [InlineData(nameof(MeshAcl), "Network,Valid,Ready,Tests,Failed,Age", "Reason")]
    public void PrinterColumns_DefaultAndWide(string kind, string normal, string wideOnly)
    {
        var columns = Crd(kind).Spec.Versions[0].AdditionalPrinterColumns;
        Assert.Equal(normal, string.Join(',', columns.Where(static c => c.Priority is null or 0).Select(static c => c.Name)));
        Assert.Equal(wideOnly, string.Join(',', columns.Where(static c => c.Priority > 0).Select(static c => c.Name)));
        var schema = Schema(kind);
        foreach (var column in columns)
        {
            Assert.Contains(column.Type, new[] { "string", "integer", "number", "boolean", "date" });
            if (column.JsonPath.StartsWith(".metadata.", StringComparison.Ordinal))
            {
                continue;
            }

            // Every column points at a field the schema has, of the column's type.
            var field = ResolveJsonPath(schema, column.JsonPath);
            Assert.True(field is not null, $"{kind} column {column.Name}: {column.JsonPath} is not in the schema");
            var expected = column.Type switch { "date" => "string", var t => t };
            Assert.Equal(expected, field["type"]!.GetValue<string>());
        }
    }

    private static JsonObject? ResolveJsonPath(JsonObject schema, string path)
    {
        // Filters such as [?(@.type=="Ready")] select list items: the field is in the items' schema.
        JsonObject? node = schema;
        foreach (var part in Regex.Replace(path, @"\[\?\([^)]*\)\]", "[*]").TrimStart('.').Split('.'))
        {
            var list = part.EndsWith("[*]", StringComparison.Ordinal);
            node = node?["properties"]?[list ? part[..^3] : part] as JsonObject;
            if (list)
            {
                node = node?["items"] as JsonObject;
            }
        }

        return node;
    }

    [Fact]
    public void Enums_AreClosed_UnknownValuesRefused()
    {
        var coordinator = Schema(nameof(MeshNetwork))["properties"]!["spec"]!["properties"]!["coordinator"]!;
        Assert.Equal(["Managed", "External"], coordinator["properties"]!["mode"]!["enum"]!.AsArray().Select(static v => v!.GetValue<string>()));
        Assert.Equal(["mode"], coordinator["required"]!.AsArray().Select(static v => v!.GetValue<string>()));
        var origin = Schema(nameof(MeshNode))["properties"]!["spec"]!["properties"]!["origin"]!;
        Assert.Equal(["User", "Pod", "Service"], origin["enum"]!.AsArray().Select(static v => v!.GetValue<string>()));
        Assert.Equal("User", origin["default"]!.GetValue<string>());
    }

    [Fact]
    public void CelRules_CoordinatorModeAndImmutableNetwork()
    {
        static string[] Rules(JsonNode? node) => [.. (node?["x-kubernetes-validations"] as JsonArray ?? []).Select(static r => r!["rule"]!.GetValue<string>())];

        var network = Schema(nameof(MeshNetwork))["properties"]!["spec"]!["properties"]!["coordinator"];
        Assert.Contains("self.mode == 'External' ? has(self.external) : !has(self.external)", Rules(network));
        Assert.Contains("self.mode == 'Managed' || !has(self.managed)", Rules(network));
        Assert.Equal(["self == oldSelf"], Rules(Schema(nameof(MeshNode))["properties"]!["spec"]!["properties"]!["network"]));
        Assert.Equal(["self == oldSelf"], Rules(Schema(nameof(MeshAcl))["properties"]!["spec"]!["properties"]!["network"]));
        Assert.Equal(["!has(self.origin) || self.origin == 'User' || !has(self.replicas) || self.replicas == 1"], Rules(Schema(nameof(MeshNode))["properties"]!["spec"]));

        // Every rule says what is wrong, and none iterates a collection (whose estimated cost the API server may refuse).
        foreach (var kind in CrdBuilder.Kinds)
        {
            foreach (var (path, node) in Walk(Schema(kind.Name)))
            {
                foreach (var rule in node["x-kubernetes-validations"] as JsonArray ?? [])
                {
                    Assert.False(string.IsNullOrWhiteSpace(rule!["message"]?.GetValue<string>()), $"{kind.Name}{path}: a rule without a message");
                    Assert.DoesNotMatch(@"\.(all|exists|exists_one|map|filter)\(", rule["rule"]!.GetValue<string>());
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Patterns_CompileAndUseOnlyWhatRe2AndDotNetShare(string kind)
    {
        foreach (var (path, node) in Walk(Schema(kind)))
        {
            if (node["pattern"]?.GetValue<string>() is not { } pattern)
            {
                continue;
            }

            _ = new Regex(pattern);
            Assert.False(Regex.IsMatch(pattern, @"\(\?[=!<]|\\[1-9]|\(\?<?[A-Za-z]"), $"{path}: {pattern} uses lookaround, backreferences or named groups, which RE2 (the API server's engine) does not have");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Defaults_ValidateAgainstTheirOwnSchema(string kind)
    {
        // The API server refuses a CRD whose defaults do not validate (after pruning) against their own field.
        foreach (var (path, node) in Walk(Schema(kind)))
        {
            if (node["default"] is not JsonNode value)
            {
                continue;
            }

            var field = (JsonObject)node.DeepClone();
            field.Remove("default");
            var schema = Json.Schema.JsonSchema.FromText(KubeSchemaValidator.ToJsonSchema(field).ToJsonString());
            var result = schema.Evaluate(System.Text.Json.JsonSerializer.SerializeToElement(value));
            Assert.True(result.IsValid, $"{path}: default {value.ToJsonString()} does not validate");
        }
    }

    [Fact]
    public void Defaults_OfAManagedNetwork_AreTheCoordinatorsDefaults()
    {
        var schema = Schema(nameof(MeshNetwork));
        var network = (JsonObject)JsonNode.Parse("""{"apiVersion": "mesh.meshoperator.io/v1alpha1", "kind": "MeshNetwork", "metadata": {"name": "m"}, "spec": {"coordinator": {"mode": "Managed", "managed": {}}}}""")!;
        KubeSchemaValidator.ApplyDefaults(schema, network);
        var spec = network["spec"]!;
        var config = new CoordinatorConfig();
        Assert.Equal(config.Prefixes.V4, spec["prefixes"]!["v4"]!.GetValue<string>());
        Assert.Equal(config.Prefixes.V6, spec["prefixes"]!["v6"]!.GetValue<string>());
        Assert.Equal(config.Dns.MagicDns, spec["dns"]!["magicDNS"]!.GetValue<bool>());
        Assert.Equal(config.Dns.BaseDomain, spec["dns"]!["baseDomain"]!.GetValue<string>());
        Assert.Equal(config.Derp.Server.Enabled, spec["relay"]!["enabled"]!.GetValue<bool>());
        Assert.Equal(config.Derp.Server.RegionId, spec["relay"]!["regionID"]!.GetValue<int>());
        Assert.Equal(config.Derp.Server.RegionCode, spec["relay"]!["regionCode"]!.GetValue<string>());
        Assert.EndsWith(":" + spec["relay"]!["stunPort"]!.GetValue<int>(), config.Derp.Server.StunListenAddr, StringComparison.Ordinal);
        Assert.Equal(config.NodeKeyExpiry, spec["nodeKeyExpiry"]!.GetValue<string>());
        Assert.Equal(1, spec["coordinator"]!["managed"]!["replicas"]!.GetValue<int>());
        Assert.Equal("1Gi", spec["coordinator"]!["managed"]!["storage"]!["size"]!.GetValue<string>());
        Assert.Equal("ClusterIP", spec["coordinator"]!["managed"]!["service"]!["type"]!.GetValue<string>());
        Assert.Empty(KubeSchemaValidator.For(Crd(nameof(MeshNetwork))).Validate(network));

        // And the defaulted object reads into the C# type with those values.
        var typed = k8s.KubernetesJson.Deserialize<MeshNetwork>(network.ToJsonString());
        Assert.Equal(CoordinatorMode.Managed, typed.Spec.Coordinator.Mode);
        Assert.Equal("1Gi", typed.Spec.Coordinator.Managed!.Storage!.Size!.ToString());
        Assert.True(Durations.Parse(typed.Spec.NodeKeyExpiry) > TimeSpan.Zero);
    }

    [Fact]
    public void Generator_TypeItDoesNotKnow_Throws()
    {
        var e = Assert.Throws<InvalidOperationException>(() => OpenApiSchemaBuilder.ForKind(typeof(KindWithAUri)));
        Assert.Contains("KindWithAUri.Where", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generator_ListMapKeyNotRequired_Throws()
    {
        var e = Assert.Throws<InvalidOperationException>(() => OpenApiSchemaBuilder.ForKind(typeof(KindWithLooseListMap)));
        Assert.Contains("list map keys must be required", e.Message, StringComparison.Ordinal);
    }

    [Description("test")]
    private sealed class KindWithAUri
    {
        [JsonPropertyName("where")]
        public Uri? Where { get; set; }
    }

    [Description("test")]
    private sealed class KindWithLooseListMap
    {
        [JsonPropertyName("items")]
        [ListMap("name")]
        public List<LooseItem>? Items { get; set; }
    }

    private sealed class LooseItem
    {
        [JsonPropertyName("name")]
        public string? Name { get; set; }
    }

    [Fact]
    public void ApiConstants_AreDesignsNames()
    {
        Assert.Equal("mesh.meshoperator.io/v1alpha1", MeshApi.ApiVersion);
        Assert.Equal("mesh.meshoperator.io/v1alpha1", new MeshNetwork().ApiVersion);
        Assert.Equal("MeshAcl", new MeshAcl().Kind);
    }
}
