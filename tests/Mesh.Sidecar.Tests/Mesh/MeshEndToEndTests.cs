using System.Text.RegularExpressions;
using Mesh.Control.Tests.Operations;
using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Mesh;

/// <summary>
/// The product as a user runs it: the real coordinator and real agents, each in a network namespace
/// of its own, joined by a bridged LAN.
/// </summary>
[Trait("Category", "Mesh")]
public sealed class MeshEndToEndTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ThreeNodes_PingEachOther_ByIpAndByMagicDnsName()
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        foreach (var name in new[] { "a", "b", "c" })
        {
            await lab.AddNodeAsync(name, key);
        }

        await lab.WaitForFullMeshAsync();
        foreach (var from in lab.Nodes.Values)
        {
            foreach (var to in lab.Nodes.Values.Where(n => n != from))
            {
                var v4 = await from.PingAsync(to.V4!, Token);
                Assert.True(v4.Succeeded, $"{from.Name} → {to.Name} ({to.V4}):\n{v4.Describe()}\n{await lab.DescribeAsync()}");
                var v6 = await from.PingAsync(to.V6!, Token);
                Assert.True(v6.Succeeded, $"{from.Name} → {to.Name} ({to.V6}):\n{v6.Describe()}");

                // MagicDNS: the short name and the full name.
                foreach (var name in new[] { to.Name, $"{to.Name}.mesh.internal" })
                {
                    var byName = await from.PingNameAsync(name, Token);
                    Assert.True(byName.Succeeded, $"{from.Name} → {name}:\n{byName.Describe()}");
                    Assert.Contains(to.V4!.ToString(), byName.Stdout);
                }
            }
        }

        // The real CLI: `status --json` and the table.
        var json = await lab.Nodes["a"].CliAsync(Token, "status", "--json");
        using var status = System.Text.Json.JsonDocument.Parse(json.EnsureSuccess().Stdout);
        var peers = status.RootElement.GetProperty("peers").EnumerateArray().ToList();
        Assert.Equal(2, peers.Count);
        Assert.All(peers, p => Assert.StartsWith("direct 198.18.2.", p.GetProperty("path").GetString()));
        Assert.All(peers, p => Assert.True(p.GetProperty("online").GetBoolean()));
        Assert.All(peers, p => Assert.True(p.GetProperty("rxBytes").GetInt64() > 0));
        var table = (await lab.Nodes["a"].CliAsync(Token, "status")).EnsureSuccess().Stdout;
        Assert.Contains("b ", table);
        Assert.Contains("direct 198.18.2.", table);
        var ip4 = (await lab.Nodes["b"].CliAsync(Token, "ip", "-4")).EnsureSuccess().Stdout.Trim();
        Assert.Equal(lab.Nodes["b"].V4!.ToString(), ip4);
        var pong = (await lab.Nodes["a"].CliAsync(Token, "ping", "b")).EnsureSuccess().Stdout;
        Assert.Contains($"pong from b ({lab.Nodes["b"].V4})", pong);
        Assert.Contains("via direct 198.18.2.", pong);
        var unknown = await lab.Nodes["a"].CliAsync(Token, "ping", "nosuchnode");
        Assert.False(unknown.Succeeded);
        Assert.Contains("no peer named", unknown.Stderr);
    }

    [Fact]
    public async Task CoordinatorRestart_TunnelsStayUp_AndAgentsResync()
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var a = await lab.AddNodeAsync("a", key);
        var b = await lab.AddNodeAsync("b", key);
        await lab.WaitForFullMeshAsync();
        Assert.True((await a.PingAsync(b.V4!, Token)).Succeeded, "ping before the coordinator stopped");

        await lab.StopCoordinatorAsync();
        var during = await a.PingAsync(b.V4!, Token);
        Assert.True(during.Succeeded, $"the tunnel went down with the coordinator:\n{during.Describe()}");

        await lab.StartCoordinatorAsync();
        var c = await lab.AddNodeAsync("c", key);
        var started = DateTime.UtcNow;
        await lab.WaitForFullMeshAsync();
        var took = DateTime.UtcNow - started;
        Assert.True(took < TimeSpan.FromSeconds(10), $"agents took {took.TotalSeconds:0.0} s to get back in sync");
        var ping = await a.PingAsync(c.V4!, Token);
        Assert.True(ping.Succeeded, $"a → new node c after the restart:\n{ping.Describe()}");
    }

    [Fact]
    public async Task AgentRestart_KeepsItsMeshIps()
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var a = await lab.AddNodeAsync("a", key);
        var b = await lab.AddNodeAsync("b", key);
        await lab.WaitForFullMeshAsync();
        var (v4, v6) = (a.V4, a.V6);

        await a.StopAsync();
        await a.StartAsync();

        Assert.Equal(v4, a.V4);
        Assert.Equal(v6, a.V6);
        await lab.WaitForFullMeshAsync();
        Assert.True((await b.PingAsync(a.V4!, Token)).Succeeded, "b → restarted a");
        Assert.Equal(2, await lab.NodeCountAsync());
    }
}

