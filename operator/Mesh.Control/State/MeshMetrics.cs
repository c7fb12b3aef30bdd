using System.Diagnostics.Metrics;

namespace Mesh.Control.State;

/// <summary>
/// The coordinator's metrics (OpenTelemetry, scraped in Prometheus format at /metrics on
/// metrics_listen_addr): nodes registered and online, map pushes, policy compile time, and
/// registrations by outcome.
/// </summary>
public sealed class MeshMetrics : IDisposable
{
    public const string MeterName = "MeshOperator.Coordinator";

    private readonly Meter _meter;
    private readonly Counter<long> _mapPushes;
    private readonly Counter<long> _registrations;
    private readonly Histogram<double> _policyCompile;
    private Func<(int Registered, int Online)> _nodes = () => (0, 0);

    /// <param name="instance">
    /// Distinguishes coordinators sharing one process (tests, embedding): a metrics pipeline
    /// subscribes by meter name, so each host listens to its own <see cref="Name"/> only.
    /// </param>
    public MeshMetrics(string? instance = null)
    {
        Name = instance is null ? MeterName : $"{MeterName}.{instance}";
        _meter = new Meter(Name);
        _meter.CreateObservableGauge("mesh_nodes_registered", () => _nodes().Registered, description: "Nodes registered in the mesh");
        _meter.CreateObservableGauge("mesh_nodes_online", () => _nodes().Online, description: "Nodes holding an open map stream");
        _mapPushes = _meter.CreateCounter<long>("mesh_map_pushes", description: "Map responses (full or delta) sent on streams");
        _registrations = _meter.CreateCounter<long>("mesh_registrations", description: "Node registrations by outcome");
        // Seconds, so bounds from 0.5 ms up: OpenTelemetry's default bounds (0 … 10000) are sized for milliseconds.
        _policyCompile = _meter.CreateHistogram("mesh_policy_compile_seconds", unit: "s", description: "Time to compile the policy against the nodes", tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    /// <summary>The meter's name, for <c>AddMeter</c>.</summary>
    public string Name { get; }

    public void ObserveNodes(Func<(int Registered, int Online)> nodes) => _nodes = nodes;

    public void ObserveRelay(Func<long> clients, Func<long> forwarded, Func<long> dropped, Func<long> stunRequests)
    {
        _meter.CreateObservableGauge("mesh_relay_clients", clients, description: "Nodes connected to the embedded relay");
        _meter.CreateObservableCounter("mesh_relay_packets_forwarded", forwarded, description: "Packets the relay delivered");
        _meter.CreateObservableCounter("mesh_relay_packets_dropped", dropped, description: "Packets the relay dropped (a full per-client queue)");
        _meter.CreateObservableCounter("mesh_stun_requests", stunRequests, description: "STUN binding requests answered");
    }

    public void MapPushed(int count = 1) => _mapPushes.Add(count);

    public void Registration(string outcome) => _registrations.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void PolicyCompiled(TimeSpan elapsed) => _policyCompile.Record(elapsed.TotalSeconds);

    public void Dispose() => _meter.Dispose();
}
