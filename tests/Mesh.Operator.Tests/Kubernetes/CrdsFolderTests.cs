using System.CommandLine;
using Mesh.Operator.Commands;
using Mesh.Operator.Kubernetes.Crds;

namespace Mesh.Operator.Tests.Kubernetes;

/// <summary><c>mesh-operator crds</c> and the repository's <c>crds/</c>, which must be its output.</summary>
public sealed class CrdsFolderTests
{
    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var root = new RootCommand("mesh-operator (test)") { CrdsCommand.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void CrdsFolder_MatchesTheGenerator()
    {
        var expected = CrdYaml.Files();
        var problems = new List<string>();
        foreach (var (name, content) in expected)
        {
            var path = Path.Combine(RepoPaths.Crds, name);
            if (!File.Exists(path))
            {
                problems.Add($"crds/{name} is missing");
            }
            else if (File.ReadAllText(path).ReplaceLineEndings("\n") is var actual && actual != content)
            {
                problems.Add($"crds/{name} differs from what the C# types generate; {FirstDifference(content, actual)}");
            }
        }

        var stale = Directory.Exists(RepoPaths.Crds)
            ? Directory.GetFiles(RepoPaths.Crds, "*.yaml").Select(Path.GetFileName).Except(expected.Select(static e => e.Name)).ToList()
            : [];
        problems.AddRange(stale.Select(static s => $"crds/{s} is not generated any more (delete it)"));
        Assert.True(
            problems.Count == 0,
            string.Join('\n', problems) + $"\nThe CRDs are generated from operator/Mesh.Operator/Kubernetes/Resources: run `{CrdYaml.RegenerateCommand}` " +
            "(dotnet run --project operator/Mesh.Operator -- crds --output crds/) and commit the result.");
    }

    private static string FirstDifference(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        for (var i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            var want = i < e.Length ? e[i] : "(end of file)";
            var got = i < a.Length ? a[i] : "(end of file)";
            if (want != got)
            {
                return $"first difference at line {i + 1}:\n  generated: {want}\n  in crds/:  {got}";
            }
        }

        return "they differ";
    }

    [Fact]
    public async Task Crds_NoFlags_PrintsEveryCrdAsOneStream()
    {
        var result = await RunAsync("crds");
        Assert.Equal(0, result.Exit);
        Assert.Equal("", result.Err);
        Assert.Equal(CrdYaml.Stream(), result.Out);
        var documents = YamlJson.Documents(result.Out);
        Assert.Equal(
            ["meshnetworks.mesh.meshoperator.io", "meshnodes.mesh.meshoperator.io", "meshacls.mesh.meshoperator.io"],
            documents.Select(static d => d!["metadata"]!["name"]!.GetValue<string>()));
        Assert.All(documents, static d => Assert.Equal("apiextensions.k8s.io/v1", d!["apiVersion"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Crds_Output_WritesOneFilePerCrd()
    {
        var dir = Directory.CreateTempSubdirectory("mesh-crds-");
        try
        {
            var target = Path.Combine(dir.FullName, "out");
            var result = await RunAsync("crds", "--output", target);
            Assert.Equal(0, result.Exit);
            var written = Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(["mesh.meshoperator.io_meshacls.yaml", "mesh.meshoperator.io_meshnetworks.yaml", "mesh.meshoperator.io_meshnodes.yaml"], written);
            foreach (var (name, content) in CrdYaml.Files())
            {
                Assert.Equal(content, File.ReadAllText(Path.Combine(target, name)));
                Assert.Contains($"wrote {Path.Combine(target, name)}", result.Out, StringComparison.Ordinal);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Crds_OutputIsAFile_ExitOneWithTheReason()
    {
        var file = Path.GetTempFileName();
        try
        {
            var result = await RunAsync("crds", "--output", file);
            Assert.Equal(1, result.Exit);
            Assert.StartsWith("error: ", result.Err, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Generation_IsDeterministic()
    {
        Assert.Equal(CrdYaml.Stream(), CrdYaml.Stream());
    }
}
