using System.Text.Json.Nodes;
using k8s;
using Mesh.Operator.Kubernetes.Policy;
using Mesh.Operator.Kubernetes.Resources;
using Mesh.Policy;

namespace Mesh.Operator.Tests.Kubernetes;

/// <summary>MeshAcl to policy document and back, checked by Mesh.Policy (the engine the coordinator runs).</summary>
public sealed class MeshAclPolicyTests
{
    private static MeshAcl Sample()
    {
        var document = YamlJson.Documents(File.ReadAllText(Path.Combine(RepoPaths.KubernetesExamples, "meshacl.yaml"))).Single()!;
        return KubernetesJson.Deserialize<MeshAcl>(document.ToJsonString());
    }

    /// <summary>The corp network of the examples: users, their laptops, tagged pods, the router and the exit node.</summary>
    private static readonly PolicyTopology Corp = new(
        [new(1, "alice", "alice@example.com"), new(2, "bob", "bob@example.com"), new(3, "carol", "carol@example.com")],
        [
            new("alice-laptop", "alice", [], "100.64.0.1", "fd7a:115c:a1e0::1", [], []),
            new("bob-laptop", "bob", [], "100.64.0.2", "fd7a:115c:a1e0::2", [], []),
            new("carol-laptop", "carol", [], "100.64.0.3", "fd7a:115c:a1e0::3", [], []),
            new("web-0", null, ["tag:web"], "100.64.0.10", "fd7a:115c:a1e0::a", [], []),
            new("db-0", null, ["tag:db"], "100.64.0.11", "fd7a:115c:a1e0::b", [], []),
            new("office-router-0", null, ["tag:router"], "100.64.0.20", "fd7a:115c:a1e0::14", ["10.20.0.0/16"], ["10.20.0.0/16"]),
            new("egress-eu", null, ["tag:exit"], "100.64.0.30", "fd7a:115c:a1e0::1e", ["0.0.0.0/0", "::/0"], ["0.0.0.0/0", "::/0"]),
        ]);

    [Fact]
    public void Sample_ConvertsToAPolicyTheEngineAccepts()
    {
        var json = MeshAclPolicy.ToPolicyJson(Sample().Spec);
        PolicyEngine.Check(json);
        var policy = JsonNode.Parse(json)!.AsObject();
        Assert.Equal(["groups", "hosts", "tagOwners", "acls", "grants", "autoApprovers", "tests"], policy.Select(static p => p.Key));
        Assert.DoesNotContain("network", json, StringComparison.Ordinal);
        Assert.Equal("tag:db:5432", policy["acls"]![2]!["dst"]![0]!.GetValue<string>());
        Assert.Equal("tag:exit", policy["grants"]![0]!["via"]![0]!.GetValue<string>());
    }

    [Fact]
    public void Sample_AgainstTheCorpNetwork_ValidAndEveryTestPasses()
    {
        var verdict = MeshAclPolicy.Evaluate(Sample().Spec, Corp);
        Assert.True(verdict.Valid, string.Join('\n', verdict.Errors));
        Assert.True(verdict.TestsRan);
        Assert.Equal(3, verdict.TestResults.Total);
        Assert.Equal(3, verdict.TestResults.Passed);
        Assert.Equal(0, verdict.TestResults.Failed);
        Assert.Null(verdict.TestResults.Failures);

        // The compiled policy does what the sample says: the web pod reaches the database, bob does not.
        var compiled = PolicyEngine.Compile(MeshAclPolicy.ToPolicyJson(Sample().Spec), Corp);
        Assert.True(compiled.CanSee("web-0", "db-0"));
        Assert.False(compiled.CanSee("bob-laptop", "db-0"));
        Assert.Equal(["10.20.0.0/16"], compiled.AutoApprovedRoutes("office-router-0"));
    }

    [Fact]
    public void Broken_UndefinedGroup_RefusedWithWhereAndWhat()
    {
        var acl = Sample();
        acl.Spec.Acls![1].Src = ["group:devs"];
        var e = Assert.Throws<PolicyException>(() => MeshAclPolicy.Check(acl.Spec));
        Assert.Equal("acls[1].src[0] \"group:devs\": group \"group:devs\" is not defined in \"groups\"", e.Message);

        var verdict = MeshAclPolicy.Evaluate(acl.Spec, Corp);
        Assert.False(verdict.Valid);
        Assert.False(verdict.TestsRan);
        Assert.Equal([e.Message], verdict.Errors);
        Assert.Equal(0, verdict.TestResults.Passed);
    }

