using System.Globalization;
using System.Text;
using Mesh.Policy;

namespace Mesh.Policy.Synthetic;

/// <summary>The synthetic large policy that the compile-time figures are measured on.</summary>
internal static class SyntheticPolicy
{
    /// <summary>
    /// 10,000 nodes (a third tagged, every 500th a subnet router), 500 users, 50 groups, 100 tags, and 1,000 random
    /// rules between groups, tags, users and autogroup:member, a tenth to subnet CIDRs, plus "*" to autogroup:self.
    /// Compiled into the policy tests and the benchmarks (tests/bench/Mesh.Benchmarks links this file).
    /// </summary>
    public static (string Policy, PolicyTopology Topology) Create(int nodes, int rules)
    {
        const int users = 500, tags = 100;
        var random = new Random(42);
        var userList = Enumerable.Range(0, users).Select(i => new PolicyUser(i, $"u{i}", $"u{i}@example.com")).ToList();
        var nodeList = new List<PolicyNode>(nodes);
        for (var i = 0; i < nodes; i++)
        {
            var a = 64 + (i >> 16);
            var v4 = string.Create(CultureInfo.InvariantCulture, $"100.{a}.{(i >> 8) & 0xFF}.{i & 0xFF}");
            var v6 = string.Create(CultureInfo.InvariantCulture, $"fd7a:115c:a1e0::{i:x}");
            var routes = i % 500 == 0 ? new[] { string.Create(CultureInfo.InvariantCulture, $"10.{i / 500}.0.0/16") } : [];
            nodeList.Add(i % 3 == 0
                ? new PolicyNode($"n{i}", null, [$"tag:t{random.Next(tags)}"], v4, v6, routes, routes)
                : new PolicyNode($"n{i}", $"u{random.Next(users)}", [], v4, v6, [], []));
        }

        var sb = new StringBuilder("{\"groups\": {");
        for (var g = 0; g < 50; g++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\"group:g{g}\": [{string.Join(",", Enumerable.Range(0, 20).Select(_ => $"\"u{random.Next(users)}@example.com\""))}],");
        }

        sb.Append("}, \"tagOwners\": {");
        for (var t = 0; t < tags; t++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\"tag:t{t}\": [\"group:g0\"],");
        }

        sb.Append("}, \"acls\": [");
        string Selector() => random.Next(4) switch
        {
            0 => $"group:g{random.Next(50)}",
            1 => $"tag:t{random.Next(tags)}",
            2 => $"u{random.Next(users)}@example.com",
            _ => "autogroup:member",
        };
        for (var r = 0; r < rules; r++)
        {
            var dst = random.Next(10) == 0 ? $"10.{random.Next(20)}.0.0/16:22" : $"{Selector()}:{random.Next(1, 1000)}";
            sb.Append(CultureInfo.InvariantCulture, $"{{\"action\": \"accept\", \"src\": [\"{Selector()}\"], \"dst\": [\"{dst}\"]}},");
        }

        sb.Append("{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"autogroup:self:*\"]}]}");
        return (sb.ToString(), new PolicyTopology(userList, nodeList));
    }
}
