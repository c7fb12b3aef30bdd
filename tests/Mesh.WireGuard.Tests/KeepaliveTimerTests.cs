using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>Passive (whitepaper §6.5) and persistent keepalives, stepped on a fake clock.</summary>
public sealed class KeepaliveTimerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Fact]
    public void ReceivedData_NothingSentForKeepaliveTimeout_SendsOneKeepalive()
    {
        var net = TimerLoop.Established(out var received); // B received A's packet
        var before = TimerLoop.Run(net, Protocol.KeepaliveTimeout - Step, Step, [net.PeerOfB]);
        net.Clock.Advance(Step - Tick);
        Assert.Empty(before.Outputs);
        Assert.Empty(TimerLoop.Drain(net.PeerOfB));

        net.Clock.Advance(Tick);
        Assert.Equal(received + Protocol.KeepaliveTimeout, net.B.Now);
        var keepalive = Assert.Single(TimerLoop.Drain(net.PeerOfB));

        Assert.Equal(Messages.TransportMinSize, keepalive.Length);
        Assert.Equal(Messages.TypeTransport, Messages.ReadType(keepalive));
        var result = net.A.Decapsulate(keepalive, BackToBack.SourceB, new byte[2048]);
        Assert.Equal(TunnelAction.Done, result.Action); // authenticated, nothing for the TUN

        var after = TimerLoop.Run(net, TimeSpan.FromSeconds(60), Step, [net.PeerOfB]);
        Assert.Empty(after.Outputs);
    }

    [Fact]
    public void ReceivedData_DataSentBack_NoPassiveKeepalive()
    {
        var net = TimerLoop.Established(out var start);
        net.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));

        var trace = TimerLoop.Run(net, TimeSpan.FromSeconds(30), Step);

        Assert.Empty(trace.From(net.PeerOfB));
        // A received B's data and answered nothing, so A owes the keepalive.
        var keepalive = Assert.Single(trace.From(net.PeerOfA));
        Assert.True(keepalive.IsKeepalive);
        Assert.Equal(start + TimeSpan.FromSeconds(1) + Protocol.KeepaliveTimeout, keepalive.At);
    }

    [Fact]
    public void PersistentKeepalive_Interval_KeepaliveAfterEveryIntervalOfSilence()
    {
        const int interval = 25;
        var net = TimerLoop.Established(out var start);
        net.PeerOfA.PersistentKeepaliveInterval = interval;

        // Stay below Rekey-After-Time so the initiator's own keepalives do not ask for a rekey.
        var trace = TimerLoop.Run(net, Protocol.RekeyAfterTime - TimeSpan.FromSeconds(1), Step);

        // B's passive keepalive at +10 s is the last thing A hears; from then on A speaks every 25 s.
        var fromB = Assert.Single(trace.From(net.PeerOfB));
        Assert.Equal(start + Protocol.KeepaliveTimeout, fromB.At);
        var fromA = trace.From(net.PeerOfA).ToList();
        Assert.All(fromA, o => Assert.True(o.IsKeepalive));
        var expected = Enumerable.Range(1, 4).Select(k => fromB.At + TimeSpan.FromSeconds(interval * k)).ToList();
        Assert.Equal(expected, fromA.Select(o => o.At).ToList());
    }

    [Fact]
    public void PersistentKeepalive_TrafficInBetween_RestartsInterval()
    {
        const int interval = 25;
        var net = TimerLoop.Established(out _);
        net.PeerOfA.PersistentKeepaliveInterval = interval;
        var trace = TimerLoop.Run(net, TimeSpan.FromSeconds(20), Step);
        Assert.Empty(trace.From(net.PeerOfA));

        // Data from A at +20 s (answered by B's passive keepalive at +30 s) pushes the next keepalive to +55 s.
        Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, TimerLoop.AToB())!));
        var sentAt = net.A.Now;
        trace = TimerLoop.Run(net, TimeSpan.FromSeconds(40), Step);

        var keepalive = Assert.Single(trace.From(net.PeerOfA));
        Assert.Equal(sentAt + Protocol.KeepaliveTimeout + TimeSpan.FromSeconds(interval), keepalive.At);
    }
}
