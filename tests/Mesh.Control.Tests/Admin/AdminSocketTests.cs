using System.Net.Sockets;
using System.Runtime.Versioning;
using Mesh.Control.Admin;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.Tests.Admin;

[SupportedOSPlatform("linux")]
public sealed class AdminSocketTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task UseAdminSocket_StaleFile_IsReplacedAndDirectoryCreated()
    {
        var root = Directory.CreateTempSubdirectory("mesh-admin-").FullName;
        try
        {
            var path = Path.Combine(root, "data", "mesh.sock");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Bound but not listening: what a crashed coordinator's file looks like to connect()
            // (.NET unlinks the file when a bound socket is disposed, so keep it open).
            using var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            stale.Bind(new UnixDomainSocketEndPoint(path));
            Assert.True(File.Exists(path));
            await using var app = Build(path);
            await app.StartAsync(Ct);
            Assert.Equal(AdminSocket.SocketMode, File.GetUnixFileMode(path));
            using var client = AdminClient.ForSocket(path);
            Assert.NotEmpty(await client.ListApiKeysAsync(Ct));
            await app.StopAsync(Ct);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task UseAdminSocket_LiveSocket_IsNotStolen()
    {
        var root = Directory.CreateTempSubdirectory("mesh-admin-").FullName;
        try
        {
            var path = Path.Combine(root, "mesh.sock");
            await using var first = Build(path);
            await first.StartAsync(Ct);
            await using var second = Build(path);
            await Assert.ThrowsAnyAsync<IOException>(() => second.StartAsync(Ct));
            using var client = AdminClient.ForSocket(path);
            Assert.NotEmpty(await client.ListApiKeysAsync(Ct));
            await first.StopAsync(Ct);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task IsLocalAdminConnection_OnlyOnTheAdminSocket()
    {
        var root = Directory.CreateTempSubdirectory("mesh-admin-").FullName;
        try
        {
            var admin = Path.Combine(root, "admin.sock");
            var other = Path.Combine(root, "other.sock");
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(other));
            builder.WebHost.UseAdminSocket(admin);
            await using var app = builder.Build();
            app.MapGet("/local", (HttpContext http) => http.IsLocalAdminConnection() ? "yes" : "no");
            await app.StartAsync(Ct);
            Assert.Equal("yes", await GetAsync(admin));
            Assert.Equal("no", await GetAsync(other));
            await app.StopAsync(Ct);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<string> GetAsync(string socketPath)
    {
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        using var client = new HttpClient(handler);
        return await client.GetStringAsync("http://localhost/local", Ct);
    }

    private static WebApplication Build(string socketPath)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IMeshAdmin>(new FakeMeshAdmin());
        builder.WebHost.UseAdminSocket(socketPath);
        var app = builder.Build();
        app.MapAdminApi();
        return app;
    }
}
