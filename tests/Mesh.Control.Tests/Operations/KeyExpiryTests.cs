using Mesh.Control.Tests.Coordinator;

namespace Mesh.Control.Tests.Operations;

/// <summary>
/// A node key that expires at a set time leaves its peers' maps soon after that time with nothing
/// else happening: the host's periodic tick notices the expiry and publishes it.
/// </summary>
public sealed class KeyExpiryTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task NodeKey_ExpiresInTwoSeconds_LeavesPeersStreamAfterThatTimeByItself()
    {
        await using var coordinator = await TestCoordinator.StartAsync();
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var a = coordinator.NewNode("a");
        using var b = coordinator.NewNode("b");
        await a.RegisterAsync(key);
        var bId = (await b.RegisterAsync(key)).NodeId;
        await using var watch = new StreamWatcher(a, a.MapRequest());
        await watch.WaitAsync(w => w.Peers.ContainsKey(bId), "B visible");

        var at = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(2);
        var view = await coordinator.Admin.ExpireNodeAsync(bId, at, Token);

        Assert.False(view.Expired);
        Assert.Equal(at, view.Expiry);
        await watch.WaitAsync(w => w.Peers.TryGetValue(bId, out var p) && p.KeyExpiry == at, "B's new key expiry pushed to A");
        Assert.True(DateTimeOffset.UtcNow < at, "the test machine took over 2 s to push a change; the 'not yet' check below would be meaningless");
        Assert.True(watch.Peers.ContainsKey(bId), "B dropped before its key expired");

        await watch.WaitAsync(w => !w.Peers.ContainsKey(bId), "B removed from A's map after its key expired", TimeSpan.FromSeconds(10));

        Assert.True(DateTimeOffset.UtcNow >= at, "B was removed before its key expired");
        Assert.Contains(watch.Received, m => m.PeersRemoved?.Contains(bId) == true);
        Assert.True((await coordinator.Admin.GetNodeAsync(bId, Token)).Expired);
    }
}
