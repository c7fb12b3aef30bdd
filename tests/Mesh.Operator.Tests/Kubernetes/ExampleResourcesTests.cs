using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Mesh.Operator.Kubernetes.Crds;
using Mesh.Operator.Kubernetes.Resources;

namespace Mesh.Operator.Tests.Kubernetes;

/// <summary>
/// The examples in examples/kubernetes against the generated schemas (as the API server would validate them), read
/// into the C# types, and the mistakes the schemas must refuse.
/// </summary>
public sealed class ExampleResourcesTests
{
    private static readonly Dictionary<string, KubeSchemaValidator> Validators =
        CrdBuilder.BuildAll().ToDictionary(static c => c.Spec.Names.Kind, KubeSchemaValidator.For);

    public static TheoryData<string> ExampleFiles =>
        [.. Directory.GetFiles(RepoPaths.KubernetesExamples, "*.yaml").Select(static f => Path.GetFileName(f)).Order(StringComparer.Ordinal)];

    private static List<JsonObject> MeshDocuments(string file) =>
        [.. YamlJson.Documents(File.ReadAllText(Path.Combine(RepoPaths.KubernetesExamples, file)))
            .OfType<JsonObject>()
            .Where(static d => d["apiVersion"]?.GetValue<string>() == "mesh.meshoperator.io/v1alpha1")];

    private static JsonObject Example(string file) => Assert.Single(MeshDocuments(file));

    private static List<string> Validate(JsonObject resource) => Validators[resource["kind"]!.GetValue<string>()].Validate(resource);

