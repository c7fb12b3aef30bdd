using Mesh.Control.Admin;
using Mesh.Control.Configuration;
using Mesh.Control.Hosting;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Control.Tests.Coordinator;

/// <summary>A real coordinator on loopback with free ports and its own temporary data directory.</summary>
internal sealed class TestCoordinator : IAsyncDisposable
{
    private TestCoordinator(string directory, CoordinatorHost host)
    {
        Directory = directory;
        Host = host;
    }

    public string Directory { get; }
    public CoordinatorHost Host { get; private set; }
    public IMeshAdmin Admin => Host.State;
    public Uri Url => Host.ServerUrl;

    public static async Task<TestCoordinator> StartAsync(Action<CoordinatorConfig>? configure = null, string? directory = null)
    {
        directory ??= Path.Combine(Path.GetTempPath(), "mesh-coord-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(directory);
        var host = await CoordinatorHost.StartAsync(Config(directory, configure));
        return new TestCoordinator(directory, host);
    }

    /// <summary>Stops the coordinator and starts a new one on the same database and port.</summary>
    public async Task RestartAsync(Action<CoordinatorConfig>? configure = null)
    {
        var port = Host.HttpPort;
        await Host.DisposeAsync();
        var config = Config(Directory, configure);
        config.ListenAddr = $"127.0.0.1:{port}";
        config.ServerUrl = $"http://127.0.0.1:{port}";
        Host = await CoordinatorHost.StartAsync(config);
    }

    private static CoordinatorConfig Config(string directory, Action<CoordinatorConfig>? configure)
    {
        var config = new CoordinatorConfig
        {
            ListenAddr = "127.0.0.1:0",
            MetricsListenAddr = "127.0.0.1:0",
            ServerUrl = "http://127.0.0.1:0",
            UnixSocket = Path.Combine(directory, "mesh.sock"),
        };
        config.Database.Sqlite.Path = Path.Combine(directory, "mesh.db");
        config.Derp.Server.Enabled = false;
        configure?.Invoke(config);
        return config;
    }

    public async Task<string> CreateKeyAsync(string user, bool reusable = false, bool ephemeral = false, TimeSpan? expiration = null, params string[] tags)
    {
        if ((await Admin.ListUsersAsync(default)).All(u => u.Name != user))
        {
            await Admin.CreateUserAsync(user, $"{user}@example.com", null, default);
        }

        return (await Admin.CreatePreAuthKeyAsync(new PreAuthKeyRequest(user, reusable, ephemeral, expiration, tags), default)).Key;
    }

    public TestNode NewNode(string hostname) => new(this, hostname);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A simulated node: a machine key, a node key, and a control client.</summary>
internal sealed class TestNode : IDisposable
{
    private readonly TestCoordinator _coordinator;

    public TestNode(TestCoordinator coordinator, string hostname)
    {
        _coordinator = coordinator;
        Hostname = hostname;
        MachinePrivate = NewKey();
        NodePrivate = NewKey();
        var pub = new byte[32];
        X25519.PublicKey(NodePrivate, pub);
        NodeKey = new NodeKey(new NoisePublicKey(pub));
        Client = new ControlClient(coordinator.Url, MachinePrivate);
    }

    public string Hostname { get; }
    public byte[] MachinePrivate { get; }
    public byte[] NodePrivate { get; }
    public NodeKey NodeKey { get; set; }
    public ControlClient Client { get; private set; }

    public Task<RegisterResponse> RegisterAsync(string? authKey) =>
        Client.RegisterAsync(new RegisterRequest { NodeKey = NodeKey, AuthKey = authKey, Hostname = Hostname }, TestContext.Current.CancellationToken);

    public MapRequest MapRequest(params string[] endpoints) => new() { NodeKey = NodeKey, Endpoints = endpoints, Hostinfo = new Hostinfo { Hostname = Hostname } };

    public Task<MapResponse> MapAsync(params string[] endpoints) => Client.MapAsync(MapRequest(endpoints), TestContext.Current.CancellationToken);

    /// <summary>A new client for the same machine (as after the node restarts).</summary>
    public void Reconnect()
    {
        Client.Dispose();
        Client = new ControlClient(_coordinator.Url, MachinePrivate);
    }

    public static byte[] NewKey()
    {
        var key = new byte[32];
        X25519.GeneratePrivateKey(key);
        return key;
    }

    public void Dispose() => Client.Dispose();
}

/// <summary>Reads a map stream in the background so a test can wait for a condition on the maps received.</summary>
internal sealed class StreamWatcher : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;
    private readonly List<MapResponse> _received = [];
    private readonly SemaphoreSlim _arrived = new(0);

    public StreamWatcher(TestNode node, MapRequest request)
    {
        _reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var map in node.Client.MapStreamAsync(request, _stop.Token))
                {
                    lock (_received)
                    {
                        _received.Add(map);
                        Apply(map);
                    }

                    _arrived.Release();
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e)
            {
                Error = e;
            }
            finally
            {
                Ended = true;
                _arrived.Release();
            }
        });
    }

    public Exception? Error { get; private set; }
    public bool Ended { get; private set; }
    public Dictionary<long, MapNode> Peers { get; } = [];
    public MapNode? Self { get; private set; }
    public IReadOnlyList<FilterRule>? Filter { get; private set; }

    public IReadOnlyList<MapResponse> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    private void Apply(MapResponse map)
    {
        if (map.KeepAlive)
        {
            return;
        }

        if (map.Peers is not null)
        {
            Peers.Clear();
            foreach (var p in map.Peers)
            {
                Peers[p.Id] = p;
            }
        }

        foreach (var p in map.PeersChanged ?? [])
        {
            Peers[p.Id] = p;
        }

        foreach (var id in map.PeersRemoved ?? [])
        {
            Peers.Remove(id);
        }

        Self = map.Self ?? Self;
        Filter = map.PacketFilter ?? Filter;
    }

    /// <summary>Waits until <paramref name="condition"/> holds on the applied map state, or fails after <paramref name="timeout"/>.</summary>
    public async Task WaitAsync(Func<StreamWatcher, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            lock (_received)
            {
                if (condition(this))
                {
                    return;
                }
            }

            if (Ended && Error is not null)
            {
                throw new InvalidOperationException($"map stream failed while waiting for: {what}", Error);
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"timed out waiting for: {what}; received {Received.Count} map(s)");
            }

            await _arrived.WaitAsync(left);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _reader;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
