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
