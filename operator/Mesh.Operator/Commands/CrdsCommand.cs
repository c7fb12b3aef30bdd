using System.CommandLine;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Commands;

/// <summary>
/// <c>mesh-operator crds [--output DIR]</c>: the CustomResourceDefinitions generated from the resource types. With no
/// flag, every CRD to stdout as one multi-document YAML stream (<c>mesh-operator crds | kubectl apply -f -</c>);
/// with <c>--output DIR</c>, one file per CRD in DIR (created if missing; other files are left alone), which is how
/// the repository's <c>crds/</c> is made.
/// </summary>
internal static class CrdsCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo?>("--output")
        {
            Description = "Write one file per CRD (<group>_<plural>.yaml) into this directory instead of printing them",
            HelpName = "DIR",
        };
        var command = new Command("crds", "Print the CustomResourceDefinitions (YAML) generated from the C# types");
        command.Options.Add(output);
        command.SetAction(parseResult =>
            Run(parseResult.GetValue(output), parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error));
        return command;
    }

    internal static int Run(DirectoryInfo? output, TextWriter stdout, TextWriter stderr)
    {
        if (output is null)
        {
            stdout.Write(CrdYaml.Stream());
            return 0;
        }

        try
        {
            Directory.CreateDirectory(output.FullName);
            foreach (var (name, content) in CrdYaml.Files())
            {
                var path = Path.Combine(output.FullName, name);
                File.WriteAllText(path, content);
                stdout.WriteLine($"wrote {path}");
            }

            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
