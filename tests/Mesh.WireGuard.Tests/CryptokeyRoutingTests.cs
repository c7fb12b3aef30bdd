using System.Net;
using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>
/// Cryptokey routing (whitepaper §2) and who may handshake at all: a peer may only send from its
/// allowed IPs, packets go only to a peer that owns the destination, and only configured keys with
/// a correct mac1 get a handshake.
/// </summary>
public sealed class CryptokeyRoutingTests
{
    [Theory]
    [InlineData("100.64.0.99")] // nobody's address
    [InlineData("100.64.0.2")] // B's own address, spoofed by A
    public void Decapsulate_InnerSourceNotInSendersAllowedIps_DropsSourceNotAllowed(string source)
    {
        var net = TimerLoop.Established(out _);
        var spoofed = BackToBack.Ipv4Packet(source, "100.64.0.2", 20);
        var datagram = BackToBack.Send(net.A, spoofed)!; // A routes by destination only
        Assert.Equal(Messages.TypeTransport, Messages.ReadType(datagram));

        var result = net.B.Decapsulate(datagram, BackToBack.SourceA, new byte[2048]);

        Assert.Equal(TunnelAction.Drop, result.Action);
        Assert.Equal(DropReason.SourceNotAllowed, result.Reason);
        Assert.Same(net.PeerOfB, result.Peer);
    }

    [Fact]
    public void Decapsulate_InnerIpv6SourceNotAllowed_DropsSourceNotAllowed()
    {
        var net = TimerLoop.Established(out _);
        var datagram = BackToBack.Send(net.A, BackToBack.Ipv6Packet("fd7a:115c:a1e0::99", "fd7a:115c:a1e0::2", 8))!;

        var result = net.B.Decapsulate(datagram, BackToBack.SourceA, new byte[2048]);

        Assert.Equal(DropReason.SourceNotAllowed, result.Reason);
    }

    [Theory]
    [InlineData("100.64.0.77")]
    [InlineData("10.0.0.1")]
    [InlineData("fd7a:115c:a1e0::77")]
    public void Encapsulate_DestinationNoPeerOwns_DropsNoPeerForDestination(string destination)
    {
        var net = TimerLoop.Established(out _);
        var packet = destination.Contains(':')
            ? BackToBack.Ipv6Packet("fd7a:115c:a1e0::1", destination, 8)
            : BackToBack.Ipv4Packet("100.64.0.1", destination, 8);
        var buffer = new byte[2048];

        var result = net.A.Encapsulate(packet, buffer);

        Assert.Equal(TunnelAction.Drop, result.Action);
        Assert.Equal(DropReason.NoPeerForDestination, result.Reason);
        Assert.False(net.PeerOfA.HasStagedPackets);
    }

    [Fact]
    public void Decapsulate_InitiationFromUnknownKey_DropsUnknownPeer()
    {
        var net = new BackToBack();
        var stranger = new WireGuardEngine(net.Clock, new SeededRandom(3));
        var key = new byte[32];
        new SeededRandom(400).Fill(key);
        stranger.SetPrivateKey(key);
        var peer = stranger.AddPeer(new NoisePublicKey(net.B.Identity!.PublicKey));
        stranger.AllowedIps.Insert(IPAddress.Parse("100.64.0.2"), 32, peer);
        var initiation = BackToBack.Send(stranger, TimerLoop.AToB())!;
        Assert.Equal(Messages.TypeInitiation, Messages.ReadType(initiation));

        var result = net.B.Decapsulate(initiation, [192, 0, 2, 1, 0, 1], new byte[2048]);

        Assert.Equal(TunnelAction.Drop, result.Action);
        Assert.Equal(DropReason.UnknownPeer, result.Reason);
        Assert.Null(result.Peer);
        Assert.Equal(0, net.B.IndexCount);
    }

    [Fact]
    public void Decapsulate_InitiationWithWrongMac1_DropsInvalidMac1()
    {
        var net = new BackToBack();
        var initiation = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var buffer = new byte[2048];

        foreach (var offset in new[] { 0, 40, Messages.InitMac1, Messages.InitMac1 + 15 })
        {
            var tampered = (byte[])initiation.Clone();
            tampered[offset == 0 ? 4 : offset] ^= 0x80;
            var result = net.B.Decapsulate(tampered, BackToBack.SourceA, buffer);
            Assert.Equal(DropReason.InvalidMac1, result.Reason);
        }

        Assert.Equal(HandshakeState.None, net.PeerOfB.HandshakeState);
        Assert.Equal(TunnelAction.SendToPeer, net.B.Decapsulate(initiation, BackToBack.SourceA, buffer).Action);
    }

    [Fact]
    public void Decapsulate_InitiationMeantForAnotherKey_DropsInvalidMac1()
    {
        var net = new BackToBack();
        var other = new byte[32];
        new SeededRandom(500).Fill(other);
        var wrongPeer = net.A.AddPeer(new NoisePublicKey(BackToBack.PublicKeyOf(other)));
        net.A.AllowedIps.Insert(IPAddress.Parse("100.64.0.3"), 32, wrongPeer);
        var initiation = BackToBack.Send(net.A, BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.3", 8))!;

        var result = net.B.Decapsulate(initiation, BackToBack.SourceA, new byte[2048]);

        Assert.Equal(DropReason.InvalidMac1, result.Reason);
    }
}
