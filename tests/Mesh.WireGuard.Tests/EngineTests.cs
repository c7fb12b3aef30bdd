using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

public class EngineTests
{
    [Fact]
    public void FirstPacket_StartsHandshake_AndIsDeliveredAfterIt()
    {
        var net = new BackToBack();
        var packet = BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", 100);
        var initiation = BackToBack.Send(net.A, packet);
        Assert.NotNull(initiation);
        Assert.Equal(148, initiation!.Length);
        Assert.Equal(1, initiation[0]);

        var delivered = net.Deliver(net.B, initiation);

        var atB = Assert.Single(delivered);
        Assert.Same(net.B, atB.Engine);
        Assert.Equal(packet, atB.Packet);
        Assert.NotNull(net.PeerOfA.CurrentKeypair);
        Assert.NotNull(net.PeerOfB.CurrentKeypair);
        Assert.NotNull(net.PeerOfA.LastHandshake);
    }

    [Fact]
    public void HandshakesCompleted_CountsOnceOnEachSide_WhenTheSessionIsConfirmed()
    {
        var net = new BackToBack();
        var buffer = new byte[2048];
        var initiation = BackToBack.Send(net.A, BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", 10))!;

        // The responder answers, but its session is not confirmed until the initiator's first message on it.
        var answer = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer);
        Assert.Equal(TunnelAction.SendToPeer, answer.Action);
        var response = buffer[..answer.Length];
        Assert.Equal(0, net.B.HandshakesCompleted);

        Assert.Equal(TunnelAction.Done, net.A.Decapsulate(response, BackToBack.SourceB, buffer).Action);
        Assert.Equal(1, net.A.HandshakesCompleted);
        var staged = net.PeerOfA.SendStaged(buffer);
        Assert.Equal(TunnelAction.SendToPeer, staged.Action);
        var data = buffer[..staged.Length];
        Assert.Equal(TunnelAction.WriteToTunnel, net.B.Decapsulate(data, BackToBack.SourceA, buffer).Action);
        Assert.Equal(1, net.B.HandshakesCompleted);

        // Replays and more data on the same session count nothing.
        Assert.Equal(TunnelAction.Drop, net.B.Decapsulate(initiation, BackToBack.SourceA, buffer).Action);
        Assert.Equal(TunnelAction.Drop, net.A.Decapsulate(response, BackToBack.SourceB, buffer).Action);
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, BackToBack.Ipv4Packet("100.64.0.2", "100.64.0.1", 10))!));
        Assert.Equal(1, net.A.HandshakesCompleted);
        Assert.Equal(1, net.B.HandshakesCompleted);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Session_CarriesDataBothWays_V4AndV6(bool psk)
    {
        var net = new BackToBack(psk);
        net.Deliver(net.B, BackToBack.Send(net.A, BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", 10))!);

        foreach (var size in new[] { 0, 1, 15, 16, 17, 1000, 1380 })
        {
            var v4 = BackToBack.Ipv4Packet("100.64.0.2", "100.64.0.1", size);
            var got = net.Deliver(net.A, BackToBack.Send(net.B, v4)!);
            Assert.Equal(v4, Assert.Single(got).Packet);

            var v6 = BackToBack.Ipv6Packet("fd7a:115c:a1e0::1", "fd7a:115c:a1e0::2", size);
            got = net.Deliver(net.B, BackToBack.Send(net.A, v6)!);
            Assert.Equal(v6, Assert.Single(got).Packet);
        }
    }

    [Fact]
    public void MismatchedPresharedKey_NoSession()
    {
        var net = new BackToBack();
        net.PeerOfA.Keys.SetPresharedKey(new byte[32].Select((_, i) => (byte)i).ToArray());
        var delivered = net.Deliver(net.B, BackToBack.Send(net.A, BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", 10))!);
        Assert.Empty(delivered);
        Assert.Null(net.PeerOfA.CurrentKeypair);
    }

    [Fact]
    public void TransportPackets_AreZeroPaddedToSixteen()
    {
        var net = new BackToBack();
        net.Deliver(net.B, BackToBack.Send(net.A, BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", 1))!);
        var datagram = BackToBack.Send(net.A, BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", 1))!; // 21-byte packet
        Assert.Equal(16 + 32 + 16, datagram.Length);
    }
}
