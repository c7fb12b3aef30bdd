using Mesh.Control.State;

namespace Mesh.Control.Tests.State;

/// <summary>
/// When a node was last seen, as `mesh-operator nodes list` shows it: current after every map
/// request, stream open and stream close, although the database is written in batches (every
/// <see cref="MeshState.LastSeenWriteInterval"/>, after disconnects, at shutdown) rather than per request.
/// </summary>
public sealed class LastSeenTests
{
    private static readonly DateTimeOffset Start = new(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

    [Fact]
    public async Task MapRequests_ShownAtOnce_WrittenOncePerInterval()
    {
        var clock = new ManualClock(Start);
        using var harness = new StateHarness(clock);
        var node = await harness.RegisterAsync("web");
        Assert.Null((await harness.NodeAsync(node)).LastSeen);

        // A map request per second for 20 s: each is visible at once, none is written.
        for (var i = 1; i <= 20; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            await harness.ReportAsync(node);
            Assert.Equal(clock.GetUtcNow(), (await harness.NodeAsync(node)).LastSeen);
            harness.State.Tick();
        }

        Assert.Null(harness.Store.GetNode(node.Id)!.LastSeen);

        // Once the interval has passed since the last write, the next tick writes the latest time.
        var last = clock.GetUtcNow();
        clock.Advance(MeshState.DefaultLastSeenWriteInterval - TimeSpan.FromSeconds(20));
        harness.State.Tick();
        Assert.Equal(last, harness.Store.GetNode(node.Id)!.LastSeen);
        Assert.Equal(last, (await harness.NodeAsync(node)).LastSeen);
    }

    [Fact]
    public async Task LastSeen_AfterARestart_IsTheLastRequestBeforeIt()
    {
        var clock = new ManualClock(Start);
        using var harness = new StateHarness(clock);
        var node = await harness.RegisterAsync("web");
        clock.Advance(TimeSpan.FromSeconds(5));
        await harness.ReportAsync(node, "198.18.0.1:41641");
        clock.Advance(TimeSpan.FromSeconds(5));
        await harness.ReportAsync(node, "198.18.0.1:41641"); // nothing changed but the time
        var seen = clock.GetUtcNow();

        clock.Advance(TimeSpan.FromSeconds(3));
        harness.Restart();

        var view = await harness.NodeAsync(node);
        Assert.Equal(seen, view.LastSeen);
        Assert.False(view.Online);
    }

    [Fact]
    public async Task StreamClosed_OfflineWithTheCloseTime_WrittenAtTheNextTick()
    {
        var clock = new ManualClock(Start);
        using var harness = new StateHarness(clock);
        var node = await harness.RegisterAsync("web");
        var stream = await harness.OpenStreamAsync(node);
        await stream.UntilAsync(s => s.Self is not null, "the first full map");
        Assert.True((await harness.NodeAsync(node)).Online);

        clock.Advance(TimeSpan.FromSeconds(7));
        var closed = clock.GetUtcNow();
        await stream.DisposeAsync();

        var view = await harness.NodeAsync(node);
        Assert.False(view.Online);
        Assert.Equal(closed, view.LastSeen);

        clock.Advance(TimeSpan.FromSeconds(2));
        harness.State.Tick();
        Assert.Equal(closed, harness.Store.GetNode(node.Id)!.LastSeen);
    }

    [Fact]
    public async Task StreamClosed_PeersSeeTheNodeOfflineWithItsLastSeen()
    {
        var clock = new ManualClock(Start);
        using var harness = new StateHarness(clock);
        var watcher = await harness.RegisterAsync("watcher");
        var node = await harness.RegisterAsync("web");
        await using var watch = await harness.OpenStreamAsync(watcher);
        var stream = await harness.OpenStreamAsync(node);
        await watch.UntilAsync(s => s.Peers.TryGetValue(node.Id, out var p) && p.Online, "web online in the watcher's map");

        clock.Advance(TimeSpan.FromSeconds(9));
        await stream.DisposeAsync();

        await watch.UntilAsync(s => !s.Peers[node.Id].Online, "web offline in the watcher's map");
        Assert.Equal(clock.GetUtcNow(), watch.Peers[node.Id].LastSeen);
    }

    [Fact]
    public async Task OpenStream_StoreFollowsAtEachInterval_SoACrashLosesLittle()
    {
        var clock = new ManualClock(Start);
        using var harness = new StateHarness(clock);
        var node = await harness.RegisterAsync("web");
        await using var stream = await harness.OpenStreamAsync(node);
        await stream.UntilAsync(s => s.Self is not null, "the first full map");

        clock.Advance(MeshState.DefaultLastSeenWriteInterval);
        harness.State.Tick();
        Assert.Equal(clock.GetUtcNow(), harness.Store.GetNode(node.Id)!.LastSeen);

        clock.Advance(TimeSpan.FromSeconds(5));
        harness.State.Tick(); // not due: the store stays where it was
        Assert.Equal(clock.GetUtcNow() - TimeSpan.FromSeconds(5), harness.Store.GetNode(node.Id)!.LastSeen);
    }

    [Fact]
    public async Task Store_NeverMovesLastSeenBackwards()
    {
        using var harness = new StateHarness();
        var node = await harness.RegisterAsync("web");
        var later = DateTimeOffset.UtcNow.AddMinutes(5);
        harness.Store.SetNodeLastSeen(node.Id, later);

        Assert.Equal(0, harness.Store.SetNodesLastSeen([(node.Id, later.AddSeconds(-1)), (node.Id + 1000, later)]));
        Assert.Equal(later, harness.Store.GetNode(node.Id)!.LastSeen);
        Assert.Equal(1, harness.Store.SetNodesLastSeen([(node.Id, later.AddSeconds(1))]));
        Assert.Equal(later.AddSeconds(1), harness.Store.GetNode(node.Id)!.LastSeen);
    }
}
