using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Mesh.Control.Admin;
using Mesh.Control.Tests.Admin;
using Mesh.Operator.Cli;
using Mesh.Operator.Commands;

namespace Mesh.Operator.Tests.Commands;

/// <summary>The admin verbs end to end: parsed in-process, over the admin socket (or TCP) to a real API on a fake coordinator.</summary>
public sealed class AdminCommandsTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = FakeMeshAdmin.Now;

    private AdminTestServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await AdminTestServer.StartAsync();

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task UsersCreate_Table_PrintsTheUser()
    {
        var result = await RunAsync("users", "create", "alice", "--email", "alice@example.com");
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal("ID  | Name  | Display name | Email             | Created", result.Lines[0]);
        Assert.Matches(@"^\d+ +\| alice \| +\| alice@example\.com \| 2025-06-01T12:00:00Z$", result.Lines[1]);
    }

    [Fact]
    public async Task UsersListAndDelete_Json()
    {
        await _server.Admin.CreateUserAsync("alice", null, "Alice", Ct);
        await _server.Admin.CreateUserAsync("bob", null, null, Ct);
        var list = await RunAsync("users", "list", "-o", "json");
        Assert.Equal(0, list.Exit);
        Assert.Equal(["alice", "bob"], list.Json.EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        Assert.Equal("Alice", list.Json[0].GetProperty("displayName").GetString());

        var deleted = await RunAsync("users", "delete", "bob", "-o", "json");
        Assert.Equal(0, deleted.Exit);
        Assert.True(deleted.Json.GetProperty("deleted").GetBoolean());
        Assert.Single(await _server.Admin.ListUsersAsync(Ct));
    }

    [Fact]
    public async Task UsersDelete_Refused_ExitOneWithTheServersMessage()
    {
        _server.Admin.AddNode("alice", "laptop");
        var result = await RunAsync("users", "delete", "alice");
        Assert.Equal(1, result.Exit);
        Assert.Equal("", result.Out);
        Assert.Equal("error: user \"alice\" still owns nodes; delete them first", result.Err.Trim());
    }

    [Fact]
    public async Task PreAuthKeysCreate_Json_CarriesTheSecretKeyField()
    {
        _server.Admin.AddNode("alice", "laptop");
        var result = await RunAsync("preauthkeys", "create", "--user", "alice", "--reusable", "--ephemeral", "--expiration", "24h", "--tags", "tag:a,tag:b", "-o", "json");
        Assert.True(result.Exit == 0, result.ToString());
        var json = result.Json;
        Assert.StartsWith(json.GetProperty("prefix").GetString()!, json.GetProperty("key").GetString()!);
        Assert.True(json.GetProperty("reusable").GetBoolean());
        Assert.True(json.GetProperty("ephemeral").GetBoolean());
        var request = _server.Admin.LastPreAuthKeyRequest!;
        Assert.Equal(("alice", true, true, TimeSpan.FromHours(24)), (request.User, request.Reusable, request.Ephemeral, request.Expiration));
        Assert.Equal(["tag:a", "tag:b"], request.Tags);
    }

    [Fact]
    public async Task PreAuthKeysCreate_Table_ShowsKeyOnceAndListNever()
    {
        _server.Admin.AddNode("alice", "laptop");
        var created = await RunAsync("preauthkeys", "create", "-u", "alice");
        Assert.True(created.Exit == 0, created.ToString());
        Assert.EndsWith("| Key", created.Lines[0]);
        var row = created.Lines[1].Split(" | ").Select(c => c.Trim()).ToArray();
        var key = row[^1];
        Assert.Contains("_preauthsecret", key);
        Assert.Contains("shown this once only", created.Err);
        Assert.Null(_server.Admin.LastPreAuthKeyRequest!.Expiration);

        var list = await RunAsync("preauthkeys", "list", "--user", "alice");
        Assert.Equal(0, list.Exit);
        Assert.DoesNotContain(key, list.Out);
        Assert.StartsWith("ID ", list.Lines[0]);
        Assert.Equal(2, list.Lines.Length);
        var listJson = await RunAsync("preauthkeys", "list", "-o", "json");
        Assert.DoesNotContain(key, listJson.Out);
        Assert.False(listJson.Json[0].TryGetProperty("key", out _));
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("5ms")]
    [InlineData("-1h")]
    public async Task PreAuthKeysCreate_BadExpiration_ExitOneNamingIt(string expiration)
    {
        var result = await RunAsync("preauthkeys", "create", "--user", "alice", "--expiration", expiration);
        Assert.Equal(1, result.Exit);
        Assert.StartsWith("error: --expiration: invalid duration", result.Err);
        Assert.Null(_server.Admin.LastPreAuthKeyRequest);
    }

    [Fact]
    public async Task PreAuthKeysCreate_WithoutUser_IsAParseError()
    {
        var result = await RunAsync("preauthkeys", "create");
        Assert.Equal(1, result.Exit);
        Assert.Contains("--user", result.Err);
    }

    [Fact]
    public async Task PreAuthKeysExpire_ByPrefix()
    {
        _server.Admin.AddNode("alice", "laptop");
        var key = await _server.Admin.CreatePreAuthKeyAsync(new PreAuthKeyRequest("alice", false, false, TimeSpan.FromDays(1), []), Ct);
        var result = await RunAsync("preauthkeys", "expire", key.View.Prefix);
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal(Now, (await _server.Admin.ListPreAuthKeysAsync(null, Ct)).Single().Expiration);
        var missing = await RunAsync("preauthkeys", "expire", "nope");
        Assert.Equal(1, missing.Exit);
        Assert.Contains("not found", missing.Err);
    }

    [Fact]
    public async Task NodesList_Table_IsAligned()
    {
        _server.Admin.AddNode("alice", "laptop");
        _server.Admin.AddNode("bob", "a-much-longer-node-name");
        var result = await RunAsync("nodes", "list");
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal(3, result.Lines.Length);
        Assert.StartsWith("ID  | Name                    | Hostname", result.Lines[0]);
        var bars = result.Lines.Select(line => Enumerable.Range(0, line.Length).Where(i => line[i] == '|').ToArray()).ToArray();
        Assert.All(bars, b => Assert.Equal(bars[0], b));
        Assert.Contains("| 100.64.0.", result.Lines[1]);
        Assert.Contains("| offline   | 5m ago", result.Out);
        Assert.Contains("| online    | now", result.Out);
    }

    [Fact]
    public async Task NodesList_ByUser_Json()
    {
        var alices = _server.Admin.AddNode("alice", "laptop");
        _server.Admin.AddNode("bob", "server");
        var result = await RunAsync("nodes", "list", "--user", "alice", "-o", "json");
        Assert.Equal(0, result.Exit);
        var node = Assert.Single(result.Json.EnumerateArray());
        Assert.Equal(alices.Id, node.GetProperty("id").GetInt64());
        Assert.Equal(alices.NodeKey, node.GetProperty("nodeKey").GetString());
    }

    [Fact]
    public async Task NodesTagRenameExpireDelete()
    {
        var node = _server.Admin.AddNode("alice", "laptop");
        var id = node.Id.ToString(CultureInfo.InvariantCulture);

        var tagged = await RunAsync("nodes", "tag", "-i", id, "-t", "tag:web", "-t", "tag:db,tag:prod", "-o", "json");
        Assert.True(tagged.Exit == 0, tagged.ToString());
        Assert.Equal(["tag:web", "tag:db", "tag:prod"], tagged.Json.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));

        var badTag = await RunAsync("nodes", "tag", "-i", id, "-t", "web");
        Assert.Equal(1, badTag.Exit);
        Assert.Contains("tag:name", badTag.Err);

        var renamed = await RunAsync("nodes", "rename", "-i", id, "desk");
        Assert.True(renamed.Exit == 0, renamed.ToString());
        Assert.Contains("| desk ", renamed.Lines[1]);

        var expired = await RunAsync("nodes", "expire", "-i", id);
        Assert.Equal(0, expired.Exit);
        Assert.EndsWith("| expired", expired.Lines[1]);

        var deleted = await RunAsync("nodes", "delete", "-i", id);
        Assert.Equal(0, deleted.Exit);
        Assert.Equal($"Node {id} deleted", deleted.Out.Trim());
        Assert.Empty(await _server.Admin.ListNodesAsync(null, Ct));
    }

    [Theory]
    [InlineData("nodes", "tag", "-i", "9999", "-t", "tag:x")]
    [InlineData("nodes", "expire", "-i", "9999")]
    [InlineData("nodes", "rename", "-i", "9999", "x")]
    [InlineData("nodes", "delete", "-i", "9999")]
    [InlineData("routes", "enable", "-r", "9999")]
    public async Task UnknownIds_ExitOneWithNotFound(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.Equal(1, result.Exit);
        Assert.Matches("^error: .* not found", result.Err);
    }

    [Theory]
    [InlineData("nodes", "delete", "-i", "abc")]
    [InlineData("nodes", "delete")]
    [InlineData("nodes", "rename", "-i", "1")]
    [InlineData("routes", "enable")]
    [InlineData("users", "list", "-o", "yaml")]
    public async Task BadArguments_ExitOne(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.Equal(1, result.Exit);
        Assert.NotEmpty(result.Err);
    }

    [Fact]
    public async Task Routes_ListEnableDisable()
    {
        _server.Admin.AddNode("alice", "router", "10.0.0.0/24", "0.0.0.0/0");
        var route = _server.Admin.Routes[0];
        var list = await RunAsync("routes", "list");
        Assert.Equal(0, list.Exit);
        Assert.Equal("ID  | Node   | Prefix      | Advertised | Enabled | Primary", list.Lines[0]);
        Assert.Equal(3, list.Lines.Length);

        var enabled = await RunAsync("routes", "enable", "-r", route.Id.ToString(CultureInfo.InvariantCulture), "-o", "json");
        Assert.True(enabled.Exit == 0, enabled.ToString());
        Assert.True(enabled.Json.GetProperty("enabled").GetBoolean());
        var disabled = await RunAsync("routes", "disable", "-r", route.Id.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(0, disabled.Exit);
        Assert.Contains("| no      |", disabled.Lines[1]);
    }

    [Fact]
    public async Task Policy_SetGetCheckTest()
    {
        var directory = Path.GetDirectoryName(_server.SocketPath)!;
        var good = Path.Combine(directory, "good.hujson");
        var invalid = Path.Combine(directory, "invalid.hujson");
        var failing = Path.Combine(directory, "failing.hujson");
        await File.WriteAllTextAsync(good, "{\n  // comments are fine\n  \"acls\": [],\n  \"tests\": [],\n}\n", Ct);
        await File.WriteAllTextAsync(invalid, "{\"invalid\": true}", Ct);
        await File.WriteAllTextAsync(failing, "{\"tests\": [\"fail\"]}", Ct);

        var empty = await RunAsync("policy", "get");
        Assert.Equal(0, empty.Exit);
        Assert.Equal("", empty.Out);
        Assert.Contains("No policy", empty.Err);

        var check = await RunAsync("policy", "check", "--file", good);
        Assert.True(check.Exit == 0, check.ToString());
        Assert.Equal("Policy is valid", check.Out.Trim());

        var badCheck = await RunAsync("policy", "check", "--file", invalid);
        Assert.Equal(1, badCheck.Exit);
        Assert.Contains("error: acls[0]: unknown field", badCheck.Err);

        var set = await RunAsync("policy", "set", "--file", good);
        Assert.True(set.Exit == 0, set.ToString());
        var get = await RunAsync("policy", "get");
        Assert.Equal(await File.ReadAllTextAsync(good, Ct), get.Out);
        var getJson = await RunAsync("policy", "get", "-o", "json");
        Assert.Contains("\"2025-06-01T12:00:00+00:00\"", getJson.Out);
        Assert.Equal("2025-06-01T12:00:00+00:00", getJson.Json.GetProperty("updatedAt").GetString());

        var badSet = await RunAsync("policy", "set", "--file", invalid);
        Assert.Equal(1, badSet.Exit);
        Assert.Contains("unknown field", badSet.Err);
        Assert.Equal(await File.ReadAllTextAsync(good, Ct), (await _server.Admin.GetPolicyAsync(Ct)).Policy);

        var passing = await RunAsync("policy", "test", "--file", good);
        Assert.True(passing.Exit == 0, passing.ToString());
        Assert.Equal("PASS alice -> web:80", passing.Out.Trim());

        var failed = await RunAsync("policy", "test", "--file", failing);
        Assert.Equal(1, failed.Exit);
        Assert.Equal(["PASS alice -> web:80", "FAIL alice -> web:22"], failed.Lines);
        Assert.Contains("test 1 failed", failed.Err);

        var failedJson = await RunAsync("policy", "test", "--file", failing, "-o", "json");
        Assert.Equal(1, failedJson.Exit);
        Assert.False(failedJson.Json.GetProperty("valid").GetBoolean());

        var missing = await RunAsync("policy", "set", "--file", Path.Combine(directory, "absent.hujson"));
        Assert.Equal(1, missing.Exit);
        Assert.Contains("not found", missing.Err);
    }

    [Fact]
    public void CreatePolicy_AcceptsAnExtraSubcommand()
    {
        var policy = AdminCommands.CreatePolicy();
        var compile = new Command("compile", "offline");
        var topology = new Option<string>("--topology");
        compile.Add(topology);
        compile.SetAction(_ => 7);
        policy.Add(compile);
        var root = new RootCommand { policy };
        var parse = root.Parse(["policy", "compile", "--topology", "t.json"]);
        Assert.Empty(parse.Errors);
        Assert.Equal(7, parse.Invoke());
        Assert.Equal(["check", "set", "get", "test", "compile"], policy.Subcommands.Select(c => c.Name));
        Assert.DoesNotContain(compile.Options, o => o.Name is "--socket" or "--server");
    }

    [Fact]
    public async Task ApiKeys_CreateListExpire()
    {
        var created = await RunAsync("apikeys", "create", "--expiration", "90d", "-o", "json");
        Assert.True(created.Exit == 0, created.ToString());
        var key = created.Json.GetProperty("key").GetString()!;
        var prefix = created.Json.GetProperty("prefix").GetString()!;
        Assert.StartsWith(prefix, key);
        Assert.Equal(TimeSpan.FromDays(90), _server.Admin.LastApiKeyExpiration);

        var list = await RunAsync("apikeys", "list");
        Assert.Equal(0, list.Exit);
        Assert.Contains(prefix, list.Out);
        Assert.DoesNotContain(key, list.Out);
        Assert.Contains("(expired)", list.Out);

        var tableCreate = await RunAsync("apikeys", "create");
        Assert.Equal(0, tableCreate.Exit);
        Assert.Contains("_apisecret", tableCreate.Lines[1]);

        Assert.Equal(0, (await RunAsync("apikeys", "expire", prefix)).Exit);
        Assert.Equal(0, (await RunAsync("apikeys", "expire", "--prefix", "mapi_live0000")).Exit);
        var none = await RunAsync("apikeys", "expire");
        Assert.Equal(1, none.Exit);
        Assert.Contains("prefix", none.Err);
    }

    [Fact]
    public async Task Server_WithApiKey_WorksOverTcp_AndBadKeyIsExitOne()
    {
        await _server.Admin.CreateUserAsync("alice", null, null, Ct);
        var server = _server.TcpBase.ToString();
        var ok = await CliHarness.RunAsync(Now, "users", "list", "--server", server, "--api-key", FakeMeshAdmin.ApiKey, "-o", "json");
        Assert.True(ok.Exit == 0, ok.ToString());
        Assert.Equal("alice", ok.Json[0].GetProperty("name").GetString());

        var bad = await CliHarness.RunAsync(Now, "users", "list", "--server", server, "--api-key", "mapi_wrong");
        Assert.Equal(1, bad.Exit);
        Assert.Equal("error: invalid or expired API key", bad.Err.Trim());
    }

    [Fact]
    public async Task Unreachable_Socket_ExplainsWhatToDo()
    {
        var path = Path.Combine(Path.GetDirectoryName(_server.SocketPath)!, "nobody-here.sock");
        var result = await CliHarness.RunAsync(Now, "nodes", "list", "--socket", path);
        Assert.Equal(1, result.Exit);
        Assert.Equal("", result.Out);
        Assert.StartsWith($"error: cannot reach the coordinator at {path}: no such socket ", result.Err);
        Assert.EndsWith("(is `mesh-operator coordinator` running? pass --socket or --server)", result.Err.TrimEnd());
    }

    [Theory]
    [InlineData("--socket", "")]
    [InlineData("--server", "ftp://example.invalid", "--api-key", "k")]
    [InlineData("--server", "http://127.0.0.1:1")]
    public async Task BadConnectionFlags_ExitOneWithoutAStackTrace(params string[] flags)
    {
        var result = await CliHarness.RunAsync(Now, ["users", "list", .. flags]);
        Assert.Equal(1, result.Exit);
        Assert.StartsWith("error: ", result.Err);
        Assert.DoesNotContain("   at ", result.Err);
    }

    [Fact]
    public void Connect_Precedence_FlagsThenEnvironmentThenDefault()
    {
        var env = new Dictionary<string, string?>();
        string? Env(string name) => env.GetValueOrDefault(name);

        using (var client = AdminVerb.Connect(null, null, null, Env))
        {
            Assert.Equal(AdminVerb.DefaultSocket, client.Target);
        }

        env["MESH_SOCKET"] = "/run/mesh/admin.sock";
        using (var client = AdminVerb.Connect(null, null, null, Env))
        {
            Assert.Equal("/run/mesh/admin.sock", client.Target);
        }

        using (var client = AdminVerb.Connect("/tmp/x.sock", null, null, Env))
        {
            Assert.Equal("/tmp/x.sock", client.Target);
        }

        var noKey = Assert.Throws<UsageException>(() => AdminVerb.Connect(null, "http://127.0.0.1:8080", null, Env));
        Assert.Contains("--api-key", noKey.Message);
        env["MESH_API_KEY"] = "k";
        using (var client = AdminVerb.Connect("/tmp/x.sock", "http://127.0.0.1:8080", null, Env))
        {
            Assert.Equal("http://127.0.0.1:8080/", client.Target);
        }

        env["MESH_SERVER"] = "http://127.0.0.2:8080";
        using (var client = AdminVerb.Connect(null, null, null, Env))
        {
            Assert.Equal("http://127.0.0.2:8080/", client.Target);
        }

        Assert.Throws<UsageException>(() => AdminVerb.Connect(null, "127.0.0.1:8080", "k", Env));
    }

    [Fact]
    public async Task Help_ListsTheContractsVerbs()
    {
        var result = await CliHarness.RunAsync(Now, "nodes", "--help");
        Assert.Equal(0, result.Exit);
        foreach (var verb in new[] { "list", "tag", "expire", "rename", "delete" })
        {
            Assert.Contains(verb, result.Out);
        }
    }

    private Task<CliResult> RunAsync(params string[] args) => CliHarness.RunAsync(Now, [.. args, "--socket", _server.SocketPath]);
}
