using Mesh.Control.Admin;

namespace Mesh.Control.Tests.Admin;

/// <summary><see cref="AdminClient"/> against the real API: typed round trips, errors as exceptions.</summary>
public sealed class AdminClientTests : IAsyncLifetime
{
    private AdminTestServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await AdminTestServer.StartAsync();

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task ForSocket_EveryCall_RoundTrips()
    {
        using var client = AdminClient.ForSocket(_server.SocketPath);
        var user = await client.CreateUserAsync("alice", "alice@example.com", "Alice", Ct);
        Assert.Equal(("alice", "Alice"), (user.Name, user.DisplayName));
        Assert.Equal("alice", (await client.ListUsersAsync(Ct)).Single().Name);

        var key = await client.CreatePreAuthKeyAsync(new PreAuthKeyRequest("alice", true, true, TimeSpan.FromHours(24), ["tag:ci"]), Ct);
        Assert.StartsWith(key.View.Prefix, key.Key);
        Assert.Equal(TimeSpan.FromHours(24), _server.Admin.LastPreAuthKeyRequest!.Expiration);
        Assert.Equal(key.View.Id, (await client.ListPreAuthKeysAsync("alice", Ct)).Single().Id);
        await client.ExpirePreAuthKeyAsync(key.View.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), Ct);
        Assert.Equal(FakeMeshAdmin.Now, (await client.ListPreAuthKeysAsync(null, Ct)).Single().Expiration);

        var node = _server.Admin.AddNode("alice", "laptop", "10.1.0.0/16");
        Assert.Equal(node.Id, (await client.ListNodesAsync("alice", Ct)).Single().Id);
        Assert.Equal(node.IpAddresses, (await client.GetNodeAsync(node.Id, Ct)).IpAddresses);
        Assert.Equal(["tag:x"], (await client.SetNodeTagsAsync(node.Id, ["tag:x"], Ct)).Tags);
        Assert.Equal("box", (await client.RenameNodeAsync(node.Id, "box", Ct)).Name);
        var at = FakeMeshAdmin.Now.AddHours(2);
        Assert.Equal(at, (await client.ExpireNodeAsync(node.Id, at, Ct)).Expiry);
        Assert.True((await client.ExpireNodeAsync(node.Id, null, Ct)).Expired);

        var route = (await client.ListRoutesAsync(Ct)).Single();
        Assert.True((await client.SetRouteEnabledAsync(route.Id, true, Ct)).Enabled);
        Assert.False((await client.SetRouteEnabledAsync(route.Id, false, Ct)).Enabled);
        await client.DeleteNodeAsync(node.Id, Ct);
        await client.DeleteUserAsync("alice", Ct);
        Assert.Empty(await client.ListUsersAsync(Ct));

        Assert.Equal("{}", (await client.SetPolicyAsync("{}", Ct)).Policy);
        Assert.Equal("{}", (await client.GetPolicyAsync(Ct)).Policy);
        var check = await client.CheckPolicyAsync("{\"tests\": [\"fail\"]}", Ct);
        Assert.False(check.Valid);
        Assert.Contains("FAIL alice -> web:22", check.TestResults);

        var apiKey = await client.CreateApiKeyAsync(TimeSpan.FromDays(30), Ct);
        Assert.Equal(TimeSpan.FromDays(30), _server.Admin.LastApiKeyExpiration);
        Assert.Contains(await client.ListApiKeysAsync(Ct), k => k.Prefix == apiKey.View.Prefix);
        await client.ExpireApiKeyAsync(apiKey.View.Prefix, Ct);
    }

    [Fact]
    public async Task ForServer_WithKey_Works_AndWithoutAValidKeyThrows401()
    {
        using (var good = AdminClient.ForServer(_server.TcpBase, FakeMeshAdmin.ApiKey))
        {
            Assert.NotEmpty(await good.ListApiKeysAsync(Ct));
        }

        using var bad = AdminClient.ForServer(_server.TcpBase, "mapi_wrong");
        var e = await Assert.ThrowsAsync<AdminException>(() => bad.ListUsersAsync(Ct));
        Assert.Equal(401, e.Status);
        Assert.Equal("invalid or expired API key", e.Message);
    }

    [Fact]
    public async Task ErrorReply_BecomesAdminExceptionWithServerMessage()
    {
        using var client = AdminClient.ForSocket(_server.SocketPath);
        var e = await Assert.ThrowsAsync<AdminException>(() => client.GetNodeAsync(77, Ct));
        Assert.Equal(404, e.Status);
        Assert.Equal("node 77 not found", e.Message);
    }

    [Fact]
    public async Task MissingSocket_IsUnreachableWithTheSocketsReason()
    {
        var path = Path.Combine(Path.GetDirectoryName(_server.SocketPath)!, "absent.sock");
        using var client = AdminClient.ForSocket(path);
        var e = await Assert.ThrowsAsync<AdminUnreachableException>(() => client.ListUsersAsync(Ct));
        Assert.Equal($"cannot reach the coordinator at {path}: no such socket", e.Message);
        Assert.DoesNotContain("localhost", e.Message);
    }

    [Fact]
    public async Task SocketFileWithoutListener_IsConnectionRefused()
    {
        var path = Path.Combine(Path.GetDirectoryName(_server.SocketPath)!, "dead.sock");
        using var dead = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        dead.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        using var client = AdminClient.ForSocket(path);
        var e = await Assert.ThrowsAsync<AdminUnreachableException>(() => client.ListUsersAsync(Ct));
        Assert.Equal("Connection refused", e.Reason);
    }

    [Fact]
    public async Task ClosedPort_IsUnreachable()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var client = AdminClient.ForServer(new Uri($"http://127.0.0.1:{port}"), "k");
        await Assert.ThrowsAsync<AdminUnreachableException>(() => client.ListUsersAsync(Ct));
    }

    [Fact]
    public void ForServer_NotHttp_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => AdminClient.ForServer(new Uri("ftp://example.invalid"), "k"));
    }
}
