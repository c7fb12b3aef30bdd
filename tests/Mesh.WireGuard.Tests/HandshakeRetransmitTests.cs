using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>
/// Handshake retransmission of whitepaper §6.4: an unanswered initiation is sent again after
/// Rekey-Timeout plus up to a third of a second of jitter, with a fresh sender index, until
/// Rekey-Attempt-Time has passed; then the peer gives up and drops what it queued.
/// </summary>
public sealed class HandshakeRetransmitTests
{
    private static readonly TimeSpan Millisecond = TimeSpan.FromMilliseconds(1);

    [Fact]
    public void UnansweredInitiation_Retransmitted_AfterRekeyTimeoutPlusJitterWithNewIndex()
    {
        var net = new BackToBack();
        var first = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var sentAt = net.A.Now;

        var trace = TimerLoop.Run(net, Protocol.RekeyAttemptTime, Millisecond, [net.PeerOfA], deliver: false);

        var initiations = trace.Outputs;
        Assert.True(initiations.Count >= 10);
        Assert.All(initiations, o => Assert.True(o.IsInitiation));
        var times = new List<TimeSpan> { sentAt };
        times.AddRange(initiations.Select(o => o.At));
        for (var i = 1; i < times.Count; i++)
        {
            // Strictly after Rekey-Timeout, and no later than the largest jitter plus one step.
            Assert.InRange(times[i] - times[i - 1], Protocol.RekeyTimeout + Millisecond, Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax);
        }

        // Exactly one initiation per retransmission: no two in the same step.
        Assert.Equal(initiations.Count, initiations.Select(o => o.At).Distinct().Count());

        // Jitter really varies.
        Assert.True(times.Zip(times.Skip(1), (a, b) => b - a).Distinct().Count() > 1);

        // A fresh sender index every time, and the abandoned ones are released.
        var senders = initiations.Select(o => o.InitiationSender).Prepend(Messages.ReadIndex(first, Messages.InitSender)).ToList();
        Assert.Equal(senders.Count, senders.Distinct().Count());
        Assert.Equal(1, net.A.IndexCount);
    }

    [Fact]
    public void UnansweredInitiation_AfterRekeyAttemptTime_GivesUpAndDropsStagedPackets()
    {
        var net = new BackToBack();
        BackToBack.Send(net.A, TimerLoop.AToB());
        var sentAt = net.A.Now;
        Assert.True(net.PeerOfA.HasStagedPackets);

        var trace = TimerLoop.Run(net, Protocol.RekeyAttemptTime * 2, TimeSpan.FromMilliseconds(10), [net.PeerOfA], deliver: false);

        Assert.All(trace.Outputs, o => Assert.True(o.IsInitiation));
        var last = trace.Outputs[^1].At - sentAt;

        // It keeps trying for Rekey-Attempt-Time: the initial initiation and one retransmission per Rekey-Timeout of it.
        Assert.Equal(Protocol.MaxTimerHandshakes, trace.Outputs.Count);
        Assert.True(last >= Protocol.RekeyAttemptTime, $"last initiation at {last}");

        // Then it gives up: queued packets are dropped, the handshake and its index are gone.
        Assert.False(net.PeerOfA.HasStagedPackets);
        Assert.Equal(HandshakeState.None, net.PeerOfA.HandshakeState);
        Assert.Equal(0, net.A.IndexCount);
    }

    [Fact]
    public void AfterGivingUp_NewPacket_StartsFreshAttemptThatCompletes()
    {
        var net = new BackToBack();
        BackToBack.Send(net.A, TimerLoop.AToB(fill: 1));
        TimerLoop.Run(net, Protocol.RekeyAttemptTime * 2, TimeSpan.FromMilliseconds(10), [net.PeerOfA], deliver: false);
        Assert.False(net.PeerOfA.HasStagedPackets);

        var packet = TimerLoop.AToB(fill: 2);
        var initiation = BackToBack.Send(net.A, packet);
        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(initiation));

        // The fresh attempt retransmits as well (its counter was reset), and the retransmission completes.
        var trace = TimerLoop.Run(net, Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax, TimeSpan.FromMilliseconds(10), [net.PeerOfA], deliver: false);
        var retransmission = Assert.Single(trace.Outputs);
        Assert.True(retransmission.IsInitiation);

