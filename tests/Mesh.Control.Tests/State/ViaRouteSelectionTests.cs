using Mesh.Protocol.Control;

namespace Mesh.Control.Tests.State;

/// <summary>
/// Route election follows via grants: a node whose via grant names routers of a subnet gets the subnet, in its
/// netmap, on one of those routers (online first, then lowest id) instead of the global primary; nodes without via
/// grants keep the global primary. Full maps and map-stream deltas both, on/offline changes and policy changes.
/// </summary>
public sealed class ViaRouteSelectionTests
{
    private const string Lan = "10.33.0.0/16";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private const string Defs = """
        "groups": {"group:eu": ["eve@example.com"], "group:us": ["ursula@example.com"]},
        "tagOwners": {"tag:router-eu": ["admin@example.com"], "tag:router-us": ["admin@example.com"],
                      "tag:exit-eu": ["admin@example.com"], "tag:exit-us": ["admin@example.com"]},
        """;

    private const string AutoApprove = """
        "autoApprovers": {"routes": {"10.33.0.0/16": ["tag:router-eu", "tag:router-us"]},
                          "exitNode": ["tag:exit-eu", "tag:exit-us"]},
        """;

    private const string ViaGrants = """
        "grants": [
          {"src": ["group:eu"], "dst": ["10.33.0.0/16"], "ip": ["*"], "via": ["tag:router-eu"]},
          {"src": ["group:us"], "dst": ["10.33.0.0/16"], "ip": ["*"], "via": ["tag:router-us"]},
          {"src": ["paul@example.com"], "dst": ["10.33.0.0/16"], "ip": ["*"]}
        ]}
        """;

    /// <summary>group:eu through tag:router-eu, group:us through tag:router-us, paul with a plain grant.</summary>
    private const string ViaPolicy = "{" + Defs + AutoApprove + ViaGrants;

    /// <summary>The same grants without via: everyone through the global primary.</summary>
    private const string PlainPolicy = "{" + Defs + AutoApprove + """
        "grants": [
          {"src": ["group:eu", "group:us", "paul@example.com"], "dst": ["10.33.0.0/16"], "ip": ["*"]},
          {"src": ["group:eu", "group:us", "paul@example.com"], "dst": ["tag:router-eu", "tag:router-us"], "ip": ["icmp:*"]}
        ]}
        """;

    /// <summary>
    /// Routers registered in this order (ids ascending): eu (A, the global primary while online), us (B), eu2 (A2);
    /// all advertise 10.33.0.0/16, approved by autoApprovers, and are online (streams open). Clients eu, us, paul.
    /// </summary>
    private sealed class Mesh : IAsyncDisposable
    {
        public required StateHarness Harness { get; init; }
        public required SimNode RouterEu { get; init; }
        public required SimNode RouterUs { get; init; }
        public required SimNode RouterEu2 { get; init; }
        public required SimNode Eu { get; init; }
        public required SimNode Us { get; init; }
        public required SimNode Paul { get; init; }
        public Dictionary<long, MapStreamReader> Online { get; } = [];

        public static async Task<Mesh> StartAsync(string policy)
        {
            var harness = new StateHarness();
            await harness.Admin.SetPolicyAsync(policy, Token);
            var mesh = new Mesh
            {
                Harness = harness,
                RouterEu = await harness.RegisterAsync("router-eu", "admin", "tag:router-eu"),
                RouterUs = await harness.RegisterAsync("router-us", "admin", "tag:router-us"),
                RouterEu2 = await harness.RegisterAsync("router-eu2", "admin", "tag:router-eu"),
                Eu = await harness.RegisterAsync("eu", "eve"),
                Us = await harness.RegisterAsync("us", "ursula"),
                Paul = await harness.RegisterAsync("paul", "paul"),
            };
            foreach (var router in new[] { mesh.RouterEu, mesh.RouterUs, mesh.RouterEu2 })
            {
                await harness.AdvertiseAsync(router, Lan);
                await mesh.OnlineAsync(router);
            }

            return mesh;
        }

