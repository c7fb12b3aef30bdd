using System.CommandLine;
using Mesh.Operator.Commands;
using static Mesh.Operator.Tests.Injection.InjectionFixtures;

namespace Mesh.Operator.Tests.Injection;

/// <summary>`mesh-operator inject` as a command: flags, files and standard input, exit codes.</summary>
public sealed class InjectCommandTests
{
    private const string Deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: shop}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: nginx}]

        """;

    [Fact]
    public async Task File_InjectedLikeTheGoldenFiles()
    {
        var file = Path.Combine(TestData, "deployment.in.yaml");
        var result = await RunAsync(CliArguments(file));
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal(File.ReadAllText(Path.Combine(TestData, "deployment.golden.yaml")), result.Out);
        Assert.Equal("", result.Err);
    }

    [Fact]
    public async Task Dash_ReadsStandardInput()
    {
        var result = await RunAsync(["inject", "-f", "-", "--login-server", LoginServer, "--cluster-dns", "10.96.0.10"], stdin: Deployment);
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Contains("- name: mesh-sidecar\n", result.Out, StringComparison.Ordinal);
        Assert.Contains("image: meshoperator/mesh-sidecar:latest\n", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Flags_ReachTheSidecar()
    {
        var result = await RunAsync(
            ["inject", "-f", "-", "--login-server", "https://mesh.example.com", "--image", "registry.example/mesh-sidecar:1.2", "--network", "lab",
             "--authkey-secret", "lab-key", "--authkey-secret-key", "key", "--base-domain", "lab.example", "--cluster-dns", "10.43.0.10",
             "--cluster-domain", "k3s.local"],
            stdin: Deployment);
        Assert.True(result.Exit == 0, result.ToString());
        foreach (var expected in new[]
        {
            "value: https://mesh.example.com\n", "image: registry.example/mesh-sidecar:1.2\n", "name: lab-key\n", "key: key\n",
            "- lab.example\n", "- 10.43.0.10\n", "- shop.svc.k3s.local\n", "\"network\":\"lab\"",
        })
        {
            Assert.Contains(expected, result.Out, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task MagicDnsFalse_DnsLeftAloneAndNoClusterDnsNeeded()
    {
        var result = await RunAsync(["inject", "-f", "-", "--login-server", LoginServer, "--magic-dns=false"], stdin: Deployment);
        Assert.True(result.Exit == 0, result.ToString());
        Assert.DoesNotContain("dnsPolicy", result.Out, StringComparison.Ordinal);
        Assert.Contains("- name: mesh-sidecar\n", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NamespaceFlag_UsedForDocumentsWithoutOne()
    {
        var result = await RunAsync(["inject", "-f", "-", "--login-server", LoginServer, "--cluster-dns", "10.96.0.10", "-n", "team-a"], stdin: Deployment.Replace(", namespace: shop", "", StringComparison.Ordinal));
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Contains("- team-a.svc.cluster.local\n", result.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--login-server", "not a url", "--login-server \"not a url\"")]
    [InlineData("--cluster-dns", "10.96.0", "--cluster-dns \"10.96.0\"")]
    [InlineData("--network", "Bad_Name", "network \"Bad_Name\"")]
    [InlineData("--authkey-secret", "UPPER", "Secret \"UPPER\"")]
    public async Task BadFlag_ExitOneWithTheReason(string flag, string value, string expected)
    {
        var args = new List<string> { "inject", "-f", "-", "--login-server", LoginServer, "--cluster-dns", "10.96.0.10" };
        var at = args.IndexOf(flag);
        if (at >= 0)
        {
            args[at + 1] = value;
        }
        else
        {
            args.AddRange([flag, value]);
        }

        var result = await RunAsync([.. args], stdin: Deployment);
        Assert.Equal(1, result.Exit);
        Assert.Equal("", result.Out);
        Assert.Contains(expected, result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingFile_ExitOne()
    {
        var result = await RunAsync(["inject", "-f", "/nonexistent/manifests.yaml", "--login-server", LoginServer]);
        Assert.Equal(1, result.Exit);
        Assert.StartsWith("error: ", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedDocument_ExitOneNothingOnStdout()
    {
        var result = await RunAsync(["inject", "-f", "-", "--login-server", LoginServer, "--cluster-dns", "10.96.0.10"], stdin: Deployment + "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: broken}\nspec: {}\n");
        Assert.Equal(1, result.Exit);
        Assert.Equal("", result.Out);
        Assert.Equal("error: document 2 (DaemonSet broken): spec.template is missing or not a mapping\n", result.Err);
    }

    [Fact]
    public async Task Warnings_GoToStandardErrorAndTheOutputStillComes()
    {
        var hostDns = Deployment.Replace("containers: [{name: web, image: nginx}]", "dnsPolicy: Default\n      containers: [{name: web, image: nginx}]", StringComparison.Ordinal);
        var result = await RunAsync(["inject", "-f", "-", "--login-server", LoginServer, "--cluster-dns", "10.96.0.10"], stdin: hostDns);
        Assert.Equal(0, result.Exit);
        Assert.StartsWith("warning: document 1 (Deployment shop/web): spec.template: dnsPolicy Default", result.Err, StringComparison.Ordinal);
        Assert.Contains("mesh-sidecar", result.Out, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(string[] args, string stdin = "")
    {
        var root = new RootCommand("mesh-operator (test)") { InjectCommand.Create(new StringReader(stdin)) };
        using var output = new StringWriter { NewLine = "\n" };
        using var error = new StringWriter { NewLine = "\n" };
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }
}
