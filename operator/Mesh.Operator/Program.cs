using System.CommandLine;
using Mesh.Operator.Commands;

namespace Mesh.Operator;

/// <summary>
/// `mesh-operator`: the coordination server (`coordinator`), the admin verbs that talk to it
/// (`users`, `preauthkeys`, `nodes`, `routes`, `policy`, `apikeys`), and the offline
/// `policy compile`, `crds` (the CustomResourceDefinitions generated from the resource types) and
/// `inject` (the sidecar injection the admission webhook will do, offline). The Kubernetes operator
/// itself (`run`) comes with its own issue.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("mesh-operator: the MeshOperator coordination server and its admin tools");
        root.Add(CoordinatorCommand.Create());
        root.Add(CrdsCommand.Create());
        root.Add(InjectCommand.Create());
        foreach (var command in AdminCommands.Create())
        {
            if (command.Name == "policy")
            {
                command.Add(PolicyCompileCommand.Create());
            }

            root.Add(command);
        }

        return root.Parse(args).Invoke();
    }
}
