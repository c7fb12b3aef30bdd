using System.Net;
using System.Net.Sockets;

namespace Mesh.Operator.Tests.Process;

/// <summary>
/// `mesh-operator coordinator` and the admin verbs as a user runs them: separate processes in one
/// working directory, the verbs finding the coordinator through the default socket beside the
/// default database (`./mesh-data/mesh.db`). The config file changes only the ports, to free ones:
/// the defaults (8080, 9090, 3478, 3479) may be taken on a shared machine.
/// </summary>
public sealed class CoordinatorProcessTests : IDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "mesh-proc-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly int _httpPort = MeshOperatorProcess.FreePort();
    private readonly int _metricsPort = MeshOperatorProcess.FreePort();

    public CoordinatorProcessTests()
    {
        Directory.CreateDirectory(_directory);
        var stunPort = MeshOperatorProcess.FreePort(ProtocolType.Udp);
        var stunAlternatePort = stunPort;
        while (stunAlternatePort == stunPort)
        {
            stunAlternatePort = MeshOperatorProcess.FreePort(ProtocolType.Udp);
        }
        File.WriteAllText(Path.Combine(_directory, "ports.yaml"), $"""
            # The embedded defaults, but on free loopback ports.
            server_url: http://127.0.0.1:{_httpPort}
            listen_addr: 127.0.0.1:{_httpPort}
            metrics_listen_addr: 127.0.0.1:{_metricsPort}
            derp:
              server:
                stun_listen_addr: 127.0.0.1:{stunPort}
                stun_alternate_port: {stunAlternatePort}
            """);
    }

    [Fact]
    public async Task Coordinator_DefaultDatabaseAndSocket_AdminVerbsWorkAndStatePersistsAcrossRestart()
    {
        var coordinator = await StartCoordinatorAsync();
        await using (coordinator)
        {
            Assert.True(File.Exists(Path.Combine(_directory, "mesh-data", "mesh.db")), "the database is not at the default ./mesh-data/mesh.db");

            var create = await CliAsync("users", "create", "alice");
            Assert.True(create.Exit == 0, create.ToString());

            var users = await CliAsync("users", "list");
            Assert.True(users.Exit == 0, users.ToString());
            Assert.Contains(users.Out.Split('\n'), line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("alice"));

            var key = await CliAsync("preauthkeys", "create", "--user", "alice", "--reusable", "--expiration", "24h", "-o", "json");
            Assert.True(key.Exit == 0, key.ToString());
            var secret = key.Json.GetProperty("key").GetString()!;
            Assert.StartsWith("mskey-auth-", secret, StringComparison.Ordinal);

            foreach (var format in new[] { "table", "json" })
            {
                var keys = await CliAsync("preauthkeys", "list", "-o", format);
                Assert.True(keys.Exit == 0, keys.ToString());
                Assert.DoesNotContain(secret, keys.Out, StringComparison.Ordinal);
                Assert.DoesNotContain(secret[(secret.LastIndexOf('-') + 1)..], keys.Out, StringComparison.Ordinal);
                Assert.DoesNotContain(secret, keys.Err, StringComparison.Ordinal);
            }

            var nodes = await CliAsync("nodes", "list");
            Assert.True(nodes.Exit == 0, nodes.ToString());
            var nodesJson = await CliAsync("nodes", "list", "-o", "json");
            Assert.Equal(0, nodesJson.Json.GetArrayLength());

            const string policy = """
                // Only alice's nodes, only to SSH.
                {"acls": [{"action": "accept", "src": ["alice@"], "dst": ["alice@:22"]},],}
                """;
            await File.WriteAllTextAsync(Path.Combine(_directory, "policy.hujson"), policy, TestContext.Current.CancellationToken);
            var set = await CliAsync("policy", "set", "--file", "policy.hujson");
            Assert.True(set.Exit == 0, set.ToString());
            var get = await CliAsync("policy", "get");
            Assert.True(get.Exit == 0, get.ToString());
            Assert.Equal(policy.TrimEnd('\n'), get.Out.TrimEnd('\n'));

            await File.WriteAllTextAsync(Path.Combine(_directory, "bad.hujson"), """{"acls": [{"action": "accept", "src": ["group:nobody"], "dst": ["*:*"]}]}""", TestContext.Current.CancellationToken);
            var check = await CliAsync("policy", "check", "--file", "bad.hujson");
            Assert.True(check.Exit == 1, check.ToString());
            Assert.Contains("group:nobody", check.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", check.Err, StringComparison.Ordinal);
            Assert.Equal(policy.TrimEnd('\n'), (await CliAsync("policy", "get")).Out.TrimEnd('\n'));

            var apiKey = await CliAsync("apikeys", "create", "-o", "json");
            Assert.True(apiKey.Exit == 0, apiKey.ToString());
            Assert.StartsWith("mskey-api-", apiKey.Json.GetProperty("key").GetString()!, StringComparison.Ordinal);

            await StopAsync(coordinator);
        }

        var restarted = await StartCoordinatorAsync();
        await using (restarted)
        {
            var users = await CliAsync("users", "list", "-o", "json");
            Assert.True(users.Exit == 0, users.ToString());
            Assert.Contains(users.Json.EnumerateArray(), u => u.GetProperty("name").GetString() == "alice");
            Assert.Equal(0, (await CliAsync("policy", "get")).Exit);
            Assert.Contains("alice@:22", (await CliAsync("policy", "get")).Out, StringComparison.Ordinal);
            await StopAsync(restarted);
        }
    }

    [Fact]
    public async Task AdminVerb_NoCoordinatorRunning_ExitsOneWithAHint()
    {
        var result = await CliAsync("users", "list");

        Assert.True(result.Exit == 1, result.ToString());
        Assert.Contains("mesh-operator coordinator", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
    }

    private Task<ProcessResult> CliAsync(params string[] args) => MeshOperatorProcess.RunAsync(_directory, args);

    /// <summary>Starts the coordinator and waits until its socket is there and /healthz answers.</summary>
    private async Task<MeshOperatorProcess> StartCoordinatorAsync()
    {
        var process = MeshOperatorProcess.Start(_directory, "coordinator", "--config", "ports.yaml");
        var socket = Path.Combine(_directory, "mesh-data", "mesh.sock");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            Assert.False(process.HasExited, $"the coordinator exited early with {(process.HasExited ? process.ExitCode : 0)}\n{process}");
            if (File.Exists(socket) && await HealthyAsync(http))
            {
                return process;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the coordinator did not get ready (socket {socket}, /healthz on {_httpPort}) in 60 s\n{process}");

            // A pause between polls, bounded by the deadline above.
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    private async Task<bool> HealthyAsync(HttpClient http)
    {
        try
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{_httpPort}/healthz"), TestContext.Current.CancellationToken);
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task StopAsync(MeshOperatorProcess coordinator)
    {
        await coordinator.TerminateAsync();
        Assert.True(await coordinator.WaitForExitAsync(StopTimeout), $"the coordinator still runs {StopTimeout} after SIGTERM\n{coordinator}");
        Assert.True(coordinator.ExitCode == 0, $"the coordinator exited {coordinator.ExitCode} after SIGTERM\n{coordinator}");
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
