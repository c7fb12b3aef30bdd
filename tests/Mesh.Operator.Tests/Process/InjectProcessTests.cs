using System.Diagnostics;
using Mesh.Operator.Tests.Injection;

namespace Mesh.Operator.Tests.Process;

/// <summary>`mesh-operator inject -f -` as a user runs it: the real executable, manifests piped into its standard input.</summary>
public sealed class InjectProcessTests
{
    [Fact]
    public async Task Stdin_Multi_PrintsTheGoldenOutput()
    {
        var input = await File.ReadAllTextAsync(Path.Combine(InjectionFixtures.TestData, "multi.in.yaml"), TestContext.Current.CancellationToken);
        var (exit, stdout, stderr) = await RunAsync(input, InjectionFixtures.CliArguments("-"));
        Assert.True(exit == 0, stderr);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(InjectionFixtures.TestData, "multi.golden.yaml"), TestContext.Current.CancellationToken), stdout);
        Assert.StartsWith("warning: document 5 (DaemonSet kube-system/node-agent)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stdin_Malformed_ExitOneAndNothingOnStdout()
    {
        var (exit, stdout, stderr) = await RunAsync("apiVersion: v1\nkind: Pod\nmetadata: {name: p\n", InjectionFixtures.CliArguments("-"));
        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.StartsWith("error: document 1: line ", stderr, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(string stdin, string[] args)
    {
        var info = new ProcessStartInfo(MeshOperatorProcess.DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(MeshOperatorProcess.DllPath);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        var stdout = process.StandardOutput.ReadToEndAsync(deadline.Token);
        var stderr = process.StandardError.ReadToEndAsync(deadline.Token);
        await process.StandardInput.WriteAsync(stdin.AsMemory(), deadline.Token);
        process.StandardInput.Close();
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
