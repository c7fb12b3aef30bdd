using System.Globalization;
using System.Text;
using System.Text.Json;
using CsCheck;
using Mesh.Policy.Tests.Conformance;

namespace Mesh.Policy.Tests;

/// <summary>
/// The per-node paths (filters built on first <see cref="ICompiledPolicy.FilterFor"/>, peers from
/// <see cref="PeerGraph"/>) against the former eager evaluation kept in <see cref="EagerPolicyModel"/>: the same
/// filter rules in the same order, and the same peers, for every node of every recorded case and of random
/// topologies and policies.
/// </summary>
public sealed class LazyEvaluationTests
{
    [Fact]
    public void Corpus_EveryNode_LazyMatchesEager()
    {
        if (ConformanceCorpus.Directory is null)
        {
            Assert.Skip($"conformance corpus not found; looked in {ConformanceCorpus.WhereLooked}");
        }

        var compared = 0;
        foreach (var folder in new[] { "acl", "policytest", "routes", "grant" })
        {
            foreach (var id in ConformanceCorpus.CaseIds(folder))
            {
                var c = ConformanceCorpus.Load(folder, id);
                if (TryCompile(c.PolicyText, c.Topology) is { } policy)
                {
                    AssertSame(policy, $"{folder}/{id}");
                    compared++;
                }
            }
        }

        Assert.True(compared > 300, $"only {compared} cases compiled");
    }

    [Fact]
    public void RandomPolicies_EveryNode_LazyMatchesEager()
    {
        var compiled = 0;
        Gen.Int.Sample(seed =>
        {
            var (topology, text) = RandomCase(seed);
            if (TryCompile(text, topology) is { } policy)
            {
                AssertSame(policy, $"seed {seed}:\n{text}");
                Interlocked.Increment(ref compiled);
            }
        }, iter: 2_000);

        // Most generated policies are valid; the rest draw an autogroup:self with a source it does not allow.
        Assert.True(compiled > 1_000, $"only {compiled} random policies compiled");
    }

    [Fact]
    public void FilterFor_ConcurrentFirstCalls_AllCallersGetOneInstance()
    {
        var (topology, text) = RandomCase(7);
        var policy = (CompiledPolicy)PolicyEngine.Compile(text, topology, runTests: false);
        var names = topology.Nodes.Select(static n => n.Name).ToArray();
        var filters = new IReadOnlyList<FilterRule>?[8][];
        var peers = new IReadOnlyList<string>[8][];
        Parallel.For(0, 8, t =>
        {
            filters[t] = [.. names.Select(policy.FilterFor)];
            peers[t] = [.. names.Select(policy.PeersOf)];
        });

        for (var t = 1; t < 8; t++)
        {
            for (var n = 0; n < names.Length; n++)
            {
                Assert.Same(filters[0][n], filters[t][n]);
                Assert.Same(peers[0][n], peers[t][n]);
            }
        }

        AssertSame(policy, "seed 7");
    }

    private static CompiledPolicy? TryCompile(string text, PolicyTopology topology)
    {
        try
        {
            return (CompiledPolicy)PolicyEngine.Compile(text, topology, runTests: false);
        }
        catch (PolicyException)
        {
            return null;
        }
    }

    private static void AssertSame(CompiledPolicy policy, string what)
    {
        var eager = EagerPolicyModel.Filters(policy);
        foreach (var node in policy.Index.Nodes)
        {
            var name = node.Node.Name;
            var expected = eager[node.Index] is { Count: > 0 } e ? JsonSerializer.Serialize(e) : "null";
            var actual = policy.FilterFor(name) is { } f ? JsonSerializer.Serialize(f) : "null";
            if (expected != actual)
            {
                Assert.Fail($"{what}\nnode {name}: filter\n  eager: {expected}\n  lazy:  {actual}");
            }

            var expectedPeers = string.Join(",", EagerPolicyModel.Peers(policy, node));
            var actualPeers = string.Join(",", policy.PeersOf(name));
            if (expectedPeers != actualPeers)
            {
                Assert.Fail($"{what}\nnode {name}: peers\n  eager: {expectedPeers}\n  lazy:  {actualPeers}");
            }
        }
    }

    private static readonly string[] Sources =
    [
        "*", "group:g0", "group:g1", "u1@example.com", "u2@", "tag:t0", "tag:t1", "autogroup:member", "autogroup:tagged",
        "100.64.0.0/29", "h1", "10.1.0.0/16", "fd7a:115c:a1e0::/124", "user:*@example.com", "autogroup:danger-all",
    ];

