using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mesh.Operator.Kubernetes.Resources;

namespace Mesh.Operator.Kubernetes.Policy;

/// <summary>
/// Merges the MeshAcls of one network into the one policy its coordinator runs (DESIGN.md: "Several MeshAcls of one
/// network are merged; a conflict ... makes the merged policy invalid"). In name order: acls, grants and tests are
/// concatenated; groups, hosts, tagOwners and autoApprovers.routes are united by key, and a key that two MeshAcls
/// define differently is a conflict (the same definition twice is not); autoApprovers.exitNode is united.
/// Each MeshAcl's tests keep a range of the merged <c>tests</c>, so failures are reported on the MeshAcl that wrote them.
/// </summary>
internal static partial class MeshAclMerge
{
    public static MergedPolicy Merge(IEnumerable<MeshAcl> meshAcls)
    {
        ArgumentNullException.ThrowIfNull(meshAcls);
        var ordered = meshAcls.OrderBy(static a => a.Metadata.Name, StringComparer.Ordinal).ToList();
        var networks = ordered.Select(static a => a.Spec.Network).Distinct(StringComparer.Ordinal).ToList();
        if (networks.Count > 1)
        {
            throw new ArgumentException($"MeshAcls of different networks cannot be merged: {string.Join(", ", networks)}", nameof(meshAcls));
        }

        List<PolicyAcl>? acls = null;
        List<PolicyGrant>? grants = null;
        List<PolicyTest>? tests = null;
        List<string>? exitNode = null;
        var conflicts = new List<string>();
        var testRanges = new Dictionary<string, Range>(StringComparer.Ordinal);
        var groups = new Owned<List<string>>("groups", conflicts);
        var hosts = new Owned<string>("hosts", conflicts);
        var tagOwners = new Owned<List<string>>("tagOwners", conflicts);
        var routes = new Owned<List<string>>("autoApprovers.routes", conflicts);
        foreach (var acl in ordered)
        {
            var name = acl.Metadata.Name;
            var spec = acl.Spec;
            groups.AddAll(name, spec.Groups);
            hosts.AddAll(name, spec.Hosts);
            tagOwners.AddAll(name, spec.TagOwners);
            routes.AddAll(name, spec.AutoApprovers?.Routes);
            Append(ref acls, spec.Acls);
            Append(ref grants, spec.Grants);
            if (spec.AutoApprovers?.ExitNode is { } exit)
            {
                exitNode = [.. (exitNode ?? []).Union(exit, StringComparer.Ordinal)];
            }

            var start = tests?.Count ?? 0;
            Append(ref tests, spec.Tests);
            testRanges[name] = new Range(start, tests?.Count ?? 0);
        }

        var merged = new MeshPolicy
        {
            Groups = groups.Result,
            Hosts = hosts.Result,
            TagOwners = tagOwners.Result,
            Acls = acls,
            Grants = grants,
            AutoApprovers = routes.Result is null && exitNode is null ? null : new PolicyAutoApprovers { Routes = routes.Result, ExitNode = exitNode },
            Tests = tests,
        };
        return new MergedPolicy(merged, conflicts, testRanges);
    }

    private static void Append<T>(ref List<T>? into, List<T>? items)
    {
        if (items is { Count: > 0 })
        {
            (into ??= []).AddRange(items);
        }
    }

    /// <summary>One keyed section being united, remembering which MeshAcl defined each key.</summary>
    private sealed class Owned<T>(string section, List<string> conflicts)
        where T : class
    {
        private readonly Dictionary<string, (string Owner, T Value)> _entries = new(StringComparer.Ordinal);

        public Dictionary<string, T>? Result => _entries.Count == 0 ? null : _entries.ToDictionary(static e => e.Key, static e => e.Value.Value, StringComparer.Ordinal);

        public void AddAll(string owner, Dictionary<string, T>? entries)
        {
            foreach (var (key, value) in entries ?? [])
            {
                if (!_entries.TryGetValue(key, out var existing))
                {
                    _entries[key] = (owner, value);
                }
                else if (JsonSerializer.Serialize(existing.Value) != JsonSerializer.Serialize(value))
                {
                    conflicts.Add($"{section}[\"{key}\"] is defined differently by MeshAcls \"{existing.Owner}\" and \"{owner}\"");
                }
            }
        }
    }

    [GeneratedRegex(@"^tests\[(\d+)\]")]
    private static partial Regex TestIndex();

    /// <summary>
    /// The part of the merged policy's verdict that belongs on one MeshAcl's status: every error, except that test
    /// failures are kept only for its own tests, renumbered as they are in its spec.
    /// </summary>
    public static PolicyVerdict VerdictFor(MergedPolicy merged, string meshAclName, PolicyVerdict verdict)
    {
        ArgumentNullException.ThrowIfNull(merged);
        ArgumentNullException.ThrowIfNull(verdict);
        var range = merged.TestRanges.TryGetValue(meshAclName, out var r) ? r : new Range(0, 0);
        var (start, end) = (range.Start.Value, range.End.Value);
        var errors = new List<string>(merged.Conflicts);
        var failures = new List<string>();
        foreach (var line in verdict.Errors)
        {
            var m = TestIndex().Match(line);
            if (!m.Success)
            {
                errors.Add(line);
                continue;
            }

            var index = int.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture);
            if (index >= start && index < end)
            {
                failures.Add($"tests[{index - start}]" + line[m.Length..]);
            }
        }

        var total = end - start;
        var failed = verdict.TestsRan ? failures.Select(static f => TestIndex().Match(f).Value).Distinct(StringComparer.Ordinal).Count() : 0;
        errors.AddRange(failures);
        return new PolicyVerdict(errors, new PolicyTestResults
        {
            Total = total,
            Passed = verdict.TestsRan ? total - failed : 0,
            Failed = failed,
            Failures = verdict.TestsRan && failures.Count > 0 ? failures : null,
        })
        { TestsRan = verdict.TestsRan };
    }
}

/// <summary>The network's merged policy, the conflicts found while merging, and where each MeshAcl's tests went.</summary>
internal sealed record MergedPolicy(MeshPolicy Policy, IReadOnlyList<string> Conflicts, IReadOnlyDictionary<string, Range> TestRanges);