    [Fact]
    public void Examples_CoverEveryKindAndMode()
    {
        var all = ExampleFiles.SelectMany(static f => MeshDocuments(f)).ToList();
        Assert.Equal(["MeshAcl", "MeshNetwork", "MeshNode"], all.Select(static d => d["kind"]!.GetValue<string>()).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(["External", "Managed"], all.Select(static d => d["spec"]?["coordinator"]?["mode"]?.GetValue<string>()).OfType<string>().Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Example_ValidatesAgainstTheGeneratedSchema(string file)
    {
        var documents = MeshDocuments(file);
        Assert.NotEmpty(documents);
        foreach (var document in documents)
        {
            var errors = Validate(document);
            Assert.True(errors.Count == 0, $"{file}: {document["kind"]} {document["metadata"]?["name"]}:\n{string.Join('\n', errors)}");
        }
    }

    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Example_ReadsIntoTheCSharpType_AndWritesBackTheSameFields(string file)
    {
        foreach (var document in MeshDocuments(file))
        {
            var json = document.ToJsonString();
            object typed = document["kind"]!.GetValue<string>() switch
            {
                MeshNetwork.KubeKind => KubernetesJson.Deserialize<MeshNetwork>(json),
                MeshNode.KubeKind => KubernetesJson.Deserialize<MeshNode>(json),
                MeshAcl.KubeKind => KubernetesJson.Deserialize<MeshAcl>(json),
                var k => throw new InvalidOperationException(k),
            };
            var back = JsonNode.Parse(KubernetesJson.Serialize(typed))!;
            Assert.True(JsonNode.DeepEquals(Normalize(document), Normalize(back)), $"{file}:\nread:  {document.ToJsonString()}\nwrote: {back.ToJsonString()}");
        }
    }

    // Both sides as parsed JSON text, so a number read from YAML and one written by the serializer compare alike.
    private static JsonNode Normalize(JsonNode node) => JsonNode.Parse(node.ToJsonString())!;

    [Fact]
    public void ManagedNetwork_Example_ReadsTheFields()
    {
        var network = KubernetesJson.Deserialize<MeshNetwork>(Example("meshnetwork-managed.yaml").ToJsonString());
        Assert.Equal(CoordinatorMode.Managed, network.Spec.Coordinator.Mode);
        Assert.Equal(CoordinatorServiceType.LoadBalancer, network.Spec.Coordinator.Managed!.Service!.Type);
        Assert.Equal(new ResourceQuantity("2Gi"), network.Spec.Coordinator.Managed.Storage!.Size);
        Assert.Equal("svc.cluster.local", network.Spec.Dns!.SplitDns![0].Domain);
        Assert.Equal(900, network.Spec.Relay!.RegionId);
    }

    [Fact]
    public void SubnetRouter_Example_ReadsTheFields()
    {
        var node = KubernetesJson.Deserialize<MeshNode>(Example("meshnode-subnet-router.yaml").ToJsonString());
        Assert.Equal("corp", node.Spec.Network);
        Assert.Equal(["10.20.0.0/16"], node.Spec.AdvertiseRoutes!);
        Assert.Equal(["tag:router"], node.Spec.Tags!);
        Assert.Equal(2, node.Spec.Replicas);
        Assert.Null(node.Spec.Origin);
    }

    /// <summary>Applies <paramref name="change"/> to a copy of an example and returns the schema's errors.</summary>
    private static List<string> ErrorsAfter(string file, Action<JsonObject> change)
    {
        var copy = (JsonObject)Example(file).DeepClone();
        change(copy);
        return Validate(copy);
    }

    private static void AssertRefused(List<string> errors, string where)
    {
        Assert.True(errors.Count > 0, "the schema accepted it");
        Assert.True(errors.Any(e => e.Contains(where, StringComparison.Ordinal)), $"no error at {where}:\n{string.Join('\n', errors)}");
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("10.0.0/24")]
    [InlineData("10.0.0.0")]
    [InlineData("256.0.0.0/8")]
    [InlineData("fd7a:115c:a1e0::/129")]
    [InlineData("fd7a:zz::/48")]
    [InlineData("10.0.0.0/24 ")]
    [InlineData("")]
    public void Schema_BadCidr_Refused(string cidr)
    {
        AssertRefused(ErrorsAfter("meshnode-subnet-router.yaml", s => s["spec"]!["advertiseRoutes"] = new JsonArray(cidr)), "/spec/advertiseRoutes/0");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", s => s["spec"]!["prefixes"]!["v4"] = cidr), "/spec/prefixes/v4");
    }

    [Theory]
    [InlineData("10.0.0.0/8")]
    [InlineData("192.168.1.0/24")]
    [InlineData("0.0.0.0/0")]
    [InlineData("::/0")]
    [InlineData("fd7a:115c:a1e0:ab12::/64")]
    [InlineData("2001:db8::/32")]
    public void Schema_GoodCidr_Accepted(string cidr)
    {
        Assert.Empty(ErrorsAfter("meshnode-subnet-router.yaml", s => s["spec"]!["advertiseRoutes"] = new JsonArray(cidr)));
    }

    [Fact]
    public void Schema_UnknownCoordinatorMode_Refused()
    {
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["coordinator"]!["mode"] = "Hosted"), "/spec/coordinator/mode");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["coordinator"]!["mode"] = "managed"), "/spec/coordinator/mode");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["coordinator"]!.AsObject().Remove("mode")), "/spec/coordinator");
    }

    [Theory]
    [InlineData("meshnetwork-managed.yaml", "spec", "nodeKeyExpiray", "\"90d\"")]
    [InlineData("meshnetwork-managed.yaml", "spec.dns", "magicDns", "true")]
    [InlineData("meshnetwork-managed.yaml", "spec.coordinator.managed.storage", "storageClass", "\"fast\"")]
    [InlineData("meshnode-subnet-router.yaml", "spec", "advertisedRoutes", "[\"10.0.0.0/8\"]")]
    [InlineData("meshnode-exit-node.yaml", "spec", "exitnode", "true")]
    [InlineData("meshacl.yaml", "spec", "acl", "[]")]
    [InlineData("meshacl.yaml", "spec.acls.0", "ports", "[\"*:*\"]")]
    [InlineData("meshacl.yaml", "spec.tests.0", "allow", "[\"tag:web:80\"]")]
    public void Schema_MisspelledField_Refused(string file, string at, string field, string value)
    {
        var errors = ErrorsAfter(file, s =>
        {
            JsonNode node = s;
            foreach (var part in at.Split('.'))
            {
                node = int.TryParse(part, out var i) ? node[i]! : node[part]!;
            }

            node.AsObject()[field] = JsonNode.Parse(value);
        });
        AssertRefused(errors, "/" + at.Replace('.', '/'));
        Assert.Contains(errors, e => e.Contains("additionalProperties", StringComparison.Ordinal) || e.Contains("false schema", StringComparison.Ordinal));
    }

    [Fact]
    public void Schema_FreeFormAppCapabilities_Accepted()
    {
        Assert.Empty(ErrorsAfter("meshacl.yaml", static s => s["spec"]!["grants"]!.AsArray().Add(JsonNode.Parse(
            """{"src": ["group:dev"], "dst": ["tag:web"], "app": {"example.com/cap/dashboard": [{"role": "viewer", "pages": ["a", "b"], "nested": {"any": 1}}]}}"""))));
    }

    [Theory]
    [InlineData("router")]
    [InlineData("tag:")]
    [InlineData("tag:router!")]
    [InlineData("tag:9lives")]
    public void Schema_BadTag_Refused(string tag)
    {
        AssertRefused(ErrorsAfter("meshnode-exit-node.yaml", s => s["spec"]!["tags"] = new JsonArray(tag)), "/spec/tags/0");
    }

    [Theory]
    [InlineData("180 days")]
    [InlineData("1y")]
    [InlineData("-5h")]
    [InlineData("h")]
    public void Schema_BadDuration_Refused(string duration)
    {
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", s => s["spec"]!["nodeKeyExpiry"] = duration), "/spec/nodeKeyExpiry");
    }

    [Fact]
    public void Schema_OtherTypicalMistakes_Refused()
    {
        AssertRefused(ErrorsAfter("meshnode-subnet-router.yaml", static s => s["spec"]!.AsObject().Remove("network")), "/spec");
        AssertRefused(ErrorsAfter("meshnode-subnet-router.yaml", static s => s["spec"]!["replicas"] = "2"), "/spec/replicas");
        AssertRefused(ErrorsAfter("meshnode-subnet-router.yaml", static s => s["spec"]!["advertiseRoutes"] = "10.20.0.0/16"), "/spec/advertiseRoutes");
        AssertRefused(ErrorsAfter("meshnode-subnet-router.yaml", static s => s["spec"]!["advertiseRoutes"] = new JsonArray("10.20.0.0/16", "10.20.0.0/16")), "/spec/advertiseRoutes/1");
        AssertRefused(ErrorsAfter("meshnode-subnet-router.yaml", static s => s["spec"]!["hostname"] = "Office_Router"), "/spec/hostname");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["coordinator"]!["managed"]!["replicas"] = 2), "/spec/coordinator/managed/replicas");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["coordinator"]!["managed"]!["storage"]!["size"] = "2 gigs"), "/spec/coordinator/managed/storage/size");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["coordinator"]!["managed"]!["service"]!["type"] = "Ingress"), "/spec/coordinator/managed/service/type");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["dns"]!["splitDNS"]!.AsArray().Add(JsonNode.Parse("""{"domain": "svc.cluster.local", "nameservers": ["10.96.0.11"]}"""))), "/spec/dns/splitDNS/1");
        AssertRefused(ErrorsAfter("meshnetwork-managed.yaml", static s => s["spec"]!["dns"]!["extraRecords"]![0]!["type"] = "CNAME"), "/spec/dns/extraRecords/0/type");
        AssertRefused(ErrorsAfter("meshnetwork-external.yaml", static s => s["spec"]!["coordinator"]!["external"]!["url"] = "mesh.example.com"), "/spec/coordinator/external/url");
        AssertRefused(ErrorsAfter("meshnetwork-external.yaml", static s => s["spec"]!["coordinator"]!["external"]!.AsObject().Remove("authKeySecretRef")), "/spec/coordinator/external");
        AssertRefused(ErrorsAfter("meshacl.yaml", static s => s["spec"]!["acls"]![0]!["action"] = "deny"), "/spec/acls/0/action");
        AssertRefused(ErrorsAfter("meshacl.yaml", static s => s["spec"]!["acls"]![0]!["src"] = "group:ops"), "/spec/acls/0/src");
        AssertRefused(ErrorsAfter("meshacl.yaml", static s => s["spec"]!["hosts"]!["build-db"] = "build-db.corp"), "/spec/hosts/build-db");
    }

    [Fact]
    public void Status_WrittenByTheCSharpTypes_ValidatesAgainstTheSchema()
    {
        var seen = new DateTime(2025, 6, 1, 12, 0, 0, DateTimeKind.Utc);
        V1Condition Ready() => new() { Type = "Ready", Status = "True", Reason = "Online", Message = "", LastTransitionTime = seen, ObservedGeneration = 3 };
        var device = new MeshNodeDevice
        {
            Hostname = "office-router-0", NodeId = 7, IPv4 = "100.64.0.7", IPv6 = "fd7a:115c:a1e0::7", PublicKey = "nodekey:" + new string('a', 64),
            Online = true, LastSeen = seen, Path = "direct 198.18.0.2:41641", PrimaryRoutes = ["10.20.0.0/16"],
        };
        var node = KubernetesJson.Deserialize<MeshNode>(Example("meshnode-subnet-router.yaml").ToJsonString());
        node.Status = new MeshNodeStatus
        {
            ObservedGeneration = 3, Conditions = [Ready()], Hostname = device.Hostname, NodeId = device.NodeId, IPv4 = device.IPv4, IPv6 = device.IPv6,
            PublicKey = device.PublicKey, Online = true, LastSeen = seen, Path = "relay \"corp\"", ApprovedRoutes = ["10.20.0.0/16"],
            Devices = [device, new MeshNodeDevice { Hostname = "office-router-1", Online = false }],
        };
        var network = KubernetesJson.Deserialize<MeshNetwork>(Example("meshnetwork-managed.yaml").ToJsonString());
        network.Status = new MeshNetworkStatus { ObservedGeneration = 1, Conditions = [Ready()], CoordinatorUrl = "https://mesh.corp.example.com", Nodes = 12, OnlineNodes = 9 };
        var acl = KubernetesJson.Deserialize<MeshAcl>(Example("meshacl.yaml").ToJsonString());
        acl.Status = new MeshAclStatus
        {
            ObservedGeneration = 2,
            Conditions = [Ready(), new V1Condition { Type = "Valid", Status = "False", Reason = "TestsFailed", Message = "1 test failed", LastTransitionTime = seen }],
            TestResults = new PolicyTestResults { Total = 3, Passed = 2, Failed = 1, Failures = ["tests[0].deny[0] \"tag:db:5432\": bob@example.com can reach it; expected deny"] },
            Errors = ["tests[0].deny[0] \"tag:db:5432\": bob@example.com can reach it; expected deny"],
        };

        foreach (object resource in new object[] { node, network, acl })
        {
            var json = (JsonObject)JsonNode.Parse(KubernetesJson.Serialize(resource))!;
            var errors = Validate(json);
            Assert.True(errors.Count == 0, $"{json["kind"]}:\n{string.Join('\n', errors)}\n{json.ToJsonString()}");
        }

        // A time that is not RFC 3339 is refused.
        var badTime = (JsonObject)JsonNode.Parse(KubernetesJson.Serialize(node))!;
        badTime["status"]!["lastSeen"] = "yesterday";
        AssertRefused(Validate(badTime), "/status/lastSeen");

        // Two conditions of one type are refused, as the API server refuses them (list map keyed by type).
        network.Status.Conditions = [Ready(), Ready()];
        AssertRefused(Validate((JsonObject)JsonNode.Parse(KubernetesJson.Serialize(network))!), "/status/conditions/1");
    }
}
