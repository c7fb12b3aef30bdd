namespace Mesh.Policy;

/// <summary>
/// Mesh.Policy: the mesh's access policy, in Tailscale's policy-file format (groups, hosts, tagOwners, acls,
/// grants, autoApprovers, tests), parsed, validated and compiled into per-node packet filters that decide exactly
/// as Tailscale's control plane does (checked against the recorded corpus in ../shared/conformance).
/// It is pure: no I/O, no clock; the caller passes the policy text and the topology, and gets an immutable
/// <see cref="ICompiledPolicy"/>. It is not the enforcement: nodes filter packets; the coordinator
/// (Mesh.Control) builds netmaps from <see cref="ICompiledPolicy.FilterFor"/> and <see cref="ICompiledPolicy.PeersOf"/>.
/// </summary>
public static class PolicyEngine
{
    /// <summary>
    /// Parses, validates and compiles <paramref name="policyText"/> against <paramref name="topology"/>, then runs
    /// the policy's <c>tests</c> block unless <paramref name="runTests"/> is false (boot-time reload of a stored
    /// policy should not be locked out by a test naming a deleted user).
    /// </summary>
    /// <exception cref="PolicyException">The policy is invalid or a test fails.</exception>
    public static ICompiledPolicy Compile(string policyText, PolicyTopology topology, long version = 0, bool runTests = true)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var doc = PolicyParser.Parse(policyText);
        var compiled = new CompiledPolicy(doc, topology, version);
        if (runTests)
        {
            var report = compiled.RunTests();
            if (!report.Passed)
            {
                throw new PolicyException("test(s) failed:\n" + string.Join('\n', report.Failures)) { Problems = report.Failures };
            }
        }

        return compiled;
    }

    /// <summary>Validates the policy on its own (no topology, no tests).</summary>
    /// <exception cref="PolicyException">The policy is invalid.</exception>
    public static void Check(string policyText) => PolicyParser.Parse(policyText);
}