/// <summary>Policy enforcement in the data plane: each node filters what it decrypts, statefully.</summary>
[Trait("Category", "Mesh")]
public sealed class MeshPolicyTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Only tag:a may reach tag:b, and only on 5432; alice owns both tags.</summary>
    private static async Task SetOnlyAToB5432PolicyAsync(MeshLab lab)
    {
        var policy = Path.Combine(lab.Directory, "policy.hujson");
        await File.WriteAllTextAsync(policy, """
            {
              "tagOwners": {"tag:a": ["alice@example.com"], "tag:b": ["alice@example.com"]},
              "acls": [{"action": "accept", "src": ["tag:a"], "dst": ["tag:b:5432"]}],
            }
            """, Token);
        await lab.OperatorAsync("policy", "set", "--file", policy);
    }

    [Fact]
    public async Task PolicyAllowingOnlyAToB5432_OpensExactlyThat()
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        await using var lab = await MeshLab.StartAsync();
        await lab.CreateKeyAsync("alice");
        await SetOnlyAToB5432PolicyAsync(lab);
        var a = await lab.AddNodeAsync("a", await lab.CreateKeyAsync("alice", "tag:a"));
        var b = await lab.AddNodeAsync("b", await lab.CreateKeyAsync("alice", "tag:b"));
        await lab.WaitForFullMeshAsync();

        Assert.True(await CanConnectAsync(a, b, 5432), "A → B:5432 is allowed by the policy but did not connect");
        Assert.False(await CanConnectAsync(a, b, 22), "A → B:22 connected although the policy allows only 5432");
        Assert.False(await CanConnectAsync(b, a, 5432), "B → A:5432 connected although the policy allows only A → B");

        // B refused A's SYNs to 22 and says so in its metrics, each packet counted once, by reason.
        using var http = new HttpClient(new SocketsHttpHandler { ConnectCallback = async (context, ct) => await MeshAgentMetricsTests.ConnectInAsync(b, context.DnsEndPoint, ct) });
        var metrics = await PrometheusScrape.GetAsync(http, new Uri("http://127.0.0.1:9001/metrics"));
        Assert.True(metrics.Value("mesh_dropped_packets_total", ("reason", "filter_NoRule")) >= 1, $"b's refusals are not counted:\n{metrics}");
        Assert.Null(metrics.Value("mesh_dropped_packets_total", ("reason", "Filtered")));
    }

    [Fact]
    public async Task AgentsAskingForTheirTags_AreTagged_AndThePolicyAppliesToThemAsTheTags()
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        await SetOnlyAToB5432PolicyAsync(lab);

        // alice's key carries no tags: the nodes ask for them, and alice owns both.
        var a = await lab.AddNodeAsync("a", key, "--advertise-tags", "tag:a");
        var b = await lab.AddNodeAsync("b", key, "--advertise-tags", "tag:b");
        await lab.WaitForFullMeshAsync();

        using var nodes = System.Text.Json.JsonDocument.Parse(await lab.OperatorAsync("nodes", "list", "-o", "json"));
        var tags = nodes.RootElement.EnumerateArray().ToDictionary(
            n => n.GetProperty("name").GetString()!,
            n => string.Join(',', n.GetProperty("tags").EnumerateArray().Select(t => t.GetString())));
        Assert.Equal("tag:a", tags["a"]);
        Assert.Equal("tag:b", tags["b"]);

        Assert.True(await CanConnectAsync(a, b, 5432), "tag:a → tag:b:5432 is allowed by the policy but did not connect");
        Assert.False(await CanConnectAsync(a, b, 22), "tag:a → tag:b:22 connected although the policy allows only 5432");
        Assert.False(await CanConnectAsync(b, a, 5432), "tag:b → tag:a:5432 connected although the policy allows only a → b");
    }

    /// <summary>A TCP connection from one node to a listener on another, through the mesh.</summary>
    private static async Task<bool> CanConnectAsync(MeshNode from, MeshNode to, int port)
    {
        using var listener = to.Namespace.CreateSocket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(to.V4!, port));
        listener.Listen(1);
        using var client = from.Namespace.CreateSocket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(6));
        try
        {
            await client.ConnectAsync(new System.Net.IPEndPoint(to.V4!, port), timeout.Token);
            using var accepted = await listener.AcceptAsync(timeout.Token);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}

