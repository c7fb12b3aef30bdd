namespace Mesh.Control.Tests.State;

/// <summary>
/// What map streams receive when changes come in bursts: only the peers that changed, however many
/// snapshots were made in between (tests/bench/coordinator.sh once measured whole peer lists per
/// delta), and always the same view a full map would give, checked against <c>FullMap</c> as the model.
/// </summary>
public sealed class MapStreamDeltaTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private const string PerUser = """
        {"acls": [
          {"action": "accept", "src": ["alice@example.com"], "dst": ["alice@example.com:*"]},
          {"action": "accept", "src": ["bob@example.com"], "dst": ["bob@example.com:*"]}
        ]}
        """;

    [Fact]
    public async Task BurstOfEndpointChanges_StreamReceivesOnlyTheChangedPeers()
    {
        using var harness = new StateHarness();
        var nodes = new List<SimNode>();
        for (var i = 0; i < 200; i++)
        {
            nodes.Add(await harness.RegisterAsync($"n{i}"));
        }

        await using var stream = await harness.OpenStreamAsync(nodes[0]);
        await stream.UntilAsync(s => s.Peers.Count == 199, "the first full map with 199 peers");
        var changedBefore = stream.PeersChangedEntries;

        // Each change is followed by a snapshot read, so several snapshots are made before the pusher runs.
        var moved = new[] { nodes[17], nodes[88], nodes[150] };
        foreach (var node in moved)
        {
            await harness.ReportAsync(node, "198.18.7.1:41641");
            _ = harness.State.Snapshot;
        }

        await stream.UntilAsync(s => moved.All(n => s.Peers[n.Id].Endpoints.SequenceEqual(["198.18.7.1:41641"])), "the three new endpoints");
        Assert.Equal(3, stream.PeersChangedEntries - changedBefore);
        Assert.Equal(1, stream.FullMaps);
    }

    [Fact]
    public async Task ThreeHundredRegistrations_EachReachesTheStreamOnce()
    {
        using var harness = new StateHarness();
        var first = await harness.RegisterAsync("watcher");
        await using var stream = await harness.OpenStreamAsync(first);
        await stream.UntilAsync(s => s.Self is not null, "the first full map");

        var joined = new List<SimNode>();
        for (var i = 0; i < 300; i++)
        {
            joined.Add(await harness.RegisterAsync($"j{i}"));
        }

        await stream.UntilAsync(s => joined.All(n => s.Peers.ContainsKey(n.Id)), "all 300 joins");
        Assert.Equal(300, stream.PeersChangedEntries);
        Assert.Equal(1, stream.FullMaps);
        Assert.Equal(0, stream.PeersRemovedEntries);
    }

    [Fact]
    public async Task PerUserPolicy_ChangeOfAnInvisibleNode_IsNotSent()
    {
        using var harness = new StateHarness();
        await harness.Admin.SetPolicyAsync(PerUser, Token);
        var a1 = await harness.RegisterAsync("a1", "alice");
        var a2 = await harness.RegisterAsync("a2", "alice");
        var b1 = await harness.RegisterAsync("b1", "bob");
        await using var stream = await harness.OpenStreamAsync(a1);
        await stream.UntilAsync(s => s.Peers.ContainsKey(a2.Id), "a2 in a1's map");
        Assert.False(stream.Peers.ContainsKey(b1.Id));
        var changedBefore = stream.PeersChangedEntries;

        await harness.ReportAsync(b1, "198.18.0.2:41641");
        await harness.ReportAsync(a2, "198.18.0.3:41641");
        await stream.UntilAsync(s => s.Peers[a2.Id].Endpoints.Count == 1, "a2's endpoint");
        Assert.Equal(1, stream.PeersChangedEntries - changedBefore);
        Assert.False(stream.Peers.ContainsKey(b1.Id));
    }

    [Fact]
    public async Task PolicyChange_FilterSentOnlyWhenItsRulesChange()
    {
        using var harness = new StateHarness();
        await harness.Admin.SetPolicyAsync(PerUser, Token);
        var a1 = await harness.RegisterAsync("a1", "alice");
        var a2 = await harness.RegisterAsync("a2", "alice");
        await harness.RegisterAsync("b1", "bob");
        await using var stream = await harness.OpenStreamAsync(a1);
        await stream.UntilAsync(s => s.Peers.ContainsKey(a2.Id), "a1's full map");
        Assert.Equal(1, stream.FiltersReceived);

        // Another policy object with the same rules for a1 (bob's rule differs): nothing to send to a1.
        await harness.Admin.SetPolicyAsync(PerUser.Replace("bob@example.com:*", "bob@example.com:22", StringComparison.Ordinal), Token);
        await harness.ReportAsync(a2, "198.18.0.3:41641"); // something a1 does receive, after the policy
        await stream.UntilAsync(s => s.Peers[a2.Id].Endpoints.Count == 1, "a2's endpoint");
        Assert.Equal(1, stream.FiltersReceived);

        // A rule a1 is the destination of changes: its filter is sent, and is the full map's.
        await harness.Admin.SetPolicyAsync(PerUser.Replace("alice@example.com:*", "alice@example.com:443", StringComparison.Ordinal), Token);
        await stream.UntilAsync(s => s.FiltersReceived == 2, "a1's new filter");
        Assert.True(stream.Matches(harness.State.FullMap(a1.Id)));
        Assert.Equal(443, Assert.Single(stream.Filter!).DstPorts[0].Ports.First);
    }

    [Fact]
    public async Task ExpiryAndRenewal_WithTheSamePolicy_RemoveAndRestoreThePeer()
    {
        using var harness = new StateHarness();
        var a = await harness.RegisterAsync("a");
        var b = await harness.RegisterAsync("b");
        for (var i = 0; i < 20; i++)
        {
            await harness.RegisterAsync($"other{i}"); // enough peers that a stream looks at the changed node alone
        }

        await using var stream = await harness.OpenStreamAsync(a);
        await stream.UntilAsync(s => s.Peers.Count == 21, "a's full map");

        await harness.Admin.ExpireNodeAsync(b.Id, DateTimeOffset.UtcNow.AddMinutes(-1), Token);
        await stream.UntilAsync(s => !s.Peers.ContainsKey(b.Id), "expired b removed");
        await harness.Admin.ExpireNodeAsync(b.Id, DateTimeOffset.UtcNow.AddHours(1), Token);
        await stream.UntilAsync(s => s.Peers.ContainsKey(b.Id), "renewed b back");
    }

    /// <summary>
    /// Random changes (endpoints, expiry, joins, deletions, routes, policy switches, forced
    /// intermediate snapshots) with four streams open; at checkpoints every stream must hold exactly
    /// what a full map built now would give it.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RandomChanges_StreamsAlwaysConvergeToTheFullMap(int seed)
    {
        var random = new Random(seed);
        using var harness = new StateHarness();
        var nodes = new List<SimNode>();
        for (var i = 0; i < 30; i++)
        {
            nodes.Add(await harness.RegisterAsync($"n{i}", i % 2 == 0 ? "alice" : "bob"));
        }

        var watched = nodes.Take(4).ToList();
        var streams = new List<MapStreamReader>();
        foreach (var node in watched)
        {
            streams.Add(await harness.OpenStreamAsync(node));
        }

        try
        {
            var others = nodes.Skip(4).ToList();
            var expired = new HashSet<long>();
            var joins = 0;
            for (var step = 0; step < 200; step++)
            {
                var target = others[random.Next(others.Count)];
                var op = random.Next(10);
                if (expired.Contains(target.Id) && op is 0 or 1 or 2 or 6)
                {
                    op = 3; // an expired node's requests are refused: renew it instead
                }

                switch (op)
                {
                    case 0 or 1 or 2:
                        await harness.ReportAsync(target, $"198.18.{random.Next(256)}.{random.Next(256)}:41641");
                        break;
                    case 3:
                        var expire = random.Next(2) == 0;
                        await harness.Admin.ExpireNodeAsync(target.Id, DateTimeOffset.UtcNow.AddMinutes(expire ? -1 : 60), Token);
                        _ = expire ? expired.Add(target.Id) : expired.Remove(target.Id);
                        break;
                    case 4:
                        others.Add(await harness.RegisterAsync($"j{joins++}", random.Next(2) == 0 ? "alice" : "bob"));
                        break;
                    case 5 when others.Count > 10:
                        await harness.Admin.DeleteNodeAsync(target.Id, Token);
                        others.Remove(target);
                        break;
                    case 6:
                        await ApproveRouteAsync(harness, target, random);
                        break;
                    case 7:
                        await harness.Admin.SetPolicyAsync(random.Next(2) == 0 ? PerUser : Mesh.Control.State.MeshState.DefaultPolicy, Token);
                        break;
                    default:
                        _ = harness.State.Snapshot;
                        break;
                }

                // Sometimes right away (one change per push: streams look at the changed nodes alone),
                // sometimes after a burst (many changes per push: streams walk their peer lists).
                if (step % 25 == 24 || random.Next(3) == 0)
                {
                    await ConvergeAsync(harness, watched, streams, $"seed {seed}, step {step}");
                }
            }

            await ConvergeAsync(harness, watched, streams, $"seed {seed}, the end");
        }
        finally
        {
            foreach (var stream in streams)
            {
                await stream.DisposeAsync();
            }
        }
    }

    private static async Task ApproveRouteAsync(StateHarness harness, SimNode node, Random random)
    {
        var prefix = $"10.{random.Next(3)}.0.0/16";
        await harness.Nodes.MapAsync(node.Machine, new Mesh.Protocol.Control.MapRequest
        {
            NodeKey = node.NodeKey,
            ReadOnly = true,
            Hostinfo = new Mesh.Protocol.Control.Hostinfo { Hostname = node.Hostname, RoutableIps = [prefix] },
        }, Token);
        foreach (var route in await harness.Admin.ListRoutesAsync(Token))
        {
            if (route.NodeId == node.Id && !route.Enabled)
            {
                await harness.Admin.SetRouteEnabledAsync(route.Id, true, Token);
            }
        }
    }

    private static async Task ConvergeAsync(StateHarness harness, List<SimNode> watched, List<MapStreamReader> streams, string when)
    {
        for (var i = 0; i < watched.Count; i++)
        {
            var node = watched[i];
            await streams[i].UntilAsync(s => s.Matches(harness.State.FullMap(node.Id)), $"{node.Hostname}'s stream to match its full map ({when})");
        }
    }
}
