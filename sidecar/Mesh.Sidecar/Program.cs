using System.CommandLine;
using Mesh.Sidecar.Commands;

namespace Mesh.Sidecar;

/// <summary>
/// `mesh-sidecar`: the node agent (`up`, and `status`, `ip`, `down` over its local socket) and the
/// standalone WireGuard interface (`wg`), both on the same C# WireGuard device.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("mesh-sidecar: the MeshOperator node agent (a userspace WireGuard)");
        root.Add(WgCommand.Create());
        foreach (var command in AgentCommands.Create())
        {
            root.Add(command);
        }
        return root.Parse(args).Invoke();
    }
}
