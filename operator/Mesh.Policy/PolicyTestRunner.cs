namespace Mesh.Policy;

/// <summary>
/// Evaluates a policy's <c>tests</c> block against the compiled (not yet per-node) rules, with Tailscale's rules
/// for what a test may say: one source selector (a user that exists, a group, a tag, a host or an address);
/// destinations "host:port" with exactly one port, naming a single host (no CIDRs, no "*", no
/// autogroup:internet or autogroup:self). "accept" passes when every source address may reach the destination;
/// "deny" passes when none may. An empty <c>proto</c> means any of TCP, UDP, ICMP, ICMPv6.
/// </summary>
internal static class PolicyTestRunner
{
    private static readonly int[] DefaultProtocols = [6, 17, 1, 58];

    public static PolicyTestReport Run(CompiledPolicy policy)
    {
        var failures = new List<string>();
        foreach (var test in policy.Document.Tests)
        {
            RunOne(policy, test, failures);
        }

        return new PolicyTestReport(policy.Document.Tests.Count, failures);
    }

    private static void RunOne(CompiledPolicy policy, PolicyTestCase test, List<string> failures)
    {
        var where = test.Where;
        if (string.IsNullOrWhiteSpace(test.Src))
        {
            failures.Add($"{where}: \"src\" is required");
            return;
        }

        if (test.Accept.Length == 0 && test.Deny.Length == 0)
        {
            failures.Add($"{where}: a test needs \"accept\" or \"deny\"");
            return;
        }

        if (!PolicyParser.TryParseProtocol(test.Proto, out var protocols, out var protoProblem))
        {
            failures.Add($"{where}.proto: {protoProblem}");
            return;
        }

        var wanted = protocols ?? DefaultProtocols;
        var src = ResolveEndpoint(policy, test.Src.Trim(), $"{where}.src \"{test.Src}\"", "src", failures);
        if (src is null)
        {
            return;
        }

        for (var i = 0; i < test.Accept.Length; i++)
        {
            var w = $"{where}.accept[{i}] \"{test.Accept[i]}\"";
            var dst = ParseTestDestination(policy, test.Accept[i], w, failures);
            if (dst is { } d && !src.Ranges.ToArray().All(r => Allowed(policy, r, d.Set, d.Port, wanted)))
            {
                failures.Add($"{w}: {test.Src} cannot reach it; expected accept");
            }
        }

        for (var i = 0; i < test.Deny.Length; i++)
        {
            var w = $"{where}.deny[{i}] \"{test.Deny[i]}\"";
            var dst = ParseTestDestination(policy, test.Deny[i], w, failures);
            if (dst is { } d && src.Ranges.ToArray().Any(r => Allowed(policy, r, d.Set, d.Port, wanted)))
            {
                failures.Add($"{w}: {test.Src} can reach it; expected deny");
            }
        }
    }

    private static (IpSet Set, int Port)? ParseTestDestination(CompiledPolicy policy, string text, string where, List<string> failures)
    {
        if (!PolicyParser.TrySplitHostPort(text, out var host, out var portText))
        {
            failures.Add($"{where}: a test destination must be \"host:port\"");
            return null;
        }

        var ports = PolicyParser.ParsePorts(portText, out var problem);
        if (ports is null)
        {
            failures.Add($"{where}: {problem}");
            return null;
        }

        if (ports.Length != 1 || ports[0].First != ports[0].Last)
        {
            failures.Add($"{where}: a test destination names exactly one port");
            return null;
        }

        var set = ResolveEndpoint(policy, host, where, "dst", failures);
        return set is null ? null : (set, ports[0].First);
    }

    /// <summary>Resolves a test's source or destination host to addresses; reports why it cannot.</summary>
    private static IpSet? ResolveEndpoint(CompiledPolicy policy, string text, string where, string side, List<string> failures)
    {
        var errors = new List<string>();
        var alias = PolicyParser.ParseAlias(policy.Document, text, where, side == "src" ? "src" : "dst", errors.Add);
        if (alias is null)
        {
            failures.AddRange(errors);
            return null;
        }

        switch (alias.Kind)
        {
            case AliasKind.Wildcard or AliasKind.DangerAll or AliasKind.Internet or AliasKind.Self:
                failures.Add($"{where}: \"{text}\" cannot be used in tests");
                return null;
            case AliasKind.Prefix when text.Contains('/', StringComparison.Ordinal) && side == "dst":
                failures.Add($"{where}: a test destination must be a single host, not a CIDR");
                return null;
            case AliasKind.Host when side == "dst" && !(alias.Set!.Ranges.Length == 1 && alias.Set.Ranges[0].First == alias.Set.Ranges[0].Last):
                failures.Add($"{where}: host \"{text}\" is a CIDR; a test destination must be a single host");
                return null;
            case AliasKind.User when policy.Index.UsersFor(text).Count == 0:
                failures.Add($"{where}: user \"{text}\" does not exist");
                return null;
        }

        var set = policy.Compiler.Resolve(alias);
        if (set.IsEmpty)
        {
            failures.Add($"{where}: \"{text}\" has no addresses");
            return null;
        }

        return set;
    }

    private static bool Allowed(CompiledPolicy policy, IpRange src, IpSet dst, int port, int[] protocols)
    {
        if (!policy.Document.HasRules)
        {
            return true;
        }

        foreach (var rule in policy.Rules)
        {
            if (rule.Via is not null || !rule.Src.Overlaps(src) || !rule.MatchesProtocol(protocols))
            {
                continue;
            }

            foreach (var e in rule.Entries)
            {
                if (e.Net.Ports.Contains(port) && e.Set.Overlaps(dst))
                {
                    return true;
                }
            }

            foreach (var g in rule.NodeGroups)
            {
                if (g.Ports.Any(p => p.Contains(port)) && g.Nodes.Any(n => policy.Index.Nodes[n].HasAnyAddress(dst)))
                {
                    return true;
                }
            }
        }

        return false;
    }
}