        var delivered = net.Deliver(net.B, retransmission.Datagram);
        Assert.Equal(packet, Assert.Single(delivered).Packet);
    }

    [Fact]
    public void LostResponse_Retransmission_CompletesHandshakeAndDeliversQueuedPacket()
    {
        var net = new BackToBack();
        var packet = TimerLoop.AToB();
        var initiation = BackToBack.Send(net.A, packet)!;
        var buffer = new byte[2048];
        Assert.Equal(TunnelAction.SendToPeer, net.B.Decapsulate(initiation, BackToBack.SourceA, buffer).Action); // response lost
        var abandoned = net.PeerOfB.NextKeypair;
        Assert.NotNull(abandoned);

        var trace = TimerLoop.Run(net, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(10));

        Assert.Equal(packet, Assert.Single(trace.Delivered).Packet);
        Assert.Single(trace.Outputs, o => o.IsInitiation);
        Assert.True(abandoned!.IsDisposed);
        Assert.NotSame(abandoned, net.PeerOfB.CurrentKeypair);
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));
    }

    [Fact]
    public void SimultaneousInitiation_BothSides_ResolvesIntoSessionBothWays()
    {
        var net = new BackToBack();
        var fromA = TimerLoop.AToB(fill: 1);
        var fromB = TimerLoop.BToA(fill: 2);
        var initiationA = BackToBack.Send(net.A, fromA)!;
        var initiationB = BackToBack.Send(net.B, fromB)!;
        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(initiationA));
        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(initiationB));

        // The initiations cross on the wire; each side answers the other's, and each response
        // arrives after its addressee has moved on from the initiation it answers.
        var buffer = new byte[2048];
        var atB = net.B.Decapsulate(initiationA, BackToBack.SourceA, buffer);
        var responseB = buffer[..atB.Length];
        var atA = net.A.Decapsulate(initiationB, BackToBack.SourceB, buffer);
        var responseA = buffer[..atA.Length];
        Assert.Equal(TunnelAction.SendToPeer, atB.Action);
        Assert.Equal(TunnelAction.SendToPeer, atA.Action);
        var delivered = net.Deliver(net.A, responseB);
        delivered.AddRange(net.Deliver(net.B, responseA));

        var trace = TimerLoop.Run(net, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(10));
        delivered.AddRange(trace.Delivered);

        // Both queued packets arrive, after a single new initiation settles it (from the end with the
        // larger key, at once: CrossedInitiations_TheLargerKeyInitiatesAgainAtOnce_NotAfterRekeyTimeout).
        Assert.Contains(delivered, d => d.Engine == net.B && d.Packet.SequenceEqual(fromA));
        Assert.Contains(delivered, d => d.Engine == net.A && d.Packet.SequenceEqual(fromB));
        Assert.Single(trace.Outputs, o => o.IsInitiation);
        Assert.False(net.PeerOfA.HasStagedPackets);
        Assert.False(net.PeerOfB.HasStagedPackets);

        var more = TimerLoop.BToA(fill: 3);
        Assert.Equal(more, Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, more)!)).Packet);
        more = TimerLoop.AToB(fill: 4);
        Assert.Equal(more, Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, more)!)).Packet);
    }

    [Fact]
    public void CrossedInitiations_TheLargerKeyInitiatesAgainAtOnce_NotAfterRekeyTimeout()
    {
        var net = new BackToBack();
        var fromA = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var fromB = BackToBack.Send(net.B, TimerLoop.BToA())!;

        // The two initiations cross: each end consumes the other's and answers it...
        var responseOfB = new byte[2048];
        var responseOfA = new byte[2048];
        var rb = net.B.Decapsulate(fromA, BackToBack.SourceA, responseOfB);
        var ra = net.A.Decapsulate(fromB, BackToBack.SourceB, responseOfA);
        Assert.Equal(TunnelAction.SendToPeer, rb.Action);
        Assert.Equal(TunnelAction.SendToPeer, ra.Action);

        // ...and each answer finds no handshake waiting for it: no session on either end.
        var scratch = new byte[2048];
        Assert.Equal(TunnelAction.Drop, net.A.Decapsulate(responseOfB.AsSpan(0, rb.Length), BackToBack.SourceB, scratch).Action);
        Assert.Equal(TunnelAction.Drop, net.B.Decapsulate(responseOfA.AsSpan(0, ra.Length), BackToBack.SourceA, scratch).Action);
        Assert.Null(net.PeerOfA.CurrentKeypair);
        Assert.Null(net.PeerOfB.CurrentKeypair);

        // Within a couple of timer ticks (not Rekey-Timeout later), the end with the larger public key
        // initiates again, once; the other answers; both queued packets arrive.
        var aIsLarger = net.A.Identity!.PublicKey.AsSpan().SequenceCompareTo(net.B.Identity!.PublicKey) > 0;
        var larger = aIsLarger ? net.PeerOfA : net.PeerOfB;
        var trace = TimerLoop.Run(net, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(10));
        var initiation = Assert.Single(trace.Outputs, o => o.IsInitiation);
        Assert.InRange(initiation.At - net.A.Now + TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100));
        Assert.Same(larger, initiation.From);
        Assert.NotNull(net.PeerOfA.CurrentKeypair);
        Assert.NotNull(net.PeerOfB.CurrentKeypair);
        Assert.Contains(trace.Delivered, d => d.Engine == net.B && d.Packet.AsSpan().SequenceEqual(TimerLoop.AToB()));
        Assert.Contains(trace.Delivered, d => d.Engine == net.A && d.Packet.AsSpan().SequenceEqual(TimerLoop.BToA()));

        // And the other end no longer retransmits its abandoned initiation.
        var later = TimerLoop.Run(net, Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax + TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(100));
        Assert.DoesNotContain(later.Outputs, o => o.IsInitiation);
    }
}
