namespace Mesh.Operator.Tests.Process;

/// <summary>`mesh-operator coordinator --config FILE` refusing a bad file: exit 1, one message naming the key, nothing started.</summary>
public sealed class CoordinatorConfigProcessTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "mesh-proc-" + Guid.NewGuid().ToString("N")[..10]);

    public CoordinatorConfigProcessTests() => Directory.CreateDirectory(_directory);

    [Theory]
    [InlineData("listen_adr: 127.0.0.1:1\n", "listen_adr")]
    [InlineData("metrics_listen_addr: nowhere\n", "metrics_listen_addr")]
    [InlineData("prefixes: {v4: 10.0.0.0/33}\n", "prefixes.v4")]
    [InlineData("dns:\n  base_domian: mesh.internal\n", "base_domian")]
    [InlineData("ephemeral_node_inactivity_timeout: soon\n", "ephemeral_node_inactivity_timeout")]
    public async Task Coordinator_MalformedConfig_ExitsOneNamingTheKey(string yaml, string key)
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "bad.yaml"), yaml, TestContext.Current.CancellationToken);

        var result = await MeshOperatorProcess.RunAsync(_directory, "coordinator", "--config", "bad.yaml");

        Assert.True(result.Exit == 1, result.ToString());
        Assert.Contains(key, result.Err, StringComparison.Ordinal);
        Assert.Contains("bad.yaml", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err + result.Out, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_directory, "mesh-data")), "a refused config still created the data directory");
    }

    [Fact]
    public async Task Coordinator_MissingConfigFile_ExitsOne()
    {
        var result = await MeshOperatorProcess.RunAsync(_directory, "coordinator", "--config", "absent.yaml");

        Assert.True(result.Exit == 1, result.ToString());
        Assert.Contains("absent.yaml", result.Err, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
