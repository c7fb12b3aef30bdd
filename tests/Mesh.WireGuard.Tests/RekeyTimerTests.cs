using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>
/// Keypair lifetime timers of whitepaper §6.1–§6.3 (Rekey-After-Time, Reject-After-Time, the
/// new-handshake timer and zeroing of key material), stepped on a fake clock to each boundary.
/// </summary>
public sealed class RekeyTimerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Fact]
    public void Send_JustBeforeRekeyAfterTime_SendsTransportWithoutHandshake()
    {
        var net = TimerLoop.Established(out var start);
        var trace = TimerLoop.Run(net, Protocol.RekeyAfterTime - TimeSpan.FromSeconds(1), Step);
        net.Clock.Advance(TimeSpan.FromSeconds(1) - Tick);
        Assert.Equal(start + Protocol.RekeyAfterTime - Tick, net.A.Now);

        var datagram = BackToBack.Send(net.A, TimerLoop.AToB());

        Assert.DoesNotContain(trace.Outputs, o => o.IsInitiation);
        Assert.NotNull(datagram);
        Assert.Equal(Messages.TypeTransport, Messages.ReadType(datagram));
        Assert.False(net.PeerOfA.HandshakeWanted);
        Assert.Empty(TimerLoop.Drain(net.PeerOfA));
        Assert.Single(net.Deliver(net.B, datagram!));
    }

    [Fact]
    public void Send_AtRekeyAfterTime_InitiatorWantsHandshakeAndTimersSendExactlyOneInitiation()
    {
        var net = TimerLoop.Established(out var start);
        TimerLoop.Run(net, Protocol.RekeyAfterTime, Step);
        Assert.Equal(start + Protocol.RekeyAfterTime, net.A.Now);

        var datagram = BackToBack.Send(net.A, TimerLoop.AToB());

        // The old session still carries this packet; the handshake is left to the timers.
        Assert.Equal(Messages.TypeTransport, Messages.ReadType(datagram));
        Assert.True(net.PeerOfA.HandshakeWanted);
        var initiation = Assert.Single(TimerLoop.Drain(net.PeerOfA));
        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(initiation));
        Assert.Equal(Messages.InitiationSize, initiation.Length);
        Assert.False(net.PeerOfA.HandshakeWanted);
    }

    [Fact]
    public void Send_AtRekeyAfterTime_ResponderDoesNotWantHandshake()
    {
        // §6.2: only the initiator rekeys on age, so both sides do not start handshakes at once.
        var net = TimerLoop.Established(out _);
        TimerLoop.Run(net, Protocol.RekeyAfterTime + TimeSpan.FromSeconds(1), Step);

        var datagram = BackToBack.Send(net.B, TimerLoop.BToA());

        Assert.Equal(Messages.TypeTransport, Messages.ReadType(datagram));
        Assert.False(net.PeerOfB.HandshakeWanted);
        Assert.Empty(TimerLoop.Drain(net.PeerOfB));
    }

    [Fact]
    public void Rekey_Completed_NewCurrentKeypairAndPreviousStillDecryptsInFlightPackets()
    {
        var net = TimerLoop.Established(out _);
        TimerLoop.Run(net, Protocol.RekeyAfterTime, Step);
        var oldA = net.PeerOfA.CurrentKeypair;
        var oldB = net.PeerOfB.CurrentKeypair;
        var fromA = TimerLoop.AToB(fill: 1);
        var fromB = TimerLoop.BToA(fill: 2);
        var inFlightToB = BackToBack.Send(net.A, fromA)!; // also asks for the rekey
        var inFlightToA = BackToBack.Send(net.B, fromB)!;

        var initiation = Assert.Single(TimerLoop.Drain(net.PeerOfA));
        net.Deliver(net.B, initiation); // response, then A's confirming keepalive

        Assert.NotNull(net.PeerOfA.CurrentKeypair);
        Assert.NotSame(oldA, net.PeerOfA.CurrentKeypair);
        Assert.Same(oldA, net.PeerOfA.PreviousKeypair);
        Assert.NotSame(oldB, net.PeerOfB.CurrentKeypair);
        Assert.Same(oldB, net.PeerOfB.PreviousKeypair);
        Assert.Null(net.PeerOfB.NextKeypair);
        Assert.Equal(2, net.A.HandshakesCompleted);
        Assert.Equal(2, net.B.HandshakesCompleted);

        Assert.Equal(fromB, Assert.Single(net.Deliver(net.A, inFlightToA)).Packet);
        Assert.Equal(fromA, Assert.Single(net.Deliver(net.B, inFlightToB)).Packet);

        // And the new session carries data both ways.
        Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, TimerLoop.AToB())!));
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));
    }

    [Fact]
    public void Rekey_DataSentWhileInitiationInFlight_OnlyOneInitiation()
    {
        var net = TimerLoop.Established(out _);
        TimerLoop.Run(net, Protocol.RekeyAfterTime, Step);
        var first = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var initiation = Assert.Single(TimerLoop.Drain(net.PeerOfA));
        net.Clock.Advance(TimeSpan.FromMilliseconds(50));
        var second = BackToBack.Send(net.A, TimerLoop.AToB())!; // still the old session, still over age

        net.Deliver(net.B, first);
        net.Deliver(net.B, second);
        net.Deliver(net.B, initiation);
        var rekeyed = net.PeerOfA.CurrentKeypair;
        var trace = TimerLoop.Run(net, TimeSpan.FromSeconds(10), Step);

        Assert.DoesNotContain(trace.Outputs, o => o.IsInitiation);
        Assert.Same(rekeyed, net.PeerOfA.CurrentKeypair);
    }

    [Fact]
    public void Encapsulate_KeypairAtRejectAfterTime_StagesPacketAndStartsHandshake()
    {
        var net = TimerLoop.Established(out var start);
        TimerLoop.Run(net, Protocol.RejectAfterTime - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        net.Clock.Advance(TimeSpan.FromSeconds(1) - Tick);
        var justBefore = BackToBack.Send(net.A, TimerLoop.AToB())!;
        Assert.Equal(Messages.TypeTransport, Messages.ReadType(justBefore));
        Assert.Single(net.Deliver(net.B, justBefore));

        net.Clock.Advance(Tick);
        Assert.Equal(start + Protocol.RejectAfterTime, net.A.Now);
        var packet = TimerLoop.AToB(fill: 7);
        var datagram = BackToBack.Send(net.A, packet)!;

        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(datagram));
        Assert.True(net.PeerOfA.HasStagedPackets);
        Assert.Equal(packet, Assert.Single(net.Deliver(net.B, datagram)).Packet);
        Assert.False(net.PeerOfA.HasStagedPackets);
    }

    [Fact]
    public void Decapsulate_KeypairPastRejectAfterTime_DropsKeypairExpired()
    {
        var net = TimerLoop.Established(out var start);
        TimerLoop.Run(net, Protocol.RejectAfterTime - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        net.Clock.Advance(TimeSpan.FromSeconds(1) - Tick);
        var accepted = BackToBack.Send(net.B, TimerLoop.BToA())!;
        var late = BackToBack.Send(net.B, TimerLoop.BToA())!;
        Assert.Single(net.Deliver(net.A, accepted));

        net.Clock.Advance(Tick + Tick);
        Assert.True(net.A.Now - start > Protocol.RejectAfterTime);
        var result = net.A.Decapsulate(late, BackToBack.SourceB, new byte[2048]);

        Assert.Equal(TunnelAction.Drop, result.Action);
        Assert.Equal(DropReason.KeypairExpired, result.Reason);
    }

    [Fact]
    public void SentData_NoReplyForKeepalivePlusRekeyTimeout_StartsHandshake()
    {
        var net = TimerLoop.Established(out _);
        TimerLoop.Run(net, TimeSpan.FromSeconds(30), Step);
        var sentAt = net.A.Now;
        Assert.NotNull(BackToBack.Send(net.A, TimerLoop.AToB())); // lost: B never hears it

        var step = TimeSpan.FromMilliseconds(10);
        var trace = TimerLoop.Run(net, Protocol.KeepaliveTimeout + Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax, step, [net.PeerOfA], deliver: false);

        var initiation = Assert.Single(trace.Outputs);
        Assert.True(initiation.IsInitiation);
        Assert.InRange(initiation.At - sentAt, Protocol.KeepaliveTimeout + Protocol.RekeyTimeout, Protocol.KeepaliveTimeout + Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax);
    }

    [Fact]
    public void SentData_AnsweredByPassiveKeepalive_NoHandshake()
    {
        var net = TimerLoop.Established(out _);
        TimerLoop.Run(net, TimeSpan.FromSeconds(30), Step);
        Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, TimerLoop.AToB())!));

        var trace = TimerLoop.Run(net, TimeSpan.FromSeconds(60), Step);

        Assert.DoesNotContain(trace.Outputs, o => o.IsInitiation);
        Assert.Single(trace.From(net.PeerOfB), o => o.IsKeepalive);
    }

    [Fact]
    public void Session_ThreeRejectAfterTimesWithoutHandshake_KeyMaterialZeroed()
    {
        var net = TimerLoop.Established(out var start);
        var trace = TimerLoop.Run(net, (Protocol.RejectAfterTime * 3) - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        net.Clock.Advance(TimeSpan.FromSeconds(1) - Tick);
        Assert.Empty(TimerLoop.Drain(net.PeerOfA));
        Assert.Empty(TimerLoop.Drain(net.PeerOfB));
        Assert.NotNull(net.PeerOfA.CurrentKeypair);
        Assert.NotNull(net.PeerOfB.CurrentKeypair);

        net.Clock.Advance(Tick);
        Assert.Equal(start + (Protocol.RejectAfterTime * 3), net.A.Now);
        TimerLoop.Drain(net.PeerOfA);
        TimerLoop.Drain(net.PeerOfB);

        Assert.DoesNotContain(trace.Outputs, o => o.IsInitiation);
        foreach (var peer in new[] { net.PeerOfA, net.PeerOfB })
        {
            Assert.Null(peer.CurrentKeypair);
            Assert.Null(peer.PreviousKeypair);
            Assert.Null(peer.NextKeypair);
        }

        Assert.Equal(0, net.A.IndexCount);
        Assert.Equal(0, net.B.IndexCount);

        // A new packet starts over with a fresh handshake.
        var packet = TimerLoop.AToB(fill: 9);
        Assert.Equal(packet, Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, packet)!)).Packet);
    }
}
