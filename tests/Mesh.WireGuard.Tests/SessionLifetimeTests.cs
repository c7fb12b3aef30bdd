using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>
/// Long runs on the fake clock with both peers' timers going: sessions roll over every
/// Rekey-After-Time without losing traffic, whichever side talks.
/// </summary>
public sealed class SessionLifetimeTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void ContinuousTraffic_TenMinutes_EveryPacketDeliveredAcrossRekeys(bool aSends, bool bSends)
    {
        var net = TimerLoop.Established(out _);
        var trace = new TimerTrace();
        var sent = new List<(WireGuardEngine To, byte[] Packet)>();
        var delivered = new List<(WireGuardEngine Engine, byte[] Packet)>();
        var keypairsOfA = new HashSet<Keypair>();
        for (var second = 0; second < 600; second++)
        {
            var fill = (byte)second;
            if (aSends)
            {
                var packet = TimerLoop.AToB(fill: fill);
                sent.Add((net.B, packet));
                delivered.AddRange(net.Deliver(net.B, BackToBack.Send(net.A, packet)!));
            }

            if (bSends)
            {
                var packet = TimerLoop.BToA(fill: fill);
                sent.Add((net.A, packet));
                delivered.AddRange(net.Deliver(net.A, BackToBack.Send(net.B, packet)!));
            }

            TimerLoop.Run(net, TimeSpan.FromSeconds(1), Step, trace: trace);
            keypairsOfA.Add(net.PeerOfA.CurrentKeypair!);
        }

        Assert.Empty(trace.Delivered); // timers only ever send keepalives and handshakes
        Assert.Equal(sent.Count, delivered.Count);
        for (var i = 0; i < sent.Count; i++)
        {
            Assert.Same(sent[i].To, delivered[i].Engine);
            Assert.Equal(sent[i].Packet, delivered[i].Packet);
        }

        // A new session at least every Reject-After-Time, and no handshake storm.
        var initiations = trace.Outputs.Where(o => o.IsInitiation).ToList();
        Assert.InRange(initiations.Count, 600 / 180, 600 / 120);
        Assert.InRange(keypairsOfA.Count, 600 / 180, (600 / 120) + 1);
    }

    [Fact]
    public void ReceivedOnAgingSession_InitiatorOnlyListening_StartsLastMinuteHandshake()
    {
        // §6.2: an initiator that only receives never hits Rekey-After-Time on send, so it rekeys
        // when data arrives on a session older than Reject-After-Time − Keepalive-Timeout − Rekey-Timeout.
        var net = TimerLoop.Established(out var start);
        var limit = Protocol.RejectAfterTime - Protocol.KeepaliveTimeout - Protocol.RekeyTimeout;
        TimerLoop.Run(net, limit - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));
        Assert.False(net.PeerOfA.HandshakeWanted);

        net.Clock.Advance(TimeSpan.FromSeconds(1) + Step);
        Assert.Equal(start + limit + Step, net.A.Now);
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));
        Assert.True(net.PeerOfA.HandshakeWanted);
        var initiation = Assert.Single(TimerLoop.Drain(net.PeerOfA));
        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(initiation));
    }
}
