using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Mesh.Control.Admin;

namespace Mesh.Control.Tests.Admin;

/// <summary>The admin API at the HTTP level: statuses, bodies, authentication, limits.</summary>
public sealed class AdminApiTests : IAsyncLifetime
{
    private AdminTestServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await AdminTestServer.StartAsync();

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task Tcp_WithoutKey_Is401WithError()
    {
        using var client = _server.TcpClient();
        using var response = await client.GetAsync("api/v1/users", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("missing API key", await ErrorAsync(response));
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Theory]
    [InlineData("Bearer nope")]
    [InlineData("Bearer " + FakeMeshAdmin.ExpiredApiKey)]
    [InlineData("Basic " + FakeMeshAdmin.ApiKey)]
    [InlineData("Bearer ")]
    public async Task Tcp_WithBadKey_Is401(string authorization)
    {
        using var client = _server.TcpClient();
        client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", authorization);
        using var response = await client.GetAsync("api/v1/users", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.NotEmpty(await ErrorAsync(response));
    }

    [Fact]
    public async Task Tcp_WithLiveKey_IsServed()
    {
        using var client = _server.TcpClient(FakeMeshAdmin.ApiKey);
        using var response = await client.GetAsync("api/v1/users", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("[]", await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Socket_WithoutKey_IsTrusted()
    {
        using var client = _server.SocketClient();
        using var response = await client.GetAsync("api/v1/apikeys", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Socket_File_IsOwnerOnly()
    {
        Assert.Equal(AdminSocket.SocketMode, File.GetUnixFileMode(_server.SocketPath));
    }

    [Fact]
    public async Task Users_CreateListDelete_RoundTrip()
    {
        using var client = _server.SocketClient();
        using (var created = await client.PostAsJsonAsync("api/v1/users", new { name = "alice", email = "alice@example.com" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var json = await JsonAsync(created);
            Assert.Equal("alice", json.GetProperty("name").GetString());
            Assert.Equal("alice@example.com", json.GetProperty("email").GetString());
            Assert.True(json.TryGetProperty("createdAt", out _));
        }

        using (var duplicate = await client.PostAsJsonAsync("api/v1/users", new { name = "alice" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
            Assert.Contains("already exists", await ErrorAsync(duplicate));
        }

        var list = await JsonAsync(await client.GetAsync("api/v1/users", Ct));
        Assert.Equal("alice", list[0].GetProperty("name").GetString());
        using (var deleted = await client.DeleteAsync("api/v1/users/alice", Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using var missing = await client.DeleteAsync("api/v1/users/alice", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("not found", await ErrorAsync(missing));
    }

    [Theory]
    [InlineData("{\"name\": ", "invalid JSON body")]
    [InlineData("[1, 2]", "invalid JSON body")]
    [InlineData("{\"nmae\": \"alice\"}", "nmae")]
    [InlineData("{\"name\": null}", "invalid JSON body")]
    [InlineData("{}", "invalid JSON body")]
    [InlineData("", "request body is required")]
    [InlineData("null", "request body is required")]
    [InlineData("{\"name\": 5}", "invalid JSON body")]
    public async Task Users_Create_BadBody_Is400NamingTheProblem(string body, string expected)
    {
        using var client = _server.SocketClient();
        using var response = await client.PostAsync("api/v1/users", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await ErrorAsync(response));
    }

    [Fact]
    public async Task PreAuthKeys_Create_ReturnsSecretOnceAndListHidesIt()
    {
        _server.Admin.AddNode("alice", "laptop");
        using var client = _server.SocketClient();
        using var created = await client.PostAsJsonAsync(
            "api/v1/preauthkeys",
            new { user = "alice", reusable = true, expiration = "1h30m", tags = new[] { "tag:web" } },
            Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var json = await JsonAsync(created);
        var key = json.GetProperty("key").GetString()!;
        Assert.StartsWith(json.GetProperty("prefix").GetString()!, key);
        Assert.True(json.GetProperty("reusable").GetBoolean());
        Assert.Equal("tag:web", json.GetProperty("tags")[0].GetString());
        var request = _server.Admin.LastPreAuthKeyRequest!;
        Assert.Equal(("alice", true, false, TimeSpan.FromMinutes(90)), (request.User, request.Reusable, request.Ephemeral, request.Expiration));
        Assert.Equal(["tag:web"], request.Tags);

        var listText = await client.GetStringAsync("api/v1/preauthkeys?user=alice", Ct);
        Assert.DoesNotContain(key, listText);
        Assert.DoesNotContain("\"key\"", listText);
        Assert.Equal("[]", await client.GetStringAsync("api/v1/preauthkeys?user=bob", Ct));
        Assert.DoesNotContain(_server.Logs.Lines, line => line.Contains(key, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{\"user\": \"alice\", \"expiration\": \"soon\"}", 400, "expiration")]
    [InlineData("{\"user\": \"alice\", \"expiration\": \"-1h\"}", 400, "expiration")]
    [InlineData("{\"user\": \"nobody\"}", 404, "nobody")]
    [InlineData("{\"user\": \"alice\", \"tags\": [\"web\"]}", 400, "tag:name")]
    [InlineData("{\"user\": \"alice\", \"tags\": \"tag:web\"}", 400, "tags")]
    public async Task PreAuthKeys_Create_BadInput_Is4xx(string body, int status, string expected)
    {
        _server.Admin.AddNode("alice", "laptop");
        using var client = _server.SocketClient();
        using var response = await client.PostAsync("api/v1/preauthkeys", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Contains(expected, await ErrorAsync(response));
    }

    [Fact]
    public async Task PreAuthKeys_Expire_ByPrefixThen404ForUnknown()
    {
        _server.Admin.AddNode("alice", "laptop");
        var created = await _server.Admin.CreatePreAuthKeyAsync(new PreAuthKeyRequest("alice", false, false, null, []), Ct);
        using var client = _server.SocketClient();
        using (var ok = await client.PostAsync($"api/v1/preauthkeys/{created.View.Prefix}/expire", null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);
        }

        using var missing = await client.PostAsync("api/v1/preauthkeys/nope/expire", null, Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Nodes_ListGetTagRenameExpireDelete()
    {
        var node = _server.Admin.AddNode("alice", "laptop");
        var other = _server.Admin.AddNode("bob", "server");
        using var client = _server.TcpClient(FakeMeshAdmin.ApiKey);

        var all = await JsonAsync(await client.GetAsync("api/v1/nodes", Ct));
        Assert.Equal(2, all.GetArrayLength());
        var alices = await JsonAsync(await client.GetAsync("api/v1/nodes?user=alice", Ct));
        Assert.Equal(node.Id, alices.EnumerateArray().Single().GetProperty("id").GetInt64());
        Assert.Equal("laptop", (await JsonAsync(await client.GetAsync($"api/v1/nodes/{node.Id}", Ct))).GetProperty("name").GetString());

        var tagged = await JsonAsync(await client.PostAsJsonAsync($"api/v1/nodes/{node.Id}/tags", new { tags = new[] { "tag:a", "tag:b" } }, Ct));
        Assert.Equal(["tag:a", "tag:b"], tagged.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));

        var renamed = await JsonAsync(await client.PostAsJsonAsync($"api/v1/nodes/{node.Id}/rename", new { name = "workstation" }, Ct));
        Assert.Equal("workstation", renamed.GetProperty("name").GetString());
        using (var clash = await client.PostAsJsonAsync($"api/v1/nodes/{other.Id}/rename", new { name = "workstation" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Conflict, clash.StatusCode);
        }

        var expired = await JsonAsync(await client.PostAsync($"api/v1/nodes/{node.Id}/expire", null, Ct));
        Assert.True(expired.GetProperty("expired").GetBoolean());
        Assert.Null(_server.Admin.LastNodeExpiry);
        var at = FakeMeshAdmin.Now.AddDays(1);
        await JsonAsync(await client.PostAsJsonAsync($"api/v1/nodes/{node.Id}/expire", new { at }, Ct));
        Assert.Equal(at, _server.Admin.LastNodeExpiry);

        using (var deleted = await client.DeleteAsync($"api/v1/nodes/{node.Id}", Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using var gone = await client.GetAsync($"api/v1/nodes/{node.Id}", Ct);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Theory]
    [InlineData("GET", "api/v1/nodes/abc", "node id \"abc\"")]
    [InlineData("GET", "api/v1/nodes/-1", "not a positive integer")]
    [InlineData("GET", "api/v1/nodes/99999999999999999999", "not a positive integer")]
    [InlineData("DELETE", "api/v1/nodes/0", "not a positive integer")]
    [InlineData("POST", "api/v1/routes/x/enable", "route id")]
    public async Task Ids_NotNumbers_Are400(string method, string path, string expected)
    {
        using var client = _server.SocketClient();
        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await ErrorAsync(response));
    }

    [Fact]
    public async Task Nodes_Tags_BadBody_Is400()
    {
        var node = _server.Admin.AddNode("alice", "laptop");
        using var client = _server.SocketClient();
        foreach (var body in new[] { "{\"tags\": [\"web\"]}", "{\"tags\": [null]}", "{\"tag\": []}", "{\"tags\": " })
        {
            using var response = await client.PostAsync($"api/v1/nodes/{node.Id}/tags", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.NotEmpty(await ErrorAsync(response));
        }
    }

    [Fact]
    public async Task Routes_EnableDisable()
    {
        _server.Admin.AddNode("alice", "router", "10.0.0.0/24");
        var route = _server.Admin.Routes.Single();
        using var client = _server.SocketClient();
        var listed = await JsonAsync(await client.GetAsync("api/v1/routes", Ct));
        Assert.Equal("10.0.0.0/24", listed[0].GetProperty("prefix").GetString());
        Assert.True((await JsonAsync(await client.PostAsync($"api/v1/routes/{route.Id}/enable", null, Ct))).GetProperty("enabled").GetBoolean());
        Assert.False((await JsonAsync(await client.PostAsync($"api/v1/routes/{route.Id}/disable", null, Ct))).GetProperty("enabled").GetBoolean());
        using var missing = await client.PostAsync("api/v1/routes/424242/enable", null, Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Policy_SetGetCheck()
    {
        const string policy = "{ // HuJSON\n  \"acls\": [],\n}\n";
        using var client = _server.SocketClient();
        using (var empty = await client.GetAsync("api/v1/policy", Ct))
        {
            Assert.Equal("", (await JsonAsync(empty)).GetProperty("policy").GetString());
        }

        var set = await JsonAsync(await client.PutAsync("api/v1/policy", new StringContent(policy), Ct));
        Assert.Equal(policy, set.GetProperty("policy").GetString());
        Assert.Equal(policy, (await JsonAsync(await client.GetAsync("api/v1/policy", Ct))).GetProperty("policy").GetString());

        using (var invalid = await client.PutAsync("api/v1/policy", new StringContent("{\"invalid\": 1}"), Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
            Assert.Contains("unknown field", await ErrorAsync(invalid));
        }

        Assert.Equal(policy, (await JsonAsync(await client.GetAsync("api/v1/policy", Ct))).GetProperty("policy").GetString());
        var check = await JsonAsync(await client.PostAsync("api/v1/policy/check", new StringContent("{\"tests\": [\"fail\"]}"), Ct));
        Assert.False(check.GetProperty("valid").GetBoolean());
        Assert.Equal(2, check.GetProperty("testResults").GetArrayLength());
    }

    [Fact]
    public async Task Policy_NotUtf8_Is400()
    {
        using var client = _server.SocketClient();
        using var response = await client.PutAsync("api/v1/policy", new ByteArrayContent([0x7b, 0xff, 0xfe, 0x7d]), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("UTF-8", await ErrorAsync(response));
    }

    [Fact]
    public async Task Body_OverOneMiB_Is413()
    {
        using var client = _server.SocketClient();
        var big = new string(' ', AdminApi.MaxBodyBytes + 1);
        using var response = await client.PutAsync("api/v1/policy", new StringContent(big), Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("1 MiB", await ErrorAsync(response));
    }

    [Fact]
    public async Task Body_OverOneMiBChunked_Is413()
    {
        using var client = _server.TcpClient(FakeMeshAdmin.ApiKey);
        var content = new StreamContent(new MemoryStream(new byte[AdminApi.MaxBodyBytes + 100]));
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/v1/policy/check") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Body_JustUnderLimit_IsRead()
    {
        using var client = _server.SocketClient();
        var policy = "{\"acls\": []}" + new string(' ', AdminApi.MaxBodyBytes - 20);
        using var response = await client.PostAsync("api/v1/policy/check", new StringContent(policy), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ApiKeys_CreateWithExpiration_ListExpire_AndNewKeyWorksOverTcp()
    {
        using var socket = _server.SocketClient();
        using var created = await socket.PostAsJsonAsync("api/v1/apikeys", new { expiration = "7d" }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var json = await JsonAsync(created);
        var key = json.GetProperty("key").GetString()!;
        var prefix = json.GetProperty("prefix").GetString()!;
        Assert.Equal(TimeSpan.FromDays(7), _server.Admin.LastApiKeyExpiration);

        using (var noBody = await socket.PostAsync("api/v1/apikeys", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, noBody.StatusCode);
            Assert.Null(_server.Admin.LastApiKeyExpiration);
        }

        var listText = await socket.GetStringAsync("api/v1/apikeys", Ct);
        Assert.Contains(prefix, listText);
        Assert.DoesNotContain(key, listText);

        using var tcp = _server.TcpClient(key);
        Assert.Equal(HttpStatusCode.OK, (await tcp.GetAsync("api/v1/nodes", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await socket.PostAsync($"api/v1/apikeys/{prefix}/expire", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await tcp.GetAsync("api/v1/nodes", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await socket.PostAsync("api/v1/apikeys/mapi_nope/expire", null, Ct)).StatusCode);
        Assert.DoesNotContain(_server.Logs.Lines, line => line.Contains(key, StringComparison.Ordinal));
        Assert.DoesNotContain(_server.Logs.Lines, line => line.Contains(FakeMeshAdmin.ApiKey, StringComparison.Ordinal));
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            return JsonDocument.Parse(text).RootElement.Clone();
        }
    }

    private static async Task<string> ErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        return doc.RootElement.GetProperty("error").GetString()!;
    }
}