    private static readonly string[] Destinations =
    [
        "*:*", "*:22", "tag:t1:22", "tag:t2:*", "group:g1:80-90", "u0@example.com:*", "autogroup:member:443",
        "autogroup:tagged:*", "autogroup:self:*", "autogroup:self:22", "10.1.0.0/16:22", "10.2.1.0/24:*", "h0:53",
        "h1:*", "autogroup:internet:*", "100.64.0.0/30:8080", "8.8.8.8:53", "fd7a:115c:a1e0::/120:*", "100.64.0.7:1-2",
    ];

    private static readonly string[] GrantDestinations =
    [
        "*", "tag:t1", "group:g1", "autogroup:member", "autogroup:self", "10.1.0.0/16", "10.2.1.0/24", "h0",
        "autogroup:internet", "100.64.0.0/30", "10.0.0.0/8", "8.8.8.0/24",
    ];

    private static readonly string?[] Protocols = [null, null, null, "tcp", "udp", "icmp"];

    /// <summary>A small topology (users' and tagged nodes, subnet routers, exit nodes) and a policy over it.</summary>
    private static (PolicyTopology, string) RandomCase(int seed)
    {
        var random = new Random(seed);
        T Pick<T>(IReadOnlyList<T> from) => from[random.Next(from.Count)];
        var users = Enumerable.Range(0, 4).Select(i => new PolicyUser(i, $"u{i}", $"u{i}@example.com")).ToList();
        var routeChoices = new[] { "10.1.0.0/16", "10.2.0.0/16", "10.2.1.0/24", "100.64.0.0/29", "fd7a:115c:a1e0::/124" };
        var nodes = new List<PolicyNode>();
        var count = random.Next(3, 14);
        for (var i = 0; i < count; i++)
        {
            var v4 = random.Next(8) == 0 ? null : string.Create(CultureInfo.InvariantCulture, $"100.64.0.{i + 1}");
            var v6 = random.Next(6) == 0 ? null : string.Create(CultureInfo.InvariantCulture, $"fd7a:115c:a1e0::{i + 1:x}");
            var routes = new List<string>();
            if (random.Next(4) == 0)
            {
                routes.Add(Pick(routeChoices));
            }

            if (random.Next(6) == 0)
            {
                routes.AddRange(["0.0.0.0/0", "::/0"]);
            }

            IReadOnlyList<string> approved = random.Next(5) == 0 ? [] : routes;
            nodes.Add(random.Next(3) == 0
                ? new PolicyNode($"n{i}", null, [.. Enumerable.Range(0, random.Next(1, 3)).Select(_ => $"tag:t{random.Next(3)}").Distinct()], v4, v6, routes, approved)
                : new PolicyNode($"n{i}", $"u{random.Next(4)}", [], v4, v6, routes, approved));
        }

        string Quoted(IEnumerable<string> items) => string.Join(", ", items.Select(static s => $"\"{s}\""));
        string Several(IReadOnlyList<string> from, int max) =>
            Quoted(Enumerable.Range(0, random.Next(1, max + 1)).Select(_ => Pick(from)).Distinct());

        var sb = new StringBuilder();
        sb.Append("{\"groups\": {\"group:g0\": [").Append(Several(["u0@example.com", "u1@example.com", "u3@"], 2))
            .Append("], \"group:g1\": [").Append(Several(["u1@example.com", "u2@example.com", "u3@example.com"], 3)).Append("]},");
        sb.Append("\"hosts\": {\"h0\": \"10.1.0.0/16\", \"h1\": \"100.64.0.3\"},");
        sb.Append("\"tagOwners\": {\"tag:t0\": [\"group:g0\"], \"tag:t1\": [\"u0@example.com\"], \"tag:t2\": [\"u1@example.com\"]},");
        sb.Append("\"acls\": [");
        var acls = random.Next(0, 6);
        for (var r = 0; r < acls; r++)
        {
            var proto = Pick(Protocols);
            var dsts = proto == "icmp" ? "\"*:*\"" : Several(Destinations, 3);
            sb.Append(CultureInfo.InvariantCulture, $"{{\"action\": \"accept\", \"src\": [{Several(Sources, 2)}], \"dst\": [{dsts}]");
            sb.Append(proto is null ? "}," : $", \"proto\": \"{proto}\"}},");
        }

        sb.Append("], \"grants\": [");
        var grants = random.Next(0, 3);
        for (var g = 0; g < grants; g++)
        {
            var via = random.Next(2) == 0 ? ", \"via\": [\"tag:t2\"]" : "";
            var ip = Pick(new[] { "\"*\"", "\"tcp:22\"", "\"tcp:443\", \"udp:53\"" });
            sb.Append(CultureInfo.InvariantCulture, $"{{\"src\": [{Several(Sources, 2)}], \"dst\": [{Several(GrantDestinations, 2)}], \"ip\": [{ip}]{via}}},");
        }

        sb.Append("]}");
        return (new PolicyTopology(users, nodes), sb.ToString());
    }
}
