using System.Collections.Concurrent;
using Mesh.Control.Admin;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.Tests.Admin;

/// <summary>
/// A real Kestrel serving <see cref="AdminApi"/> over a fake <see cref="IMeshAdmin"/>, on
/// 127.0.0.1 (an ephemeral port) and on an admin socket in a fresh temp directory. Captures every
/// log line so tests can check that no secret is logged. Shared with Mesh.Operator.Tests.
/// </summary>
internal sealed class AdminTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _directory;

    private AdminTestServer(WebApplication app, string directory, FakeMeshAdmin admin, LogCapture logs)
    {
        _app = app;
        _directory = directory;
        Admin = admin;
        Logs = logs;
        SocketPath = Path.Combine(directory, "mesh.sock");
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        TcpBase = new Uri(addresses.Single(a => a.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)) + "/");
    }

    public FakeMeshAdmin Admin { get; }

    public LogCapture Logs { get; }

    public string SocketPath { get; }

    /// <summary>The TCP listener, e.g. http://127.0.0.1:41234/.</summary>
    public Uri TcpBase { get; }

    public static async Task<AdminTestServer> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("mesh-admin-").FullName;
        var admin = new FakeMeshAdmin();
        var logs = new LogCapture();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = directory });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(logs);
        builder.Services.AddSingleton<IMeshAdmin>(admin);
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        builder.WebHost.UseAdminSocket(Path.Combine(directory, "mesh.sock"));
        var app = builder.Build();
        app.MapAdminApi();
        await app.StartAsync(TestContext.Current.CancellationToken);
        return new AdminTestServer(app, directory, admin, logs);
    }

    /// <summary>A raw client over TCP, with <paramref name="apiKey"/> as bearer when given.</summary>
    public HttpClient TcpClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = TcpBase };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    /// <summary>A raw client over the admin socket (no key).</summary>
    public HttpClient SocketClient()
    {
        var endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(SocketPath);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                await socket.ConnectAsync(endPoint, ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://localhost/") };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Every formatted log line and exception text, for "no secret in logs" checks.</summary>
    internal sealed class LogCapture : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => [.. _lines];

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(LogCapture owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                owner._lines.Enqueue($"{logLevel} {category}[{eventId.Id}] {formatter(state, exception)} {exception}");
            }
        }
    }
}
