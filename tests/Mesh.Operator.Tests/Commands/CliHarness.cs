using System.CommandLine;
using Mesh.Operator.Commands;

namespace Mesh.Operator.Tests.Commands;

/// <summary>Runs `mesh-operator` admin verbs in-process with captured stdout and stderr and a fixed clock.</summary>
internal static class CliHarness
{
    public static async Task<CliResult> RunAsync(DateTimeOffset now, params string[] args)
    {
        var root = new RootCommand("mesh-operator (test)");
        foreach (var command in AdminCommands.Create(new FixedTime(now)))
        {
            root.Add(command);
        }

        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return new CliResult(exit, output.ToString(), error.ToString());
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}

internal sealed record CliResult(int Exit, string Out, string Err)
{
    public string[] Lines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public System.Text.Json.JsonElement Json => System.Text.Json.JsonDocument.Parse(Out).RootElement.Clone();

    public override string ToString() => $"exit {Exit}\nstdout:\n{Out}\nstderr:\n{Err}";
}
