using System.CommandLine;
using Mesh.Policy;

namespace Mesh.Operator.Commands;

/// <summary>
/// <c>mesh-operator policy compile --policy FILE --topology FILE</c>: offline and pure, prints the packet filter
/// every node of the topology would receive, as <c>{"node": [FilterRule, ...] | null}</c>. The topology file has the
/// shape of the conformance corpus's "topology" object. Create() returns the "compile" verb; it belongs under
/// the "policy" command.
/// </summary>
internal static class PolicyCompileCommand
{
    public static Command Create()
    {
        var policy = new Option<FileInfo>("--policy")
        {
            Description = "Policy file (Tailscale's HuJSON policy format)",
            Required = true,
        };
        var topology = new Option<FileInfo>("--topology")
        {
            Description = "Topology file: {\"users\": [...], \"nodes\": {...}} as in shared/conformance/tailscale-policy",
            Required = true,
        };
        var command = new Command("compile", "Print the packet filter each node would receive (offline)");
        command.Options.Add(policy);
        command.Options.Add(topology);
        command.SetAction(parseResult =>
            Run(parseResult.GetValue(policy)!, parseResult.GetValue(topology)!, Console.Out, Console.Error));
        return command;
    }

    /// <summary>Reads both files, compiles, writes JSON to <paramref name="stdout"/>; 1 and a message on error.</summary>
    internal static int Run(FileInfo policy, FileInfo topology, TextWriter stdout, TextWriter stderr)
    {
        string policyText, topologyText;
        try
        {
            policyText = File.ReadAllText(policy.FullName);
            topologyText = File.ReadAllText(topology.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }

        try
        {
            stdout.WriteLine(PolicyJson.CompileToJson(policyText, topologyText));
            return 0;
        }
        catch (PolicyException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