        public async Task OnlineAsync(SimNode node)
        {
            var stream = await Harness.OpenStreamAsync(node);
            await stream.UntilAsync(s => s.Self is not null, $"{node.Hostname}'s first map");
            Online[node.Id] = stream;
        }

        public async Task OfflineAsync(SimNode node)
        {
            await Online[node.Id].DisposeAsync();
            Online.Remove(node.Id);
        }

        /// <summary>The nodes that carry 10.33.0.0/16 in <paramref name="viewer"/>'s full map (allowed IPs and primary routes agree).</summary>
        public List<string> CarriersFor(SimNode viewer) => Carriers(Harness.State.FullMap(viewer.Id).Peers!);

        public async ValueTask DisposeAsync()
        {
            foreach (var stream in Online.Values)
            {
                await stream.DisposeAsync();
            }

            Harness.Dispose();
        }
    }

    private static List<string> Carriers(IEnumerable<MapNode> peers)
    {
        var carriers = new List<string>();
        foreach (var peer in peers)
        {
            var allowed = peer.AllowedIps.Contains(Lan);
            Assert.Equal(allowed, peer.PrimaryRoutes.Contains(Lan));
            if (allowed)
            {
                carriers.Add(peer.Name);
            }
        }

        return carriers;
    }

    [Fact]
    public async Task TwoRoutersTwoTags_EachViewerGetsTheSubnetOnItsViaRouter_PlainGrantOnTheGlobalPrimary()
    {
        await using var mesh = await Mesh.StartAsync(ViaPolicy);
        var routes = await mesh.Harness.Admin.ListRoutesAsync(Token);
        Assert.All(routes, r => Assert.True(r.Enabled, $"{r.Node} {r.Prefix} approved by autoApprovers"));
        Assert.Equal("router-eu", Assert.Single(routes, r => r.IsPrimary).Node);

        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Eu));
        Assert.Equal(["router-us"], mesh.CarriersFor(mesh.Us));
        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Paul));

        // The us router is not the global primary, yet carries the subnet for group:us: its own map says it serves it.
        var usSelf = mesh.Harness.State.FullMap(mesh.RouterUs.Id).Self!;
        Assert.Equal([Lan], usSelf.PrimaryRoutes);
        Assert.Contains(Lan, usSelf.AllowedIps);
        Assert.Equal([Lan], mesh.Harness.State.FullMap(mesh.RouterEu2.Id).Self!.PrimaryRoutes);

        // Only the via routers are the eu client's peers (PeerGraph): the us router is not in its map at all.
        var euPeers = mesh.Harness.State.FullMap(mesh.Eu.Id).Peers!.Select(p => p.Name).Order().ToList();
        Assert.Equal(["router-eu", "router-eu2"], euPeers);
    }

    [Fact]
    public async Task ViaRouterGoesOffline_FailsOverToAnotherViaRouter_ThenStaysOnAViaRouterWhenNoneIsOnline()
    {
        await using var mesh = await Mesh.StartAsync(ViaPolicy);

        await mesh.OfflineAsync(mesh.RouterEu);
        Assert.Equal(["router-eu2"], mesh.CarriersFor(mesh.Eu));
        Assert.Equal(["router-us"], mesh.CarriersFor(mesh.Us));
        Assert.Equal(["router-us"], mesh.CarriersFor(mesh.Paul)); // the global primary moved to the next online router

        // No eu router online: the subnet stays on the lowest-id eu router (offline), never on the us router,
        // whose filter would drop group:eu's traffic; it comes back as soon as one returns.
        await mesh.OfflineAsync(mesh.RouterEu2);
        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Eu));
        Assert.Equal(["router-us"], mesh.CarriersFor(mesh.Us));

        await mesh.OnlineAsync(mesh.RouterEu2);
        Assert.Equal(["router-eu2"], mesh.CarriersFor(mesh.Eu));
        await mesh.OnlineAsync(mesh.RouterEu);
        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Eu));
        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Paul));
    }

    [Fact]
    public async Task MapStreams_RoutersOnAndOffline_DeltasMoveTheSubnetAndMatchTheFullMap()
    {
        await using var mesh = await Mesh.StartAsync(ViaPolicy);
        await using var eu = await mesh.Harness.OpenStreamAsync(mesh.Eu);
        await using var us = await mesh.Harness.OpenStreamAsync(mesh.Us);
        await using var paul = await mesh.Harness.OpenStreamAsync(mesh.Paul);
        var streams = new[] { (mesh.Eu, eu), (mesh.Us, us), (mesh.Paul, paul) };
        await ConvergeAsync(mesh, streams, "start");
        Assert.Equal(["router-eu"], Carriers(eu.Peers.Values));

        await mesh.OfflineAsync(mesh.RouterEu);
        await eu.UntilAsync(s => Carriers(s.Peers.Values).SequenceEqual(["router-eu2"]), "the subnet on router-eu2 for eu");
        await paul.UntilAsync(s => Carriers(s.Peers.Values).SequenceEqual(["router-us"]), "the subnet on the new global primary for paul");
        await ConvergeAsync(mesh, streams, "router-eu offline");
        Assert.Equal(1, eu.FullMaps);
        Assert.Equal(["router-us"], Carriers(us.Peers.Values));

        await mesh.OfflineAsync(mesh.RouterEu2);
        await ConvergeAsync(mesh, streams, "both eu routers offline");
        Assert.Equal(["router-eu"], Carriers(eu.Peers.Values));

        await mesh.OnlineAsync(mesh.RouterEu);
        await mesh.OnlineAsync(mesh.RouterEu2);
        await ConvergeAsync(mesh, streams, "both back");
        Assert.Equal(["router-eu"], Carriers(eu.Peers.Values));
        Assert.Equal(["router-us"], Carriers(us.Peers.Values));
        Assert.All(streams, s => Assert.Equal(1, s.Item2.FullMaps));
    }

    [Fact]
    public async Task MapStreams_PolicyChanges_ViaAddedAndRemoved_DeltasFollow()
    {
        await using var mesh = await Mesh.StartAsync(PlainPolicy);
        await using var us = await mesh.Harness.OpenStreamAsync(mesh.Us);
        await using var routerUs = await mesh.Harness.OpenStreamAsync(mesh.RouterUs);
        await ConvergeAsync(mesh, [(mesh.Us, us), (mesh.RouterUs, routerUs)], "plain policy");
        Assert.Equal(["router-eu"], Carriers(us.Peers.Values));
        Assert.Empty(routerUs.Self!.PrimaryRoutes);

        await mesh.Harness.Admin.SetPolicyAsync(ViaPolicy, Token);
        await us.UntilAsync(s => Carriers(s.Peers.Values).SequenceEqual(["router-us"]), "the subnet on router-us after the via policy");
        await routerUs.UntilAsync(s => s.Self!.PrimaryRoutes.SequenceEqual([Lan]), "router-us told it serves the subnet");
        await ConvergeAsync(mesh, [(mesh.Us, us), (mesh.RouterUs, routerUs)], "via policy");

        await mesh.Harness.Admin.SetPolicyAsync(PlainPolicy, Token);
        await us.UntilAsync(s => s.Peers.Values.Any(p => p.Name == "router-eu") && Carriers(s.Peers.Values).SequenceEqual(["router-eu"]), "the subnet back on the global primary");
        await routerUs.UntilAsync(s => s.Self!.PrimaryRoutes.Count == 0, "router-us no longer serving");
        await ConvergeAsync(mesh, [(mesh.Us, us), (mesh.RouterUs, routerUs)], "plain policy again");
        Assert.Equal(1, us.FullMaps);
    }

    [Fact]
    public async Task MapStreams_ManyPeers_FailoverSendsTheTwoRoutersOnly()
    {
        // Enough peers that the stream looks at the changed nodes alone: the router that went offline changed for
        // everyone; the one that takes over changed for group:eu only, and must be sent all the same.
        var policy = ViaPolicy.Replace("\"grants\": [", """
            "grants": [
              {"src": ["group:eu"], "dst": ["group:eu"], "ip": ["*"]},
            """, StringComparison.Ordinal);
        await using var mesh = await Mesh.StartAsync(policy);
        for (var i = 0; i < 20; i++)
        {
            await mesh.Harness.RegisterAsync($"eu{i}", "eve");
        }

        await using var eu = await mesh.Harness.OpenStreamAsync(mesh.Eu);
        await ConvergeAsync(mesh, [(mesh.Eu, eu)], "start");
        Assert.Equal(22, eu.Peers.Count);
        var changedBefore = eu.PeersChangedEntries;

        await mesh.OfflineAsync(mesh.RouterEu);
        await eu.UntilAsync(s => Carriers(s.Peers.Values).SequenceEqual(["router-eu2"]), "the subnet on router-eu2");
        await ConvergeAsync(mesh, [(mesh.Eu, eu)], "router-eu offline");
        Assert.Equal(2, eu.PeersChangedEntries - changedBefore);
        Assert.Equal(1, eu.FullMaps);
    }

    /// <summary>
    /// Random on/offline changes of the routers, route withdrawals and approvals, endpoint changes and policy
    /// switches (via, plain, none), with the clients' and routers' streams open: at checkpoints every stream holds
    /// exactly what a full map built now gives.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RandomChanges_StreamsConvergeToTheFullMap(int seed)
    {
        var random = new Random(seed);
        await using var mesh = await Mesh.StartAsync(ViaPolicy);
        var routers = new[] { mesh.RouterEu, mesh.RouterUs, mesh.RouterEu2 };
        IEnumerable<(SimNode, MapStreamReader)> OnlineRouters() =>
            routers.Where(r => mesh.Online.ContainsKey(r.Id)).Select(r => (r, mesh.Online[r.Id]));
        var watched = new List<(SimNode Node, MapStreamReader Stream)>();
        foreach (var node in new[] { mesh.Eu, mesh.Us, mesh.Paul })
        {
            watched.Add((node, await mesh.Harness.OpenStreamAsync(node)));
        }

        try
        {
            for (var step = 0; step < 60; step++)
            {
                var router = routers[random.Next(routers.Length)];
                switch (random.Next(6))
                {
                    case 0 or 1:
                        if (mesh.Online.ContainsKey(router.Id))
                        {
                            await mesh.OfflineAsync(router);
                        }
                        else
                        {
                            await mesh.OnlineAsync(router);
                        }

                        break;
                    case 2:
                        var routes = random.Next(3) == 0 ? Array.Empty<string>() : [Lan];
                        await mesh.Harness.AdvertiseAsync(router, routes);
                        await mesh.Harness.ApproveRoutesAsync(router);
                        break;
                    case 3:
                        await mesh.Harness.ReportAsync(mesh.Paul, $"198.18.{random.Next(256)}.{random.Next(256)}:41641");
                        break;
                    case 4:
                        await mesh.Harness.Admin.SetPolicyAsync(random.Next(3) switch { 0 => ViaPolicy, 1 => PlainPolicy, _ => "{" + Defs + AutoApprove + "\"grants\": [{\"src\": [\"*\"], \"dst\": [\"*\"], \"ip\": [\"*\"]}]}" }, Token);
                        break;
                    default:
                        _ = mesh.Harness.State.Snapshot;
                        break;
                }

                if (step % 10 == 9 || random.Next(3) == 0)
                {
                    await ConvergeAsync(mesh, watched.Concat(OnlineRouters()), $"seed {seed}, step {step}");
                }
            }

            await ConvergeAsync(mesh, watched.Concat(OnlineRouters()), $"seed {seed}, the end");
            Assert.All(watched, w => Assert.Equal(1, w.Stream.FullMaps));
        }
        finally
        {
            foreach (var (_, stream) in watched)
            {
                await stream.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task ViaAndPlainGrantForTheSameSubnet_GlobalPrimaryWins()
    {
        // Tailscale (via-grant-v43): a grant without via that covers the whole route lets any router serve it.
        var policy = ViaPolicy.Replace("""{"src": ["paul@example.com"]""", """{"src": ["paul@example.com", "group:us"]""", StringComparison.Ordinal);
        await using var mesh = await Mesh.StartAsync(policy);

        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Us));
        Assert.Equal(["router-eu"], mesh.CarriersFor(mesh.Eu));
    }

    [Fact]
    public async Task InternetVia_OnlyTheViaExitNodesOfferExitRoutes()
    {
        var policy = "{" + Defs + AutoApprove + """
            "grants": [
              {"src": ["group:eu"], "dst": ["autogroup:internet"], "ip": ["*"], "via": ["tag:exit-eu"]},
              {"src": ["group:eu"], "dst": ["tag:exit-us"], "ip": ["icmp:*"]},
              {"src": ["paul@example.com"], "dst": ["autogroup:internet"], "ip": ["*"]}
            ]}
            """;
        using var harness = new StateHarness();
        await harness.Admin.SetPolicyAsync(policy, Token);
        var exitUs = await harness.RegisterAsync("exit-us", "admin", "tag:exit-us");
        var exitEu = await harness.RegisterAsync("exit-eu", "admin", "tag:exit-eu");
        var eu = await harness.RegisterAsync("eu", "eve");
        var paul = await harness.RegisterAsync("paul", "paul");
        await harness.AdvertiseAsync(exitUs, "0.0.0.0/0", "::/0");
        await harness.AdvertiseAsync(exitEu, "0.0.0.0/0", "::/0");

        var euPeers = harness.State.FullMap(eu.Id).Peers!.ToDictionary(p => p.Name);
        Assert.True(euPeers["exit-eu"].ExitNode);
        Assert.Contains("0.0.0.0/0", euPeers["exit-eu"].AllowedIps);
        Assert.False(euPeers["exit-us"].ExitNode); // a peer (icmp), but not an exit node for group:eu
        Assert.DoesNotContain("0.0.0.0/0", euPeers["exit-us"].AllowedIps);
        Assert.DoesNotContain("::/0", euPeers["exit-us"].AllowedIps);

        var paulPeers = harness.State.FullMap(paul.Id).Peers!.ToDictionary(p => p.Name);
        Assert.True(paulPeers["exit-eu"].ExitNode);
        Assert.True(paulPeers["exit-us"].ExitNode);
        Assert.True(harness.State.FullMap(exitUs.Id).Self!.ExitNode);
    }

    [Fact]
    public async Task ManualApproval_OnlyApprovedRoutesAreCandidates()
    {
        // Without autoApprovers a via router's route must be approved (routes enable) before it can be elected.
        const string policy = "{" + Defs + ViaGrants;
        using var harness = new StateHarness();
        await harness.Admin.SetPolicyAsync(policy, Token);
        var routerUs = await harness.RegisterAsync("router-us", "admin", "tag:router-us");
        var routerEu = await harness.RegisterAsync("router-eu", "admin", "tag:router-eu");
        var eu = await harness.RegisterAsync("eu", "eve");
        await harness.AdvertiseAsync(routerUs, Lan);
        await harness.AdvertiseAsync(routerEu, Lan);
        await harness.ApproveRoutesAsync(routerUs);

        // The eu router's route is not approved: no candidate, so group:eu reaches the subnet through nobody
        // (its only peer is not a router of it), rather than through the us router that would drop the traffic.
        Assert.Empty(Carriers(harness.State.FullMap(eu.Id).Peers!));

        await harness.ApproveRoutesAsync(routerEu);
        Assert.Equal(["router-eu"], Carriers(harness.State.FullMap(eu.Id).Peers!));
    }

    private static async Task ConvergeAsync(Mesh mesh, IEnumerable<(SimNode Node, MapStreamReader Stream)> streams, string when)
    {
        foreach (var (node, stream) in streams)
        {
            await stream.UntilAsync(s => s.Matches(mesh.Harness.State.FullMap(node.Id)), $"{node.Hostname}'s stream to match its full map ({when})");
        }
    }
}
