using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Mesh.Control.Admin;
using Mesh.Control.Configuration;
using Mesh.Control.NodeApi;
using Mesh.Control.Relay;
using Mesh.Control.Stun;
using Mesh.Control.State;
using Mesh.Control.Store;
using Mesh.Protocol.Control;
using Mesh.WireGuard.Crypto;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Mesh.Control.Hosting;

/// <summary>
/// `mesh-operator coordinator`: the coordination server in one process. It serves the node API
/// (control channel, registration, map streams), the embedded relay and /healthz on listen_addr
/// (TLS when tls_cert_path/tls_key_path are set), the admin API on the same port (API key) and on
/// the unix socket beside the database (trusted), Prometheus metrics on metrics_listen_addr, and
/// STUN on UDP. All state lives in SQLite behind one <see cref="MeshState"/>.
/// </summary>
public sealed class CoordinatorHost : IAsyncDisposable
{
    public const string ControlKeySetting = "control_private_key";
    private static readonly TimeSpan TickInterval = TimeSpan.FromSeconds(2);

    /// <summary>The .NET runtime's built-in meter (dotnet_gc_*, dotnet_process_*), exported beside the coordinator's own.</summary>
    public const string RuntimeMeterName = "System.Runtime";

    private readonly WebApplication _app;
    private readonly MeshStore _store;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _housekeeping;

    private readonly StunServer? _stun;

    private CoordinatorHost(WebApplication app, MeshStore store, CoordinatorConfig config, MeshState state, ControlServer control, int httpPort, int? metricsPort, StunServer? stun)
    {
        _app = app;
        _stun = stun;
        _store = store;
        Config = config;
        State = state;
        Control = control;
        HttpPort = httpPort;
        MetricsPort = metricsPort;
        _housekeeping = Task.Run(HousekeepingAsync);
    }

    public CoordinatorConfig Config { get; }
    public MeshState State { get; }
    public ControlServer Control { get; }
    public int HttpPort { get; }
    public int? MetricsPort { get; }
    public Uri ServerUrl => new(Config.ServerUrl);
    public string AdminSocketPath => Config.AdminSocketPath;

    /// <summary>The STUN server's UDP port, when the embedded relay is enabled.</summary>
    public int? StunPort => _stun?.LocalEndPoints.FirstOrDefault()?.Port;

    /// <summary>The STUN server's second UDP port (derp.server.stun_alternate_port), when it has one.</summary>
    public int? StunAlternatePort => _stun?.LocalEndPoints.Skip(1).FirstOrDefault()?.Port;

    public RelayServer? Relay => Config.Derp.Server.Enabled ? _app.Services.GetRequiredService<RelayServer>() : null;

    /// <summary>
    /// Opens the database (creating it and applying migrations), loads the state, and starts
    /// serving. A port of 0 in listen_addr or metrics_listen_addr picks a free one (tests); then
    /// server_url follows the port actually used.
    /// </summary>
    public static async Task<CoordinatorHost> StartAsync(CoordinatorConfig config, ILoggerFactory? loggerFactory = null, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        var listen = Resolve(config.ListenAddr, out var pickedHttp);
        if (pickedHttp)
        {
            config.ListenAddr = listen.ToString();
            var url = new UriBuilder(config.ServerUrl) { Port = listen.Port };
            config.ServerUrl = url.Uri.ToString().TrimEnd('/');
        }

        IPEndPoint? metrics = null;
        if (!string.IsNullOrEmpty(config.MetricsListenAddr))
        {
            metrics = Resolve(config.MetricsListenAddr, out _);
            config.MetricsListenAddr = metrics.ToString();
        }

        var dbPath = Path.GetFullPath(config.Database.Sqlite.Path);
        Directory.CreateDirectory(Path.GetDirectoryName(dbPath)!);
        var store = new MeshStore(dbPath, time);
        try
        {
            var controlKey = Convert.FromBase64String(store.GetOrAddSetting(ControlKeySetting, () =>
            {
                var key = new byte[32];
                X25519.GeneratePrivateKey(key);
                return Convert.ToBase64String(key);
            }));

            var builder = WebApplication.CreateSlimBuilder();
            if (loggerFactory is not null)
            {
                builder.Logging.ClearProviders();
                builder.Services.AddSingleton(loggerFactory);
            }

            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Limits.MaxRequestBodySize = 1024 * 1024;
                kestrel.Listen(listen, options =>
                {
                    if (!string.IsNullOrEmpty(config.TlsCertPath))
                    {
                        options.UseHttps(X509Certificate2.CreateFromPemFile(config.TlsCertPath, config.TlsKeyPath));
                    }
                });
                if (metrics is not null)
                {
                    kestrel.Listen(metrics);
                }
            });
            builder.WebHost.UseAdminSocket(config.AdminSocketPath);

            // STUN first: with port 0 (tests) the relay map must name the ports actually bound.
            StunServer? stun = null;
            if (config.Derp.Server.Enabled)
            {
                stun = StartStun(config.Derp.Server, loggerFactory);
                config.Derp.Server.StunListenAddr = stun.LocalEndPoints[0].ToString();
                config.Derp.Server.StunAlternatePort = stun.LocalEndPoints.Count > 1 ? stun.LocalEndPoints[1].Port : 0;
            }

