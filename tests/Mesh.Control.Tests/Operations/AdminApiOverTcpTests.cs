using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Mesh.Control.Admin;
using Mesh.Control.Tests.Coordinator;

namespace Mesh.Control.Tests.Operations;

/// <summary>
/// The admin API on listen_addr: every request needs a live API key as a bearer token, while the
/// unix socket beside the database needs none.
/// </summary>
public sealed class AdminApiOverTcpTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AdminApiOverTcp_NoApiKey_Unauthorized()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient { BaseAddress = coordinator.Url };

        using var response = await http.GetAsync("/api/v1/nodes", Token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
        Assert.Contains("error", await response.Content.ReadAsStringAsync(Token));
    }

    [Fact]
    public async Task AdminApiOverTcp_UnknownApiKey_Unauthorized()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var real = (await coordinator.Admin.CreateApiKeyAsync(null, Token)).Key;

        var forged = real[..^4] + (real[^4..] == "AAAA" ? "BBBB" : "AAAA");

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(coordinator, forged, Token));
    }

    [Fact]
    public async Task AdminApiOverTcp_CreatedApiKey_ListsNodes()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var node = coordinator.NewNode("listed");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        var created = await coordinator.Admin.CreateApiKeyAsync(TimeSpan.FromHours(1), Token);
        using var http = new HttpClient { BaseAddress = coordinator.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.Key);

        using var response = await http.GetAsync("/api/v1/nodes", Token);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Token));
        var only = Assert.Single(json.RootElement.EnumerateArray());
        Assert.Equal("listed", only.GetProperty("name").GetString());

        // The same through the product's own client.
        using var client = AdminClient.ForServer(coordinator.Url, created.Key);
        Assert.Equal("listed", Assert.Single(await client.ListNodesAsync(null, Token)).Name);
    }

    [Fact]
    public async Task AdminApiOverTcp_ExpiredApiKey_Unauthorized()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var created = await coordinator.Admin.CreateApiKeyAsync(null, Token);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(coordinator, created.Key, Token));

        await coordinator.Admin.ExpireApiKeyAsync(created.View.Prefix, Token);

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(coordinator, created.Key, Token));
    }

    [Fact]
    public async Task AdminApiOverTcp_ApiKeyPastItsExpiration_Unauthorized()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var created = await coordinator.Admin.CreateApiKeyAsync(TimeSpan.FromSeconds(1), Token);
        var expiration = created.View.Expiration!.Value;

        await Eventually.UntilAsync(
            () => StatusAsync(coordinator, created.Key, Token),
            status => status == HttpStatusCode.Unauthorized,
            "the one-second key refused");

        Assert.True(DateTimeOffset.UtcNow >= expiration, "the key was refused before it expired");
    }

    [Fact]
    public async Task AdminSocket_NoApiKey_Allowed()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        await coordinator.Admin.CreateUserAsync("alice", null, null, Token);

        using var client = AdminClient.ForSocket(coordinator.Host.AdminSocketPath);

        Assert.Equal("alice", Assert.Single(await client.ListUsersAsync(Token)).Name);
    }

    private static async Task<HttpStatusCode> StatusAsync(TestCoordinator coordinator, string apiKey, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = coordinator.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        using var response = await http.GetAsync("/api/v1/nodes", cancellationToken);
        return response.StatusCode;
    }
}