/// <summary>When no direct UDP path exists, traffic goes through the coordinator's relay — and comes back to direct.</summary>
[Trait("Category", "Mesh")]
public sealed class MeshRelayTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>iptables rules that cut a LAN node's UDP to and from the rest of the LAN (TCP, and so the relay, still work).</summary>
    internal static readonly string[][] BlockUdp =
    [
        ["iptables", "-A", "OUTPUT", "-p", "udp", "-d", "198.18.2.0/24", "-j", "DROP"],
        ["iptables", "-A", "INPUT", "-p", "udp", "-s", "198.18.2.0/24", "-j", "DROP"],
    ];

    [Fact]
    public async Task NodeBehindNat_ReachesLanPeerDirectly_AndNetcheckSeesTheNat()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables", "sysctl");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var a = await lab.AddNodeAsync("a", key);
        var (n, publicAddress) = await lab.AddNodeBehindNatAsync("n", key);
        await lab.WaitForFullMeshAsync();

        var reached = await Eventually.TryAsync(async ct => (await a.PingAsync(n.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(15), Token);
        Assert.True(reached, $"a → n (behind NAT) got no reply\n{await lab.DescribeAsync()}");
        Assert.True((await n.PingAsync(a.V4!, Token)).Succeeded, "n → a");

        // Direct, through the NAT's mapping — not relayed.
        var path = (await a.StatusAsync(Token)).Peers.Single(p => p.Name == "n").Path;
        Assert.StartsWith($"direct {publicAddress}:", path);

        var netcheck = (await n.CliAsync(Token, "netcheck")).EnsureSuccess().Stdout;
        Assert.Contains("udp: yes", netcheck);
        Assert.Contains($"public endpoint: {publicAddress}:", netcheck);
        Assert.Contains("mapping varies by destination: no", netcheck);
        Assert.Matches(new Regex(@"^relay ""mesh"" http://198\.18\.2\.1:8080/derp: connected, \d+(\.\d)? ms$", RegexOptions.Multiline), netcheck);
    }

    [Fact]
    public async Task NatsThatMapPerDestination_ReachAPublicNodeDirectly_AndEachOtherThroughTheRelay()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables", "sysctl");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var l = await lab.AddNodeAsync("l", key);
        var (r, rPublic) = await lab.AddNodeBehindNatAsync("r", key, randomFully: true);
        var (s, _) = await lab.AddNodeBehindNatAsync("s", key, randomFully: true);
        await lab.WaitForFullMeshAsync();

        // r's NAT gives each destination its own port, so the endpoint STUN saw is not the one l sees.
        // l answers r's ping at the source it came from and pings it back: direct both ways.
        var direct = await Eventually.TryAsync(async ct =>
            (await l.StatusAsync(ct)).Peers.Single(p => p.Name == "r").Path.StartsWith($"direct {rPublic}:", StringComparison.Ordinal)
            && (await r.StatusAsync(ct)).Peers.Single(p => p.Name == "l").Path.StartsWith("direct 198.18.2.", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), Token);
        Assert.True(direct, $"l and r not direct: l: {(await l.StatusAsync(Token)).Peers.Single(p => p.Name == "r").Path}, r: {(await r.StatusAsync(Token)).Peers.Single(p => p.Name == "l").Path}\n{await lab.DescribeAsync()}");
        Assert.True((await r.PingAsync(l.V4!, Token)).Succeeded, "r → l");

        // Two such NATs: no mapping either side can learn reaches the other, so the relay carries it.
        var reached = await Eventually.TryAsync(async ct => (await r.PingAsync(s.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(20), Token);
        Assert.True(reached, $"r → s (both behind NATs that map per destination): no reply\n{await lab.DescribeAsync()}");
        Assert.Equal("relay \"mesh\"", (await r.StatusAsync(Token)).Peers.Single(p => p.Name == "s").Path);
        Assert.Equal("relay \"mesh\"", (await s.StatusAsync(Token)).Peers.Single(p => p.Name == "r").Path);
        Assert.True((await s.PingAsync(r.V4!, Token)).Succeeded, "s → r");
    }

    [Fact]
    public async Task TwoNodesBehindDifferentNats_PunchThrough_AndTalkDirectly()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables", "sysctl");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");

        // Two home networks with the same private addressing, each behind its own MASQUERADE router:
        // neither node is reachable until it has sent to the other through its own NAT.
        var (n, nPublic) = await lab.AddNodeBehindNatAsync("n", key);
        var (m, mPublic) = await lab.AddNodeBehindNatAsync("m", key);
        await lab.WaitForFullMeshAsync();

        var reached = await Eventually.TryAsync(async ct => (await n.PingAsync(m.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(20), Token);
        Assert.True(reached, $"n → m (both behind NATs): no reply\n{await lab.DescribeAsync()}");
        var direct = await Eventually.TryAsync(async ct =>
            (await n.StatusAsync(ct)).Peers.Single().Path.StartsWith($"direct {mPublic}:", StringComparison.Ordinal)
            && (await m.StatusAsync(ct)).Peers.Single().Path.StartsWith($"direct {nPublic}:", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), Token);
        Assert.True(direct, $"not direct through both NATs: n: {(await n.StatusAsync(Token)).Peers.Single().Path}, m: {(await m.StatusAsync(Token)).Peers.Single().Path}\n{await lab.DescribeAsync()}");
        Assert.True((await m.PingAsync(n.V4!, Token)).Succeeded, "m → n");
        Assert.Contains("via direct", (await n.CliAsync(Token, "ping", "m")).EnsureSuccess().Stdout);
    }

    [Fact]
    public async Task Netcheck_ComparesTwoStunPorts_AndSeesANatThatMapsPerDestination()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables", "sysctl");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var onLan = await lab.AddNodeAsync("l", key);
        var (plain, plainAddress) = await lab.AddNodeBehindNatAsync("p", key);
        var (random, randomAddress) = await lab.AddNodeBehindNatAsync("r", key, randomFully: true);

        // The coordinator's STUN server answers on stun_listen_addr's port and the next one (derp.server.stun_alternate_port).
        var primary = $"{MeshLab.CoordinatorAddress}:3478";
        var alternate = $"{MeshLab.CoordinatorAddress}:3479";
        var compared = $"STUN {primary} and {alternate}, one IP, different ports";

        // MASQUERADE --random-fully: a new random port for each destination.
        var (text, mappings) = await NetcheckAsync(random, primary, alternate);
        Assert.Contains($"mapping varies by destination: yes ({compared}, saw different mappings", text);
        Assert.Equal(randomAddress, mappings[0].Address.ToString());
        Assert.Equal(randomAddress, mappings[1].Address.ToString());
        Assert.NotEqual(mappings[0].Port, mappings[1].Port);

        // Plain MASQUERADE keeps the source port, and no NAT at all maps nothing: the same mapping for both.
        foreach (var (node, address) in new[] { (plain, plainAddress), (onLan, "198.18.2.") })
        {
            (text, mappings) = await NetcheckAsync(node, primary, alternate);
            Assert.Contains($"mapping varies by destination: no ({compared}, saw the same mapping)", text);
            Assert.StartsWith(address, mappings[0].Address.ToString(), StringComparison.Ordinal);
            Assert.Equal(mappings[0], mappings[1]);
        }
    }

    /// <summary>`mesh-sidecar netcheck` on <paramref name="node"/>: its output, and the mapping each STUN endpoint reported.</summary>
    private static async Task<(string Text, System.Net.IPEndPoint[] Mappings)> NetcheckAsync(MeshNode node, params string[] stunEndpoints)
    {
        var text = (await node.CliAsync(Token, "netcheck")).EnsureSuccess().Stdout;
        Assert.Contains("udp: yes", text);
        var mappings = stunEndpoints.Select(stun =>
        {
            var line = Regex.Match(text, $@"^stun {Regex.Escape(stun)}: (\S+) in ", RegexOptions.Multiline);
            Assert.True(line.Success, $"{node.Name}: netcheck has no answer from STUN {stun}:\n{text}");
            return System.Net.IPEndPoint.Parse(line.Groups[1].Value);
        }).ToArray();
        return (text, mappings);
    }

    [Fact]
    public async Task UdpBlocked_NodeReachesPeersThroughTheRelay_ThenBackToDirect()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var a = await lab.AddNodeAsync("a", key);
        var c = await lab.AddNodeAsync("c", key, async ns =>
        {
            foreach (var rule in BlockUdp)
            {
                await ns.CheckAsync(rule, Token);
            }
        });
        await lab.WaitForFullMeshAsync();

        // The first handshake gets no answer on the direct path; within seconds both ends use the relay.
        var reached = await Eventually.TryAsync(async ct => (await a.PingAsync(c.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(15), Token);
        Assert.True(reached, $"a → c with c's UDP blocked: no reply within 15 s\n{await lab.DescribeAsync()}");
        Assert.True((await c.PingAsync(a.V4!, Token)).Succeeded, "c → a with c's UDP blocked");
        var relayed = await Eventually.TryAsync(async ct => (await a.StatusAsync(ct)).Peers.Single(p => p.Name == "c").Path == "relay \"mesh\"", TimeSpan.FromSeconds(10), Token);
        Assert.True(relayed, $"a's status does not say c is relayed: {(await a.StatusAsync(Token)).Peers.Single(p => p.Name == "c").Path}");
        var pong = (await a.CliAsync(Token, "ping", "c")).EnsureSuccess().Stdout;
        Assert.Contains("via relay \"mesh\"", pong);

        // UDP works again: the periodic direct probe finds the path and both ends roam back to it.
        foreach (var rule in BlockUdp)
        {
            await c.Namespace.CheckAsync([.. rule.Select(x => x == "-A" ? "-D" : x)], Token);
        }

        var direct = await Eventually.TryAsync(async ct => (await a.StatusAsync(ct)).Peers.Single(p => p.Name == "c").Path.StartsWith("direct ", StringComparison.Ordinal), TimeSpan.FromSeconds(30), Token);
        Assert.True(direct, $"a never moved back to a direct path to c: {(await a.StatusAsync(Token)).Peers.Single(p => p.Name == "c").Path}");
        Assert.True((await a.PingAsync(c.V4!, Token)).Succeeded, "a → c after moving back to direct");
    }

    [Fact]
    public async Task OneWayPath_BothEndsStayOnTheRelay_UntilItWorksBothWays()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var a = await lab.AddNodeAsync("a", key);
        var aAddress = await a.LanAddressAsync(Token);
        string[] dropFromA = ["iptables", "-A", "INPUT", "-p", "udp", "-s", aAddress, "-j", "DROP"];
        var b = await lab.AddNodeAsync("b", key, ns => ns.CheckAsync(dropFromA, Token));
        await lab.WaitForFullMeshAsync();

        // a's datagrams never reach b directly; b's reach a. Only the relay works both ways.
        var reached = await Eventually.TryAsync(async ct => (await a.PingAsync(b.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(20), Token);
        Assert.True(reached, $"a → b over a one-way direct path: no reply within 20 s\n{await lab.DescribeAsync()}");
        var bothRelayed = await Eventually.TryAsync(async ct =>
            (await a.StatusAsync(ct)).Peers.Single(p => p.Name == "b").Path == "relay \"mesh\"" && (await b.StatusAsync(ct)).Peers.Single(p => p.Name == "a").Path == "relay \"mesh\"",
            TimeSpan.FromSeconds(15), Token);
        Assert.True(bothRelayed, $"a: {(await a.StatusAsync(Token)).Peers.Single().Path}, b: {(await b.StatusAsync(Token)).Peers.Single().Path}\n{await lab.DescribeAsync()}");

        // Several rounds of path probes go by (b's reach a, a's answers do not reach b): a must not
        // be pulled onto the one-way path by what it hears from b directly, so a's pings keep
        // reaching b.
        var steady = await a.Namespace.ExecAsync(["ping", "-4", "-c", "20", "-i", "1", "-W", "2", b.V4!.ToString()], Token, TimeSpan.FromSeconds(60));
        var received = int.Parse(System.Text.RegularExpressions.Regex.Match(steady.Stdout, @"(\d+) received").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(received >= 19, $"a → b over the relay: {received} of 20 answered\n{steady.Stdout}\n{await lab.DescribeAsync()}");
        Assert.Equal("relay \"mesh\"", (await a.StatusAsync(Token)).Peers.Single().Path);

        // The path works both ways again: a round trip is seen and both ends go direct.
        await b.Namespace.CheckAsync([.. dropFromA.Select(x => x == "-A" ? "-D" : x)], Token);
        var direct = await Eventually.TryAsync(async ct =>
            (await a.StatusAsync(ct)).Peers.Single().Path.StartsWith("direct ", StringComparison.Ordinal) && (await b.StatusAsync(ct)).Peers.Single().Path.StartsWith("direct ", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), Token);
        Assert.True(direct, $"not back to direct: a: {(await a.StatusAsync(Token)).Peers.Single().Path}, b: {(await b.StatusAsync(Token)).Peers.Single().Path}");
        Assert.True((await a.PingAsync(b.V4!, Token)).Succeeded, "a → b after moving back to direct");
    }
}

/// <summary>The agent's health and metrics port (9001).</summary>
[Trait("Category", "Mesh")]
public sealed class MeshAgentMetricsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // An echo with 1,200 bytes of payload is a 1,228-byte IP packet; WireGuard pads it to 1,232 and
    // adds a 16-byte header and a 16-byte tag: 1,264 bytes on either path.
    private const int PingPayload = 1200;
    private const long PingWireBytes = 1264;

    private static readonly Uri MetricsUrl = new("http://127.0.0.1:9001/metrics");

    [Fact]
    public async Task HealthAndMetrics_OnPort9001_ReportPeersBytesPerPathAndHandshakes()
    {
        Requirements.SkipUnlessNetworkTestsCanRun("iptables");
        await using var lab = await MeshLab.StartAsync();
        var key = await lab.CreateKeyAsync("alice");
        var a = await lab.AddNodeAsync("a", key);
        var b = await lab.AddNodeAsync("b", key);
        var c = await lab.AddNodeAsync("c", key, async ns =>
        {
            foreach (var rule in MeshRelayTests.BlockUdp)
            {
                await ns.CheckAsync(rule, Token);
            }
        });
        await lab.WaitForFullMeshAsync();
        Assert.True((await a.PingAsync(b.V4!, Token)).Succeeded, "a → b");
        var reached = await Eventually.TryAsync(async ct => (await a.PingAsync(c.V4!, ct, count: 1)).Succeeded, TimeSpan.FromSeconds(15), Token);
        Assert.True(reached, $"a → c (UDP blocked) got no reply through the relay\n{await lab.DescribeAsync()}");
        var relayed = await Eventually.TryAsync(async ct => (await a.StatusAsync(ct)).Peers.Single(p => p.Name == "c").Path == "relay \"mesh\"", TimeSpan.FromSeconds(10), Token);
        Assert.True(relayed, "a's status does not say c is relayed");

        using var http = new HttpClient(new SocketsHttpHandler { ConnectCallback = async (context, ct) => await ConnectInAsync(a, context.DnsEndPoint, ct) });
        var health = await http.GetAsync("http://127.0.0.1:9001/healthz", Token);
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        var metrics = await PrometheusScrape.GetAsync(http, MetricsUrl);
        Assert.Equal(2, metrics.Value("mesh_peers"));
        Assert.Equal(1, metrics.Value("mesh_peers_relayed"));
        Assert.Equal(2, metrics.Value("mesh_peers_with_session"));
        Assert.Equal("counter", metrics.TypeOf("mesh_handshakes_total"));
        Assert.True(metrics.Value("mesh_handshakes_total") >= 2, $"a has sessions with b and c, so at least two completed handshakes:\n{metrics}");
        Assert.NotNull(metrics.Value("mesh_udp_datagrams_total", ("direction", "rx")));
        Assert.NotNull(metrics.Value("mesh_relayed_datagrams_total", ("direction", "tx")));
        Assert.NotNull(metrics.Value("mesh_peer_bytes_total", ("direction", "tx")));

        // Through the relay to c: relay bytes grow by at least the echoes and the replies; direct ones hardly move.
        var (ping, grew) = await PingAndMeasureAsync(http, a, c, "relay");
        Assert.True(grew.RelayTx >= ping.Sent * PingWireBytes && grew.RelayRx >= ping.Received * PingWireBytes, $"relay bytes grew by {grew} for {ping}");
        Assert.True(grew.DirectTx < ping.Sent * PingWireBytes / 2 && grew.DirectRx < ping.Sent * PingWireBytes / 2, $"a relayed ping moved direct bytes: {grew} for {ping}");

        // And directly to b: the other way round.
        (ping, grew) = await PingAndMeasureAsync(http, a, b, "direct");
        Assert.True(grew.DirectTx >= ping.Sent * PingWireBytes && grew.DirectRx >= ping.Received * PingWireBytes, $"direct bytes grew by {grew} for {ping}");
        Assert.True(grew.RelayTx < ping.Sent * PingWireBytes / 2 && grew.RelayRx < ping.Sent * PingWireBytes / 2, $"a direct ping moved relay bytes: {grew} for {ping}");
    }

    private sealed record PingCount(int Sent, int Received);

    private sealed record PathBytes(long DirectRx, long DirectTx, long RelayRx, long RelayTx)
    {
        public static PathBytes operator -(PathBytes x, PathBytes y) => new(x.DirectRx - y.DirectRx, x.DirectTx - y.DirectTx, x.RelayRx - y.RelayRx, x.RelayTx - y.RelayTx);
    }

    private static async Task<PathBytes> PathBytesAsync(HttpClient http)
    {
        var scrape = await PrometheusScrape.GetAsync(http, MetricsUrl);
        long Bytes(string path, string direction) =>
            (long)(scrape.Value("mesh_path_bytes_total", ("path", path), ("direction", direction)) ?? throw new InvalidOperationException($"no mesh_path_bytes_total{{path=\"{path}\",direction=\"{direction}\"}}:\n{scrape}"));
        return new PathBytes(Bytes("direct", "rx"), Bytes("direct", "tx"), Bytes("relay", "rx"), Bytes("relay", "tx"));
    }

    /// <summary>
    /// Five 1,200-byte pings from <paramref name="from"/> to <paramref name="to"/>, then scrapes of
    /// <paramref name="from"/>'s metrics until <paramref name="path"/>'s bytes have grown by the
    /// pings (or 5 s have passed). Returns the pings counted and how much each counter grew.
    /// </summary>
    private static async Task<(PingCount Ping, PathBytes Grew)> PingAndMeasureAsync(HttpClient http, MeshNode from, MeshNode to, string path)
    {
        var before = await PathBytesAsync(http);
        var result = await from.Namespace.ExecAsync(["ping", "-4", "-c", "5", "-i", "0.2", "-s", $"{PingPayload}", "-W", "3", to.V4!.ToString()], Token, TimeSpan.FromSeconds(30));
        Assert.True(result.Succeeded, $"{from.Name} → {to.Name}:\n{result.Describe()}");
        var counts = Regex.Match(result.Stdout, @"(\d+) packets transmitted, (\d+) received");
        Assert.True(counts.Success, result.Describe());
        var ping = new PingCount(int.Parse(counts.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(counts.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        var grew = new PathBytes(0, 0, 0, 0);
        await Eventually.TryAsync(async _ =>
        {
            grew = await PathBytesAsync(http) - before;
            var (rx, tx) = path == "relay" ? (grew.RelayRx, grew.RelayTx) : (grew.DirectRx, grew.DirectTx);
            return tx >= ping.Sent * PingWireBytes && rx >= ping.Received * PingWireBytes;
        }, TimeSpan.FromSeconds(5), Token, TimeSpan.FromMilliseconds(250));
        return (ping, grew);
    }

    /// <summary>A TCP connection opened inside the node's namespace (the port listens there).</summary>
    internal static async ValueTask<Stream> ConnectInAsync(MeshNode node, System.Net.DnsEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = node.Namespace.CreateSocket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(System.Net.IPAddress.Loopback, endpoint.Port, cancellationToken);
        return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
    }
}
