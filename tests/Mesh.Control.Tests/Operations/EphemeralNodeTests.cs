using System.Net;
using Mesh.Control.Tests.Coordinator;

namespace Mesh.Control.Tests.Operations;

/// <summary>
/// Ephemeral nodes (registered with an ephemeral pre-auth key) are removed by the host's periodic
/// tick once offline for ephemeral_node_inactivity_timeout: gone from the admin API and from peers'
/// maps, and their addresses free for the next node.
/// </summary>
public sealed class EphemeralNodeTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EphemeralNode_OfflinePastInactivityTimeout_RemovedEverywhereAndItsAddressReused()
    {
        await using var coordinator = await TestCoordinator.StartAsync(c => c.EphemeralNodeInactivityTimeout = "1s");
        using var a = coordinator.NewNode("a");
        await a.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        await using var watchA = new StreamWatcher(a, a.MapRequest());
        await watchA.WaitAsync(w => w.Self is not null, "A's first map");

        using var eph = coordinator.NewNode("eph");
        var registered = await eph.RegisterAsync(await coordinator.CreateKeyAsync("alice", ephemeral: true));
        Assert.True((await coordinator.Admin.GetNodeAsync(registered.NodeId, Token)).Ephemeral);
        await using (var watchE = new StreamWatcher(eph, eph.MapRequest()))
        {
            await watchA.WaitAsync(w => w.Peers.TryGetValue(registered.NodeId, out var p) && p.Online, "the ephemeral node online in A's map");
        }

        await watchA.WaitAsync(w => w.Received.Any(m => m.PeersRemoved?.Contains(registered.NodeId) == true), "PeersRemoved with the ephemeral node's id on A's stream");
        Assert.False(watchA.Peers.ContainsKey(registered.NodeId));
        Assert.DoesNotContain(await coordinator.Admin.ListNodesAsync(null, Token), n => n.Id == registered.NodeId);
        await Assert.ThrowsAsync<Mesh.Control.Admin.AdminException>(() => coordinator.Admin.GetNodeAsync(registered.NodeId, Token));

        using var next = coordinator.NewNode("next");
        var reused = await next.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        Assert.NotEqual(registered.NodeId, reused.NodeId);
        Assert.Equal(registered.Addresses, reused.Addresses);
    }

    [Fact]
    public async Task EphemeralNode_StreamStillOpen_NotRemoved()
    {
        await using var coordinator = await TestCoordinator.StartAsync(c => c.EphemeralNodeInactivityTimeout = "1s");
        using var eph = coordinator.NewNode("eph");
        var registered = await eph.RegisterAsync(await coordinator.CreateKeyAsync("alice", ephemeral: true));
        await using var watch = new StreamWatcher(eph, eph.MapRequest());
        await watch.WaitAsync(w => w.Self is not null, "the ephemeral node's first map");

        // Tick directly, well past the timeout since registration: an online node stays, however old.
        var created = (await coordinator.Admin.GetNodeAsync(registered.NodeId, Token)).CreatedAt;
        await Eventually.UntilAsync(
            () =>
            {
                coordinator.Host.State.Tick();
                return Task.FromResult(DateTimeOffset.UtcNow - created);
            },
            age => age > TimeSpan.FromSeconds(3),
            "the node older than three timeouts");

        Assert.Contains(await coordinator.Admin.ListNodesAsync(null, Token), n => n.Id == registered.NodeId && n.Online);
        Assert.False(watch.Ended);
    }

    [Fact]
    public async Task NonEphemeralNode_OfflinePastInactivityTimeout_Kept()
    {
        await using var coordinator = await TestCoordinator.StartAsync(c => c.EphemeralNodeInactivityTimeout = "1s");
        using var node = coordinator.NewNode("durable");
        var registered = await node.RegisterAsync(await coordinator.CreateKeyAsync("alice"));
        await using (var watch = new StreamWatcher(node, node.MapRequest()))
        {
            await watch.WaitAsync(w => w.Self is not null, "first map");
        }

        var view = await Eventually.UntilAsync(
            () => coordinator.Admin.GetNodeAsync(registered.NodeId, Token),
            n => !n.Online && n.LastSeen is { } seen && DateTimeOffset.UtcNow - seen > TimeSpan.FromSeconds(3),
            "the node offline for three timeouts");

        coordinator.Host.State.Tick();
        var kept = Assert.Single(await coordinator.Admin.ListNodesAsync(null, Token));
        Assert.Equal(view.Id, kept.Id);
        Assert.Equal(IPAddress.Parse(registered.Addresses[0].Split('/')[0]).ToString(), kept.IpAddresses[0]);
    }
}
