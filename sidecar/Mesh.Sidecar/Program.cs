using System.CommandLine;
using Mesh.Sidecar.Commands;

namespace Mesh.Sidecar;

/// <summary>
/// `mesh-sidecar`: the node agent. Today it carries the standalone WireGuard interface
/// (`mesh-sidecar wg`); the mesh verbs (`up`, `status`, …) of DESIGN.md build on the same device.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("mesh-sidecar: the MeshOperator node agent (a userspace WireGuard)");
        root.Add(WgCommand.Create());
        return root.Parse(args).Invoke();
    }
}