            var control = new ControlServer(controlKey, time);
            var logger = (loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("Mesh.Control");
            var metricsInstance = new MeshMetrics(Guid.NewGuid().ToString("N")[..12]);
            var extraRegions = await Mesh.Control.Relay.ExtraRelayMaps.LoadAsync(config.Derp.Urls, NetmapBuilder.RelayMapFrom(config).Regions.Select(r => r.RegionId), logger, cancellationToken).ConfigureAwait(false);
            var state = new MeshState(store, config, time, logger, metricsInstance, extraRegions);
            builder.Services.AddSingleton(control);
            builder.Services.AddSingleton(state);
            builder.Services.AddSingleton<INodeService>(state);
            builder.Services.AddSingleton<IMeshAdmin>(state);
            if (config.Derp.Server.Enabled)
            {
                // The relay proves its identity with the coordinator's control key, which nodes already pin;
                // only nodes of this mesh (a registered, unexpired node key) may use it.
                builder.Services.AddSingleton<IRelayAuthorizer>(RelayAuthorizer.From(state.IsRelayAuthorized));
                builder.Services.AddMeshRelay(o => o.PrivateKey = controlKey);
            }

            // The runtime's own meter too (GC heap, allocations, working set): the coordinator's memory is
            // dominated by map streams, and an operator sizing one wants to see it.
            builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(metricsInstance.Name, RuntimeMeterName).AddPrometheusExporter());

            var app = builder.Build();
            var metricsPort = metrics?.Port;
            if (metricsPort is { } mp)
            {
                // The metrics port serves /metrics and nothing else.
                app.Use((context, next) =>
                {
                    if (context.Connection.LocalPort == mp && context.Request.Path != "/metrics")
                    {
                        context.Response.StatusCode = StatusCodes.Status404NotFound;
                        return Task.CompletedTask;
                    }

                    return next(context);
                });
                app.UseOpenTelemetryPrometheusScrapingEndpoint(context => context.Connection.LocalPort == mp && context.Request.Path == "/metrics");
            }

            app.MapGet(ControlPaths.Health, () => Results.Text("ok\n"));
            app.MapNodeApi();
            app.MapAdminApi();
            if (config.Derp.Server.Enabled)
            {
                app.MapRelay("/derp");
                var relay = app.Services.GetRequiredService<RelayServer>();
                state.NodeRevoked += key => relay.Disconnect(key, "the node was removed or its key expired");
                state.Metrics.ObserveRelay(() => relay.ConnectedClients, () => relay.PacketsForwarded, () => relay.PacketsDropped, () => stun?.RequestsAnswered ?? 0);
            }

            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            logger.LogInformation("Coordinator serving {Url} (admin socket {Socket}, metrics {Metrics}); database {Db}", config.ServerUrl, config.AdminSocketPath, config.MetricsListenAddr, dbPath);
            return new CoordinatorHost(app, store, config, state, control, listen.Port, metricsPort, stun);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Waits until the host stops (SIGTERM/SIGINT or <see cref="DisposeAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    private async Task HousekeepingAsync()
    {
        using var timer = new PeriodicTimer(TickInterval);
        var sweeps = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                State.Tick();
                if (++sweeps % 30 == 0)
                {
                    Control.Sweep();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// The embedded STUN server on derp.server.stun_listen_addr and, on the same address, its
    /// alternate port; a port that cannot be bound is reported as a config error naming its key.
    /// </summary>
    private static StunServer StartStun(CoordinatorConfig.DerpServerConfig server, ILoggerFactory? loggerFactory)
    {
        var primary = IPEndPoint.Parse(server.StunListenAddr);
        var options = new StunServerOptions();
        options.Endpoints.Add(primary);
        if (server.ResolvedStunAlternatePort is { } alternate)
        {
            options.Endpoints.Add(new IPEndPoint(primary.Address, alternate));
        }

        try
        {
            return StunServer.Start(options, loggerFactory?.CreateLogger<StunServer>());
        }
        catch (StunListenException e) when (options.Endpoints.Count > 1 && e.EndPoint.Equals(options.Endpoints[1]))
        {
            throw new ConfigException($"derp.server.stun_alternate_port {e.EndPoint.Port}: {e.Message}; choose a free UDP port, or 0 for none");
        }
        catch (StunListenException e)
        {
            throw new ConfigException($"derp.server.stun_listen_addr {server.StunListenAddr}: {e.Message}");
        }
    }

    private static IPEndPoint Resolve(string text, out bool picked)
    {
        var endpoint = IPEndPoint.Parse(text);
        picked = endpoint.Port == 0;
        if (picked)
        {
            using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(endpoint);
            endpoint = (IPEndPoint)probe.LocalEndPoint!;
        }

        return endpoint;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _housekeeping.ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        State.Dispose();
        Control.Dispose();
        if (_stun is not null)
        {
            await _stun.DisposeAsync().ConfigureAwait(false);
        }

        _store.Dispose();
        _stop.Dispose();
    }
}