    [Fact]
    public void Broken_SeveralProblems_AllReported()
    {
        var acl = Sample();
        acl.Spec.Acls![2].Dst = ["tag:db:ssh"];
        acl.Spec.Grants![0].Via = ["tag:exits"];
        acl.Spec.TagOwners!["tag:web"] = ["group:nobody"];
        var e = Assert.Throws<PolicyException>(() => MeshAclPolicy.Check(acl.Spec));
        Assert.Equal(3, e.Problems.Count);
        Assert.Contains(e.Problems, static p => p.StartsWith("acls[2].dst[0] \"tag:db:ssh\": port range \"ssh\": invalid first integer", StringComparison.Ordinal));
        Assert.Contains("grants[0].via[0]: tag \"tag:exits\" not found (define it in \"tagOwners\")", e.Problems);
        Assert.Contains(e.Problems, static p => p.StartsWith("tagOwners[\"tag:web\"][0] \"group:nobody\"", StringComparison.Ordinal));
    }

    [Fact]
    public void FailingTest_ReportedAsTheStatusWouldShowIt()
    {
        var acl = Sample();
        acl.Spec.Tests![0].Deny = ["tag:web:443"];
        var verdict = MeshAclPolicy.Evaluate(acl.Spec, Corp);
        Assert.False(verdict.Valid);
        Assert.True(verdict.TestsRan);
        Assert.Equal((3, 2, 1), (verdict.TestResults.Total, verdict.TestResults.Passed, verdict.TestResults.Failed));
        Assert.Equal(["tests[0].deny[0] \"tag:web:443\": bob@example.com can reach it; expected deny"], verdict.TestResults.Failures!);
        Assert.Equal(verdict.TestResults.Failures!, verdict.Errors);
    }

    [Fact]
    public void PolicyFile_ToMeshAclAndBack_SameDocument()
    {
        const string File = """
            // A policy as Tailscale writes it: HuJSON, comments and trailing commas.
            {
              "groups": {"group:eng": ["alice@example.com",],},
              "hosts": {"nas": "100.64.9.9"},
              "tagOwners": {"tag:server": ["group:eng"]},
              "acls": [{"action": "accept", "src": ["group:eng"], "proto": "tcp", "dst": ["tag:server:22,443"]}],
              "grants": [{"src": ["*"], "dst": ["nas"], "ip": ["tcp:445"], "app": {"example.com/cap/files": [{"share": "public"}]}}],
              "autoApprovers": {"routes": {"10.0.0.0/8": ["tag:server"]}, "exitNode": ["group:eng"]},
              "tests": [{"src": "alice@example.com", "accept": ["nas:445"]}],
            }
            """;
        var policy = MeshAclPolicy.FromPolicyJson(File);
        var acl = MeshAclPolicy.ToMeshAcl(policy, "imported", "corp");
        Assert.Equal("corp", acl.Spec.Network);
        Assert.Equal("public", acl.Spec.Grants![0].App!["example.com/cap/files"][0]["share"]!.GetValue<string>());
        var back = MeshAclPolicy.ToPolicyJson(acl.Spec);
        var original = JsonNode.Parse(File, documentOptions: new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true });
        Assert.True(JsonNode.DeepEquals(original, JsonNode.Parse(back)), back);

