using System.Net;
using Mesh.Control.Tests.Coordinator;
using Mesh.Protocol.Control;

namespace Mesh.Control.Tests.Operations;

/// <summary>
/// The coordinator's metrics as Prometheus scrapes them: /metrics on metrics_listen_addr only, in
/// the text format of OpenTelemetry's Prometheus exporter (counters gain `_total`).
/// </summary>
/// <remarks>
/// The coordinator's meter has a fixed name, and OpenTelemetry listens to every meter of that name in
/// the process; another coordinator running in parallel in this test process would add its nodes and
/// registrations to these numbers. The collection therefore runs alone.
/// </remarks>
[Collection(nameof(MetricsCollection))]
public sealed class MetricsEndpointTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Metrics_TwoNodesOneStream_GaugesAndRegistrationCounterMatch()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();
        var metricsUrl = MetricsUrl(coordinator);
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(key);
        await b.RegisterAsync(key);
        await using var watch = new StreamWatcher(a, a.MapRequest());
        await watch.WaitAsync(w => w.Self is not null, "A's first map");

        var scrape = await Eventually.UntilAsync(
            () => PrometheusScrape.GetAsync(http, metricsUrl),
            s => s.Value("mesh_nodes_registered") == 2 && s.Value("mesh_nodes_online") == 1,
            "2 nodes registered, 1 online");

        Assert.Equal("gauge", scrape.TypeOf("mesh_nodes_registered"));
        Assert.Equal("gauge", scrape.TypeOf("mesh_nodes_online"));
        Assert.Equal("counter", scrape.TypeOf("mesh_registrations_total"));
        Assert.Equal(2, scrape.Value("mesh_registrations_total", ("outcome", "new")));
    }

    [Fact]
    public async Task Metrics_StreamOpened_FirstFullMapCounted()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();
        using var a = coordinator.NewNode("a");
        await a.RegisterAsync(await coordinator.CreateKeyAsync("alice"));

        await using var watch = new StreamWatcher(a, a.MapRequest());
        await watch.WaitAsync(w => w.Self is not null, "A's first full map");

        // The counter counts "map responses (full or delta) sent on streams": the full map that opens a stream is one.
        await Eventually.UntilAsync(
            () => PrometheusScrape.GetAsync(http, MetricsUrl(coordinator)),
            s => s.Value("mesh_map_pushes_total") is >= 1,
            "the stream's first full map counted in mesh_map_pushes_total");
    }

    [Fact]
    public async Task Metrics_ChangeWithStreamOpen_MapPushesGrow()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();
        var metricsUrl = MetricsUrl(coordinator);
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(key);
        var bId = (await b.RegisterAsync(key)).NodeId;
        await using var watch = new StreamWatcher(a, a.MapRequest());
        await watch.WaitAsync(w => w.Peers.ContainsKey(bId), "B in A's first map");
        var pushesBefore = (await PrometheusScrape.GetAsync(http, metricsUrl)).Value("mesh_map_pushes_total") ?? 0;

        await coordinator.Admin.RenameNodeAsync(bId, "b-renamed", Token);
        await watch.WaitAsync(w => w.Peers[bId].Name.StartsWith("b-renamed", StringComparison.Ordinal), "the rename pushed to A");

        var after = await Eventually.UntilAsync(
            () => PrometheusScrape.GetAsync(http, metricsUrl),
            s => s.Value("mesh_map_pushes_total") > pushesBefore,
            $"mesh_map_pushes_total above {pushesBefore}");
        Assert.Equal("counter", after.TypeOf("mesh_map_pushes_total"));
    }

    [Fact]
    public async Task Metrics_AfterARegistration_PolicyCompileHistogramExported()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();
        using var node = coordinator.NewNode("a");
        await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        await coordinator.Admin.SetPolicyAsync("""{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}""", Token);

        var scrape = await Eventually.UntilAsync(
            () => PrometheusScrape.GetAsync(http, MetricsUrl(coordinator)),
            s => s.Value("mesh_policy_compile_seconds_count") is >= 1,
            "at least one policy compile observed");

        Assert.Equal("histogram", scrape.TypeOf("mesh_policy_compile_seconds"));
        Assert.NotNull(scrape.Value("mesh_policy_compile_seconds_sum"));
        Assert.Equal(scrape.Value("mesh_policy_compile_seconds_count"), scrape.Value("mesh_policy_compile_seconds_bucket", ("le", "+Inf")));
    }

    [Fact]
    public async Task Metrics_PolicyCompileHistogram_BucketsResolveMilliseconds()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();
        await coordinator.Admin.SetPolicyAsync("""{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}""", Token);

        var scrape = await Eventually.UntilAsync(
            () => PrometheusScrape.GetAsync(http, MetricsUrl(coordinator)),
            s => s.Value("mesh_policy_compile_seconds_count") is >= 1,
            "at least one policy compile observed");

        // The values are seconds and a compile takes milliseconds: OpenTelemetry's default bounds
        // (0, 5, 10, … 10000, meant for milliseconds) would put every compile in the first bucket.
        var bounds = scrape.LabelValues("mesh_policy_compile_seconds_bucket", "le")
            .Where(b => b != "+Inf")
            .Select(b => double.Parse(b, System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        Assert.Contains(bounds, b => b is > 0 and <= 0.005);
        Assert.True(bounds.Max() <= 60, $"largest bucket bound {bounds.Max()} s; expected bounds sized for seconds\n{scrape}");
    }

    [Fact]
    public async Task Metrics_RuntimeMemory_Exported()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();

        var scrape = await Eventually.UntilAsync(
            () => PrometheusScrape.GetAsync(http, MetricsUrl(coordinator)),
            s => s.Value("dotnet_gc_heap_total_allocated_bytes_total") is > 0,
            "the runtime's allocation counter");

        // What sizing a coordinator for many map streams needs: allocations, the heap, the process.
        Assert.Equal("counter", scrape.TypeOf("dotnet_gc_heap_total_allocated_bytes_total"));
        Assert.True(scrape.Value("dotnet_process_memory_working_set_bytes") > 0, scrape.ToString());
        Assert.Contains("dotnet_gc_last_collection_heap_size_bytes", scrape.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", ControlPaths.Health)]
    [InlineData("GET", ControlPaths.Key)]
    [InlineData("POST", ControlPaths.Handshake)]
    [InlineData("POST", ControlPaths.Map)]
    [InlineData("GET", "/api/v1/nodes")]
    [InlineData("GET", "/api/v1/users")]
    [InlineData("GET", "/")]
    public async Task MetricsPort_NodeOrAdminPath_NotFound(string method, string path)
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient();
        var key = (await coordinator.Admin.CreateApiKeyAsync(null, Token)).Key;
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri($"http://127.0.0.1:{coordinator.Host.MetricsPort}{path}"));
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        if (method == "POST")
        {
            request.Content = new ByteArrayContent(new byte[64]);
        }

        using var response = await http.SendAsync(request, Token);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task MainPort_Metrics_NotFound()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        using var http = new HttpClient { BaseAddress = coordinator.Url };

        using var metrics = await http.GetAsync("/metrics", Token);
        using var health = await http.GetAsync(ControlPaths.Health, Token);

        Assert.Equal(HttpStatusCode.NotFound, metrics.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    private static Uri MetricsUrl(TestCoordinator coordinator)
    {
        Assert.NotNull(coordinator.Host.MetricsPort);
        Assert.NotEqual(coordinator.Host.HttpPort, coordinator.Host.MetricsPort);
        return new Uri($"http://127.0.0.1:{coordinator.Host.MetricsPort}/metrics");
    }
}

/// <summary>Metrics tests run one at a time so their timing-sensitive counters are not disturbed by the parallel tests.</summary>
[CollectionDefinition(nameof(MetricsCollection), DisableParallelization = true)]
public sealed class MetricsCollection;
