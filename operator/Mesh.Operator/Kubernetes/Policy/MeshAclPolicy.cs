using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.Operator.Kubernetes.Resources;
using Mesh.Policy;

namespace Mesh.Operator.Kubernetes.Policy;

/// <summary>
/// Converts between MeshAcls and Tailscale policy documents, and checks a document with Mesh.Policy, the engine the
/// coordinator runs. A MeshAcl's spec without its network is a policy document field for field, so the conversion
/// is a copy; what it adds is the JSON text the engine reads (<see cref="ToPolicyJson"/>), reading policy files
/// back (<see cref="FromPolicyJson"/>, HuJSON as Tailscale writes it), and the verdict a MeshAcl's status carries
/// (<see cref="Evaluate"/>). Pure: no cluster, no coordinator.
/// </summary>
internal static class MeshAclPolicy
{
    private static readonly JsonSerializerOptions Write = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    // Policy files as Tailscale reads them: HuJSON (comments, trailing commas), field names in any case.
    private static readonly JsonSerializerOptions Read = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>The policy document of one MeshAcl (its network left out).</summary>
    public static MeshPolicy ToPolicy(IPolicySections sections)
    {
        ArgumentNullException.ThrowIfNull(sections);
        return new MeshPolicy
        {
            Groups = sections.Groups,
            Hosts = sections.Hosts,
            TagOwners = sections.TagOwners,
            Acls = sections.Acls,
            Grants = sections.Grants,
            AutoApprovers = sections.AutoApprovers,
            Tests = sections.Tests,
        };
    }

    /// <summary>A MeshAcl of <paramref name="network"/> holding <paramref name="policy"/>.</summary>
    public static MeshAcl ToMeshAcl(MeshPolicy policy, string name, string network)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return new MeshAcl
        {
            Metadata = new() { Name = name },
            Spec = new MeshAclSpec
            {
                Network = network,
                Groups = policy.Groups,
                Hosts = policy.Hosts,
                TagOwners = policy.TagOwners,
                Acls = policy.Acls,
                Grants = policy.Grants,
                AutoApprovers = policy.AutoApprovers,
                Tests = policy.Tests,
            },
        };
    }

    /// <summary>The policy as JSON text for Mesh.Policy and <c>mesh-operator policy set</c>; absent sections are left out.</summary>
    public static string ToPolicyJson(IPolicySections sections) => JsonSerializer.Serialize(ToPolicy(sections), Write);

    /// <summary>
    /// Reads a Tailscale policy file into the sections a MeshAcl holds. Keys the engine ignores (ssh, nodeAttrs,
    /// derpMap, ...) and acls' old names (users, ports) have no place in a MeshAcl and are refused, as is anything
    /// of the wrong shape; whether the policy is valid is <see cref="Check"/>'s question.
    /// </summary>
    /// <exception cref="PolicyException">The text is not a policy document of that shape.</exception>
    public static MeshPolicy FromPolicyJson(string hujson)
    {
        ArgumentNullException.ThrowIfNull(hujson);
        try
        {
            return JsonSerializer.Deserialize<MeshPolicy>(string.IsNullOrWhiteSpace(hujson) ? "{}" : hujson, Read)
                ?? throw new PolicyException("policy must be a JSON object, not null");
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } path ? $" at {path.TrimStart('$', '.')}" : "";
            throw new PolicyException($"policy cannot be held by a MeshAcl{where}: {e.Message}", e);
        }
    }

    /// <summary>Validates the policy on its own, as <c>mesh-operator policy check</c> without users and nodes would.</summary>
    /// <exception cref="PolicyException">The policy is invalid; the message names every problem and where it is.</exception>
    public static void Check(IPolicySections sections) => PolicyEngine.Check(ToPolicyJson(sections));

    /// <summary>
    /// Validates and compiles the policy against <paramref name="topology"/> (the network's users and nodes) and runs
    /// its tests: what a MeshAcl's Valid condition, errors and testResults report.
    /// </summary>
    public static PolicyVerdict Evaluate(IPolicySections sections, PolicyTopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var tests = sections.Tests?.Count ?? 0;
        ICompiledPolicy compiled;
        try
        {
            compiled = PolicyEngine.Compile(ToPolicyJson(sections), topology, runTests: false);
        }
        catch (PolicyException e)
        {
            return new PolicyVerdict(Problems(e), new PolicyTestResults { Total = tests, Passed = 0, Failed = 0 });
        }

        var report = compiled.RunTests();
        // A test is failed once however many of its assertions failed: the engine's lines start with "tests[i]".
        var failedTests = report.Failures.Select(static f => f.Split(['.', ':', ' '], 2)[0]).Distinct(StringComparer.Ordinal).Count();
        return new PolicyVerdict(
            report.Passed ? [] : [.. report.Failures],
            new PolicyTestResults
            {
                Total = tests,
                Passed = tests - failedTests,
                Failed = failedTests,
                Failures = report.Passed ? null : [.. report.Failures],
            })
        { TestsRan = true };
    }

    private static string[] Problems(PolicyException e) => e.Problems.Count > 0 ? [.. e.Problems] : [e.Message];
}

/// <summary>
/// A policy's verdict: empty <see cref="Errors"/> when valid and every test passed. The tests run only once the policy
/// compiles (<see cref="TestsRan"/>); before that they count as neither passed nor failed.
/// </summary>
internal sealed record PolicyVerdict(IReadOnlyList<string> Errors, PolicyTestResults TestResults)
{
    public bool Valid => Errors.Count == 0;

    public bool TestsRan { get; init; }
}
