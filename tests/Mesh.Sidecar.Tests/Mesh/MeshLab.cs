using System.Net;
using System.Text.Json;
using Mesh.Sidecar.Agent;
using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Mesh;

/// <summary>
/// A whole mesh on one machine: a LAN namespace with a bridge (198.18.2.0/24), the coordinator
/// (`mesh-operator coordinator`, the real executable) in a namespace of its own at 198.18.2.1, and
/// node namespaces each running the real `mesh-sidecar up`. Everything is removed on dispose.
/// </summary>
internal sealed class MeshLab : IAsyncDisposable
{
    public const string CoordinatorAddress = "198.18.2.1";
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly TestNames _names = TestNames.Create();
    private int _nextAddress = 1;
    private readonly List<string> _etcDirectories = [];
    private ChildProcess? _coordinator;

    private MeshLab(string directory) => Directory = directory;

    public string Directory { get; }
    public NetNs Lan { get; private set; } = null!;
    public NetNs CoordinatorNs { get; private set; } = null!;
    public Dictionary<string, MeshNode> Nodes { get; } = [];
    public string LoginServer => $"http://{CoordinatorAddress}:8080";
    public string AdminSocket => Path.Combine(Directory, "mesh.sock");

    /// <summary>
    /// The coordinator executable from its own build output (same configuration as these tests),
    /// or the one named by MESH_OPERATOR_DLL.
    /// </summary>
    public static string OperatorDll
    {
        get
        {
            if (Environment.GetEnvironmentVariable("MESH_OPERATOR_DLL") is { Length: > 0 } path)
            {
                return path;
            }

            var dir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var configuration = dir.Parent?.Name ?? "Debug"; // bin/<Configuration>/net10.0
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MeshOperator.sln")))
            {
                dir = dir.Parent;
            }

            return dir is null
                ? throw new FileNotFoundException("cannot find the repository root (MeshOperator.sln) above " + AppContext.BaseDirectory)
                : Path.Combine(dir.FullName, "operator", "Mesh.Operator", "bin", configuration, "net10.0", "mesh-operator.dll");
        }
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static async Task<MeshLab> StartAsync()
    {
        var lab = new MeshLab(System.IO.Directory.CreateTempSubdirectory("mt-mesh-").FullName);
        try
        {
            lab.Lan = await lab.OwnAsync(await NetNs.CreateAsync(lab._names.Namespace("lan"), Token));
            // A fixed address: a bridge without one takes the lowest of its ports' and changes it as
            // nodes join, and a node whose gateway is the bridge (198.18.2.254 in the exit-node test)
            // would keep sending to the old one, which the bridge no longer takes as its own.
            await lab.Lan.CheckAsync(["ip", "link", "add", "br0", "address", "02:00:c6:12:02:fe", "type", "bridge"], Token);
            await lab.Lan.CheckAsync(["ip", "link", "set", "br0", "up"], Token);
            lab.CoordinatorNs = await lab.AttachAsync("co");
            await lab.StartCoordinatorAsync();
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    /// <summary>A namespace on the LAN with the next 198.18.2.x address.</summary>
    private async Task<NetNs> AttachAsync(string role)
    {
        var ns = await OwnAsync(await NetNs.CreateAsync(_names.Namespace(role), Token));
        var inner = _names.Link(role + "i");
        var outer = _names.Link(role + "o");
        var address = $"198.18.2.{_nextAddress++}";
        await ns.CheckAsync(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", Lan.Name], Token);
        await Lan.CheckAsync(["ip", "link", "set", outer, "master", "br0", "up"], Token);
        await ns.CheckAsync(["ip", "addr", "add", $"{address}/24", "dev", inner], Token);
        await ns.CheckAsync(["ip", "link", "set", inner, "up"], Token);
        await ns.CheckAsync(["ip", "link", "set", "lo", "up"], Token);
        return ns;
    }

    public async Task StartCoordinatorAsync()
    {
        var config = Path.Combine(Directory, "coordinator.yaml");
        var yaml = string.Join('\n',
            $"server_url: {LoginServer}",
            $"listen_addr: {CoordinatorAddress}:8080",
            $"metrics_listen_addr: {CoordinatorAddress}:9090",
            $"unix_socket: {AdminSocket}",
            "database:",
            "  sqlite:",
            $"    path: {Path.Combine(Directory, "mesh.db")}",
            "derp:",
            "  server:",
            "    enabled: true",
            $"    stun_listen_addr: {CoordinatorAddress}:3478");
        await File.WriteAllTextAsync(config, yaml, Token);
        _coordinator = CoordinatorNs.Start(["dotnet", OperatorDll, "coordinator", "--config", config]);
        if (!await Eventually.TryAsync(() => File.Exists(AdminSocket) || _coordinator.HasExited, TimeSpan.FromSeconds(30), Token) || _coordinator.HasExited)
        {
            throw new InvalidOperationException($"the coordinator did not start:\n{_coordinator.Stdout}\n{_coordinator.Stderr}");
        }
    }

    public async Task StopCoordinatorAsync()
    {
        if (_coordinator is { } c)
        {
            c.Signal(15);
            await c.WaitForExitAsync(TimeSpan.FromSeconds(15), Token);
            await c.DisposeAsync();
            _coordinator = null;
        }
    }

    /// <summary>Runs `mesh-operator ARGS --socket ADMIN-SOCKET` (the real CLI) and returns its output; throws on failure.</summary>
    public async Task<string> OperatorAsync(params string[] args)
    {
        var result = await ChildProcess.RunAsync("dotnet", [OperatorDll, .. args, "--socket", AdminSocket], TimeSpan.FromSeconds(60), Token);
        return result.EnsureSuccess().Stdout;
    }

    public async Task<string> CreateKeyAsync(string user, params string[] tags)
    {
        if (!(await OperatorAsync("users", "list", "-o", "json")).Contains($"\"{user}\"", StringComparison.Ordinal))
        {
            await OperatorAsync("users", "create", user, "--email", $"{user}@example.com");
        }

        string[] tagArgs = tags.Length > 0 ? ["--tags", string.Join(',', tags)] : [];
        var json = await OperatorAsync(["preauthkeys", "create", "--user", user, "--reusable", "--expiration", "1h", "-o", "json", .. tagArgs]);
        return JsonDocument.Parse(json).RootElement.GetProperty("key").GetString()!;
    }

    public async Task<int> NodeCountAsync() => JsonDocument.Parse(await OperatorAsync("nodes", "list", "-o", "json")).RootElement.GetArrayLength();

    /// <summary>
    /// A node on a private network (198.19.5.2/24) behind a router namespace on the LAN that
    /// masquerades it (iptables MASQUERADE, the common home/cloud NAT: it keeps the source port when
    /// it can, so every destination sees the same mapping). With <paramref name="randomFully"/> the
    /// router masquerades with <c>--random-fully</c>: each new destination (address and port) gets a
    /// random source port — a NAT whose mapping varies by destination. Returns the node and the
    /// router's LAN address — the node's public address as everyone else sees it.
    /// </summary>
    public async Task<(MeshNode Node, string PublicAddress)> AddNodeBehindNatAsync(string name, string authKey, bool randomFully = false)
    {
        var publicAddress = $"198.18.2.{_nextAddress}";
        var router = await AttachAsync(name + "r");
        var lanLink = (await router.CheckAsync(["ip", "-o", "-4", "addr", "show", "to", publicAddress], Token)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var node = await OwnAsync(await NetNs.CreateAsync(_names.Namespace(name), Token));
        var inner = _names.Link(name + "i");
        var outer = _names.Link(name + "p");
        await node.CheckAsync(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", router.Name], Token);
        await router.CheckAsync(["ip", "addr", "add", "198.19.5.1/24", "dev", outer], Token);
        await router.CheckAsync(["ip", "link", "set", outer, "up"], Token);
        await router.CheckAsync(["sysctl", "-qw", "net.ipv4.ip_forward=1"], Token);
        await router.CheckAsync(["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "198.19.5.0/24", "-o", lanLink, "-j", "MASQUERADE", .. (string[])(randomFully ? ["--random-fully"] : [])], Token);

        // Like a home router, it takes nothing unsolicited on its outside. (Without this, Linux
        // confirms a connection-tracking entry for an unsolicited datagram to the router itself, and
        // a later mapping of the same ports gets a new random port: two such routers in front of two
        // nodes would never let them punch through.)
        await router.CheckAsync(["iptables", "-A", "INPUT", "-i", lanLink, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP"], Token);
        await node.CheckAsync(["ip", "addr", "add", "198.19.5.2/24", "dev", inner], Token);
        await node.CheckAsync(["ip", "link", "set", inner, "up"], Token);
        await node.CheckAsync(["ip", "link", "set", "lo", "up"], Token);
        await node.CheckAsync(["ip", "route", "add", "default", "via", "198.19.5.1"], Token);
        var etc = Path.Combine("/etc/netns", node.Name);
        System.IO.Directory.CreateDirectory(etc);
        _etcDirectories.Add(etc);
        await File.WriteAllTextAsync(Path.Combine(etc, "resolv.conf"), "nameserver 100.100.100.100\nsearch mesh.internal\n", Token);
        var meshNode = new MeshNode(this, name, node, authKey, []);
        Nodes[name] = meshNode;
        _owned.Add(meshNode);
        await meshNode.StartAsync();
        return (meshNode, publicAddress);
    }

    /// <summary>Starts `mesh-sidecar up` in a new namespace and waits until it has its mesh addresses.</summary>
    public Task<MeshNode> AddNodeAsync(string name, string authKey, params string[] extraArgs) =>
        AddNodeAsync(name, authKey, null, extraArgs);

    /// <summary>As above; <paramref name="prepare"/> runs in the new namespace before the agent starts (e.g. firewall rules).</summary>
    public async Task<MeshNode> AddNodeAsync(string name, string authKey, Func<NetNs, Task>? prepare, params string[] extraArgs)
    {
        var ns = await AttachAsync(name);
        if (prepare is not null)
        {
            await prepare(ns);
        }


        // `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf: programs in
        // the node's namespace resolve through MagicDNS, and the host's own resolv.conf is untouched.
        var etc = Path.Combine("/etc/netns", ns.Name);
        System.IO.Directory.CreateDirectory(etc);
        _etcDirectories.Add(etc);
        await File.WriteAllTextAsync(Path.Combine(etc, "resolv.conf"), "nameserver 100.100.100.100\nsearch mesh.internal\n", Token);
        var node = new MeshNode(this, name, ns, authKey, extraArgs);
        Nodes[name] = node;
        _owned.Add(node);
        await node.StartAsync();
        return node;
    }

    /// <summary>Waits until every node's status lists all the others.</summary>
    public async Task WaitForFullMeshAsync()
    {
        foreach (var node in Nodes.Values)
        {
            var others = Nodes.Keys.Where(n => n != node.Name).ToHashSet();
            var ok = await Eventually.TryAsync(async ct => (await node.StatusAsync(ct)).Peers.Select(p => p.Name).ToHashSet().IsSupersetOf(others), TimeSpan.FromSeconds(20), Token);
            if (!ok)
            {
                throw new InvalidOperationException($"{node.Name} does not see {string.Join(", ", others)}:\n{await DescribeAsync()}");
            }
        }
    }

    public async Task<string> DescribeAsync()
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine($"--- coordinator\n{_coordinator?.Stdout}{_coordinator?.Stderr}");
        foreach (var node in Nodes.Values)
        {
            text.AppendLine($"--- {node.Name}\n{node.Process?.Stdout}{node.Process?.Stderr}");
        }

        return text.ToString();
    }

    private async Task<T> OwnAsync<T>(T item)
        where T : IAsyncDisposable
    {
        _owned.Add(item);
        await Task.CompletedTask;
        return item;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes.Values)
        {
            await node.StopAsync();
        }

        await StopCoordinatorAsync();
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        foreach (var etc in _etcDirectories)
        {
            try
            {
                System.IO.Directory.Delete(etc, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>One node: its namespace and its `mesh-sidecar up` process.</summary>
internal sealed class MeshNode : IAsyncDisposable
{
    private readonly MeshLab _lab;
    private readonly string _authKey;
    private readonly string[] _extraArgs;

    public MeshNode(MeshLab lab, string name, NetNs ns, string authKey, string[] extraArgs)
    {
        _lab = lab;
        Name = name;
        Namespace = ns;
        _authKey = authKey;
        _extraArgs = extraArgs;
    }

    public string Name { get; }
    public NetNs Namespace { get; }
    public ChildProcess? Process { get; private set; }
    public string Socket => Path.Combine(_lab.Directory, $"{Name}.sock");
    public string StateDirectory => Path.Combine(_lab.Directory, $"state-{Name}");
    public IPAddress? V4 { get; private set; }
    public IPAddress? V6 { get; private set; }

    private static string SidecarDll => MeshSidecarPeer.AssemblyPath;

    public async Task StartAsync()
    {
        var token = TestContext.Current.CancellationToken;
        Process = Namespace.Start(["dotnet", SidecarDll, "up", "--login-server", _lab.LoginServer, "--authkey", _authKey, "--hostname", Name, "--state", StateDirectory, "--socket", Socket, .. _extraArgs]);
        var ready = await Eventually.TryAsync(async ct =>
        {
            if (Process.HasExited || !File.Exists(Socket))
            {
                return Process.HasExited;
            }

            var ips = await IpsAsync(ct);
            return ips.Count == 2;
        }, TimeSpan.FromSeconds(30), token);
        if (!ready || Process.HasExited)
        {
            throw new InvalidOperationException($"{Name} did not come up:\n{Process.Stdout}\n{Process.Stderr}");
        }

        var addresses = await IpsAsync(token);
        V4 = IPAddress.Parse(addresses.Single(a => !a.Contains(':', StringComparison.Ordinal)));
        V6 = IPAddress.Parse(addresses.Single(a => a.Contains(':', StringComparison.Ordinal)));
    }

    public async Task StopAsync()
    {
        if (Process is { } p)
        {
            p.Signal(15);
            await p.WaitForExitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            await p.DisposeAsync();
            Process = null;
        }
    }

    public async Task<ExecResult> CliAsync(CancellationToken cancellationToken, params string[] args) =>
        await ChildProcess.RunAsync("dotnet", [SidecarDll, .. args, "--socket", Socket], TimeSpan.FromSeconds(30), cancellationToken);

    /// <summary>The agent's addresses, asked over its local socket in-process (polling through the CLI costs a process start each time).</summary>
    public async Task<IReadOnlyList<string>> IpsAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await LocalApiClient.CallAsync(Socket, new LocalRequest("ip"), cancellationToken)).Ips ?? [];
        }
        catch (IOException)
        {
            return [];
        }
    }

    public async Task<StatusReport> StatusAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await LocalApiClient.CallAsync(Socket, new LocalRequest("status"), cancellationToken)).Status ?? Empty;
        }
        catch (IOException)
        {
            return Empty;
        }
    }

    private static StatusReport Empty => new(new StatusNode("", "", [], false, "-", 0, 0, null), []);

    /// <summary>Ping by name: resolved through the namespace's resolv.conf, that is, MagicDNS.</summary>
    public Task<ExecResult> PingNameAsync(string name, CancellationToken cancellationToken) =>
        Namespace.ExecAsync(["ping", "-4", "-c", "2", "-W", "3", name], cancellationToken, TimeSpan.FromSeconds(30));

    /// <summary>The node's own address on the lab's LAN (198.18.2.x).</summary>
    public async Task<string> LanAddressAsync(CancellationToken cancellationToken)
    {
        var addresses = await Namespace.CheckAsync(["ip", "-o", "-4", "addr", "show", "scope", "global"], cancellationToken);
        return System.Text.RegularExpressions.Regex.Match(addresses, @"inet (198\.18\.2\.\d+)/").Groups[1].Value;
    }

    public Task<ExecResult> PingAsync(IPAddress target, CancellationToken cancellationToken, int count = 2) =>
        Namespace.ExecAsync(["ping", target.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4", "-c", $"{count}", "-W", "3", target.ToString()], cancellationToken, TimeSpan.FromSeconds(30));

    public ValueTask DisposeAsync() => new(StopAsync());
}

