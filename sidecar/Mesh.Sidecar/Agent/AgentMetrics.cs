using System.Diagnostics.Metrics;
using System.Net;
using Mesh.Net.Device;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// The agent's health and metrics on port 9001 (DESIGN.md): `/metrics` in Prometheus format through
/// OpenTelemetry's HttpListener exporter — peers (direct and relayed), datagrams and bytes on each
/// path (direct or relay), bytes per direction over all paths, completed handshakes, and dropped
/// packets by reason — and `/healthz` (200 while connected to the coordinator, 503 otherwise).
/// </summary>
internal sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "MeshOperator.Sidecar";

    private readonly Meter _meter = new(MeterName);
    private readonly MeterProvider _provider;
    private readonly HttpListener _health = new();
    private readonly Func<bool> _healthy;
    private readonly Task _healthLoop;

    public AgentMetrics(int port, WireGuardDevice device, AgentFilter filter, Func<bool> healthy)
    {
        _healthy = healthy;
        _meter.CreateObservableGauge("mesh_peers", () => device.Engine.Peers.Count, description: "Peers in this node's map");
        _meter.CreateObservableGauge("mesh_peers_relayed", () => device.Engine.Peers.Count(p => device.IsRelayed(p.PublicKey)), description: "Peers reached through the relay");
        _meter.CreateObservableGauge("mesh_peers_with_session", () => device.Engine.Peers.Count(p => p.CurrentKeypair is not null), description: "Peers with a completed handshake");
        _meter.CreateObservableCounter("mesh_udp_datagrams", () =>
        {
            var counters = device.GetCounters();
            return new[]
            {
                new Measurement<long>(counters.RxDatagrams, new KeyValuePair<string, object?>("direction", "rx")),
                new Measurement<long>(counters.TxDatagrams, new KeyValuePair<string, object?>("direction", "tx")),
            };
        }, description: "WireGuard datagrams on the direct (UDP) path");
        _meter.CreateObservableCounter("mesh_relayed_datagrams", () => new[]
        {
            new Measurement<long>(device.RelayedIn, new KeyValuePair<string, object?>("direction", "rx")),
            new Measurement<long>(device.RelayedOut, new KeyValuePair<string, object?>("direction", "tx")),
        }, description: "WireGuard datagrams through the relay");
        _meter.CreateObservableCounter("mesh_path_bytes", () =>
        {
            var paths = device.GetCounters().Paths;
            return new[]
            {
                new Measurement<long>(paths.DirectRx, new KeyValuePair<string, object?>("path", "direct"), new KeyValuePair<string, object?>("direction", "rx")),
                new Measurement<long>(paths.DirectTx, new KeyValuePair<string, object?>("path", "direct"), new KeyValuePair<string, object?>("direction", "tx")),
                new Measurement<long>(paths.RelayRx, new KeyValuePair<string, object?>("path", "relay"), new KeyValuePair<string, object?>("direction", "rx")),
                new Measurement<long>(paths.RelayTx, new KeyValuePair<string, object?>("path", "relay"), new KeyValuePair<string, object?>("direction", "tx")),
            };
        }, description: "Bytes of WireGuard messages on each path: direct (UDP payload) or through the relay (inside its frames)");
        _meter.CreateObservableCounter("mesh_handshakes", () => device.Engine.HandshakesCompleted, description: "WireGuard handshakes completed (sessions confirmed), with every peer since the agent started");
        _meter.CreateObservableCounter("mesh_peer_bytes", () =>
        {
            var (rx, tx) = device.PeerBytes();
            return new[]
            {
                new Measurement<long>(rx, new KeyValuePair<string, object?>("direction", "rx")),
                new Measurement<long>(tx, new KeyValuePair<string, object?>("direction", "tx")),
            };
        }, description: "Bytes exchanged with peers (all paths), including peers since removed");
        _meter.CreateObservableCounter("mesh_dropped_packets", () =>
        {
            var all = new List<Measurement<long>>();
            foreach (var (reason, count) in device.GetCounters().Drops)
            {
                // The device's "Filtered" are the filter's drops, which follow by reason.
                if (reason != "Filtered")
                {
                    all.Add(new Measurement<long>(count, new KeyValuePair<string, object?>("reason", reason)));
                }
            }

            foreach (var (reason, count) in filter.Drops())
            {
                all.Add(new Measurement<long>(count, new KeyValuePair<string, object?>("reason", "filter_" + reason)));
            }

            return all;
        }, description: "Packets dropped, by reason");

        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(MeterName)
            .AddPrometheusHttpListener(o =>
            {
                // The exporter builds its prefix from Host and Port; serve every address instead.
                o.Host = "localhost";
                o.Port = port;
                o.ConfigureHttpListener = (_, listener) =>
                {
                    listener.Prefixes.Clear();
                    listener.Prefixes.Add($"http://+:{port}/");
                };
                o.ScrapeEndpointPath = "/metrics";
                o.ScopeInfoEnabled = false;
            })
            .Build();
        _health.Prefixes.Add($"http://+:{port}/healthz/");
        _health.Start();
        _healthLoop = Task.Run(ServeHealthAsync);
    }

    private async Task ServeHealthAsync()
    {
        while (_health.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _health.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var ok = _healthy();
            context.Response.StatusCode = ok ? 200 : 503;
            var body = System.Text.Encoding.ASCII.GetBytes(ok ? "ok\n" : "not connected to the coordinator\n");
            await context.Response.OutputStream.WriteAsync(body).ConfigureAwait(false);
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _health.Close();
        _provider.Dispose();
        _meter.Dispose();
    }
}