        // And through the cluster's JSON (what the API server stores) unchanged.
        var stored = KubernetesJson.Deserialize<MeshAcl>(KubernetesJson.Serialize(acl));
        Assert.Equal(back, MeshAclPolicy.ToPolicyJson(stored.Spec));
    }

    [Theory]
    [InlineData("""{"ssh": []}""", "ssh")]
    [InlineData("""{"acls": [{"action": "accept", "users": ["*"], "ports": ["*:*"]}]}""", "acls[0].users")]
    [InlineData("""{"acls": [{"action": "accept", "src": "*", "dst": ["*:*"]}]}""", "acls[0].src")]
    [InlineData("""{"groups": {"group:a": "alice@example.com"}}""", "groups.group:a")]
    public void PolicyFile_AMeshAclCannotHold_RefusedSayingWhere(string text, string where)
    {
        var e = Assert.Throws<PolicyException>(() => MeshAclPolicy.FromPolicyJson(text));
        Assert.Contains("cannot be held by a MeshAcl", e.Message, StringComparison.Ordinal);
        Assert.Contains(where, e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Every policy of the conformance corpus (Tailscale's recorded decisions) read into the MeshAcl model and written
    /// back compiles to the same packet filters as the original, and a policy the engine refuses is still refused.
    /// </summary>
    [Fact]
    public void ConformanceCorpus_RoundTripsThroughTheModel_SameFilters()
    {
        if (RepoPaths.PolicyCorpus is not { } corpus)
        {
            Assert.Skip("conformance corpus not found (../shared/conformance/tailscale-policy or MESH_POLICY_CORPUS)");
            return;
        }

        var checkedCases = 0;
        var problems = new List<string>();
        foreach (var file in Directory.GetFiles(corpus, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var root = JsonNode.Parse(System.IO.File.ReadAllText(file))!;
            if (root["policy"] is not JsonObject original || root["topology"] is not JsonObject topologyJson)
            {
                continue;
            }

            var id = Path.GetRelativePath(corpus, file);
            var text = original.ToJsonString();
            var topology = PolicyJson.ParseTopology(topologyJson.ToJsonString());
            string? expected, actual;
            try
            {
                expected = PolicyJson.SerializeFilters(PolicyEngine.Compile(text, topology, runTests: false), topology);
            }
            catch (PolicyException)
            {
                expected = null;
            }

            MeshPolicy model;
            try
            {
                model = MeshAclPolicy.FromPolicyJson(text);
            }
            catch (PolicyException e)
            {
                if (expected is not null)
                {
                    problems.Add($"{id}: a valid policy the model cannot hold: {e.Message}");
                }

                continue;
            }

            var viaCluster = KubernetesJson.Deserialize<MeshAcl>(KubernetesJson.Serialize(MeshAclPolicy.ToMeshAcl(model, "x", "corp")));
            try
            {
                actual = PolicyJson.SerializeFilters(PolicyEngine.Compile(MeshAclPolicy.ToPolicyJson(viaCluster.Spec), topology, runTests: false), topology);
            }
            catch (PolicyException e)
            {
                actual = null;
                if (expected is not null)
                {
                    problems.Add($"{id}: refused after the round trip: {e.Message}");
                }
            }

            if (expected is not null && actual is not null && expected != actual)
            {
                problems.Add($"{id}: filters differ after the round trip");
            }
            else if (expected is null && actual is not null)
            {
                problems.Add($"{id}: an invalid policy became valid after the round trip");
            }

            checkedCases++;
        }

        Assert.True(checkedCases > 500, $"only {checkedCases} cases found in {corpus}");
        Assert.True(problems.Count == 0, string.Join('\n', problems.Take(20)));
    }

    [Fact]
    public void Merge_TwoMeshAcls_OnePolicy_TestsReportedOnTheirOwner()
    {
        var baseAcl = Sample();
        var team = new MeshAcl
        {
            Metadata = new() { Name = "corp-team-db" },
            Spec = new MeshAclSpec
            {
                Network = "corp",
                // The same definition twice is not a conflict.
                Groups = new() { ["group:ops"] = ["alice@example.com"], ["group:dba"] = ["carol@example.com"] },
                Acls = [new PolicyAcl { Src = ["group:dba"], Dst = ["tag:db:5432"] }],
                Tests =
                [
                    new PolicyTest { Src = "carol@example.com", Accept = ["tag:db:5432"] },
                    new PolicyTest { Src = "bob@example.com", Accept = ["tag:db:22"] },
                ],
            },
        };

        var merged = MeshAclMerge.Merge([team, baseAcl]);
        Assert.Empty(merged.Conflicts);
        Assert.Equal(4, merged.Policy.Acls!.Count);
        Assert.Equal(["group:ops", "group:dev", "group:dba"], merged.Policy.Groups!.Keys);
        var verdict = MeshAclPolicy.Evaluate(merged.Policy, Corp);
        Assert.True(verdict.TestsRan);
        Assert.False(verdict.Valid);
        Assert.Equal(["tests[4].accept[0] \"tag:db:22\": bob@example.com cannot reach it; expected accept"], verdict.Errors);

        // corp-base's tests come first (name order); corp-team-db's second test is merged test 4, its own test 1.
        var mine = MeshAclMerge.VerdictFor(merged, "corp-team-db", verdict);
        Assert.Equal((2, 1, 1), (mine.TestResults.Total, mine.TestResults.Passed, mine.TestResults.Failed));
        Assert.Equal(["tests[1].accept[0] \"tag:db:22\": bob@example.com cannot reach it; expected accept"], mine.TestResults.Failures!);
        var theirs = MeshAclMerge.VerdictFor(merged, "corp-base", verdict);
        Assert.Equal((3, 3, 0), (theirs.TestResults.Total, theirs.TestResults.Passed, theirs.TestResults.Failed));
        Assert.Empty(theirs.Errors);
    }

    [Fact]
    public void Merge_SameKeyDefinedDifferently_Conflict()
    {
        var other = new MeshAcl
        {
            Metadata = new() { Name = "other" },
            Spec = new MeshAclSpec
            {
                Network = "corp",
                Hosts = new() { ["build-db"] = "10.20.5.16" },
                TagOwners = new() { ["tag:router"] = ["bob@example.com"] },
            },
        };
        var merged = MeshAclMerge.Merge([Sample(), other]);
        Assert.Equal(
            [
                "hosts[\"build-db\"] is defined differently by MeshAcls \"corp-base\" and \"other\"",
                "tagOwners[\"tag:router\"] is defined differently by MeshAcls \"corp-base\" and \"other\"",
            ],
            merged.Conflicts);
        var mine = MeshAclMerge.VerdictFor(merged, "other", MeshAclPolicy.Evaluate(merged.Policy, Corp));
        Assert.False(mine.Valid);
        Assert.Equal(merged.Conflicts, mine.Errors);
    }

    [Fact]
    public void Merge_DifferentNetworks_Throws()
    {
        var other = new MeshAcl { Metadata = new() { Name = "x" }, Spec = new MeshAclSpec { Network = "lab" } };
        Assert.Throws<ArgumentException>(() => MeshAclMerge.Merge([Sample(), other]));
    }
}
