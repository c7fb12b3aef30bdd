using System.Text;

namespace Mesh.Policy.Tests.Conformance;

/// <summary>Replays one case: compile, then compare each node's filter (or the refusal) with the recording.</summary>
internal static class ConformanceRunner
{
    public static (bool Passed, string Detail) Evaluate(ConformanceCase c)
    {
        ICompiledPolicy policy;
        try
        {
            policy = PolicyEngine.Compile(c.PolicyText, c.Topology);
        }
        catch (PolicyException e)
        {
            return c.ExpectError
                ? (true, $"refused as expected: {e.Message}")
                : (false, $"refused a policy Tailscale accepts: {e.Message}");
        }

        if (c.ExpectError)
        {
            return (false, $"accepted a policy Tailscale refuses with \"{c.ErrorMessage}\"");
        }

        var sb = new StringBuilder();
        foreach (var node in c.Topology.Nodes)
        {
            var expected = c.Expected.TryGetValue(node.Name, out var ex) ? ex ?? [] : [];
            var actual = policy.FilterFor(node.Name)?.Select(CanonRule.From).ToList() ?? [];
            var diff = FilterCanon.Diff(expected, actual);
            if (diff is not null)
            {
                sb.Append($"  node {node.Name}:\n{diff}\n");
            }
        }

        return sb.Length == 0 ? (true, "filters match") : (false, "filters differ:\n" + sb);
    }
}

/// <summary>
/// tests/Mesh.Policy.Tests/Conformance/known-divergences.txt: "case-id  reason" per line, '#' comments.
/// A listed case is expected to fail; a listed case that passes is an error, so the list stays honest.
/// </summary>
internal static class KnownDivergences
{
    private static readonly Lazy<Dictionary<string, string>> Entries = new(Load);

    public static IReadOnlyDictionary<string, string> All => Entries.Value;

    private static Dictionary<string, string> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Conformance", "known-divergences.txt");
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var split = line.IndexOfAny([' ', '\t']);
            map[split < 0 ? line : line[..split]] = split < 0 ? "" : line[split..].Trim();
        }

        return map;
    }
}

/// <summary>Shared body of the per-folder theories.</summary>
public abstract class ConformanceTestBase
{
    protected const string MissingCorpus = "(corpus missing)";

    protected static TheoryData<string> CasesOf(string folder)
    {
        var data = new TheoryData<string>();
        var ids = ConformanceCorpus.CaseIds(folder).ToList();
        if (ids.Count == 0)
        {
            data.Add(MissingCorpus);
        }

        foreach (var id in ids)
        {
            data.Add(id);
        }

        return data;
    }

    protected static void Replay(string folder, string id)
    {
        if (id == MissingCorpus)
        {
            Assert.Skip($"conformance corpus not found; looked in {ConformanceCorpus.WhereLooked}");
        }

        var c = ConformanceCorpus.Load(folder, id);
        var (passed, detail) = ConformanceRunner.Evaluate(c);
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"{id}: {detail}");
        if (KnownDivergences.All.TryGetValue(id, out var reason))
        {
            Assert.False(passed, $"{id} now passes: remove it from known-divergences.txt");
            output?.WriteLine($"known divergence: {reason}");
            return;
        }

        Assert.True(passed, $"{id}: {detail}");
    }
}

public sealed class AclConformanceTests : ConformanceTestBase
{
    public static TheoryData<string> Cases => CasesOf("acl");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case(string id) => Replay("acl", id);
}

public sealed class PolicyTestConformanceTests : ConformanceTestBase
{
    public static TheoryData<string> Cases => CasesOf("policytest");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case(string id) => Replay("policytest", id);
}

public sealed class RoutesConformanceTests : ConformanceTestBase
{
    public static TheoryData<string> Cases => CasesOf("routes");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case(string id) => Replay("routes", id);
}

public sealed class GrantConformanceTests : ConformanceTestBase
{
    public static TheoryData<string> Cases => CasesOf("grant");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case(string id) => Replay("grant", id);
}

/// <summary>Prints the pass count per folder, and lists failures not in known-divergences.txt.</summary>
public sealed class ConformanceSummaryTests
{
    [Fact]
    public void Summary_PerFolder_PrintsPassCounts()
    {
        if (ConformanceCorpus.Directory is null)
        {
            Assert.Skip($"conformance corpus not found; looked in {ConformanceCorpus.WhereLooked}");
        }

        var output = TestContext.Current.TestOutputHelper!;
        var unexpected = new List<string>();
        foreach (var folder in new[] { "acl", "policytest", "routes", "grant" })
        {
            var ids = ConformanceCorpus.CaseIds(folder).ToList();
            var passed = 0;
            foreach (var id in ids)
            {
                var (ok, detail) = ConformanceRunner.Evaluate(ConformanceCorpus.Load(folder, id));
                if (ok)
                {
                    passed++;
                }
                else if (!KnownDivergences.All.ContainsKey(id))
                {
                    unexpected.Add($"{id}: {detail}");
                }
            }

            output.WriteLine($"{folder}: {passed}/{ids.Count} pass");
        }

        foreach (var u in unexpected.Take(40))
        {
            output.WriteLine(u);
        }

        Assert.Empty(unexpected);
    }
}
