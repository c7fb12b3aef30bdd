using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>
/// The cookie exchange of whitepaper §5.4.7: a responder under load answers an initiation without a
/// valid mac2 with a cookie reply; the initiator's next initiation carries a mac2 bound to its
/// source address, which the responder then accepts.
/// </summary>
public sealed class CookieTests
{
    private static readonly byte[] OtherSource = [203, 0, 113, 9, 0xCA, 0x6C];

    [Fact]
    public void InitiationUnderLoad_WithoutMac2_AnsweredWithCookieReply()
    {
        var net = new BackToBack();
        var initiation = BackToBack.Send(net.A, TimerLoop.AToB())!;
        Assert.True(initiation.AsSpan(Messages.InitMac2, 16).IndexOfAnyExcept((byte)0) < 0, "no cookie yet, so mac2 is zero");
        var buffer = new byte[2048];

        var result = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer, underLoad: true);

        Assert.Equal(TunnelAction.SendToSource, result.Action);
        Assert.Equal(Messages.CookieReplySize, result.Length);
        Assert.Equal(Messages.TypeCookieReply, Messages.ReadType(buffer));
        Assert.Equal(Messages.ReadIndex(initiation, Messages.InitSender), Messages.ReadIndex(buffer, Messages.CookieReceiver));

        // Nothing was spent on the handshake itself.
        Assert.Equal(HandshakeState.None, net.PeerOfB.HandshakeState);
        Assert.Null(net.PeerOfB.NextKeypair);
        Assert.Equal(0, net.B.IndexCount);
    }

    [Fact]
    public void CookieReply_Delivered_RetransmissionCarriesMac2AcceptedUnderLoad()
    {
        var net = new BackToBack();
        var packet = TimerLoop.AToB();
        var initiation = BackToBack.Send(net.A, packet)!;
        var buffer = new byte[2048];
        var cookie = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer, underLoad: true);
        var reply = buffer[..cookie.Length];

        var consumed = net.A.Decapsulate(reply, BackToBack.SourceB, buffer);
        Assert.Equal(TunnelAction.Done, consumed.Action);

        var trace = TimerLoop.Run(net, Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax, TimeSpan.FromMilliseconds(10), [net.PeerOfA], deliver: false);
        var retransmission = Assert.Single(trace.Outputs).Datagram;
        Assert.True(retransmission.AsSpan(Messages.InitMac2, 16).IndexOfAnyExcept((byte)0) >= 0, "mac2 is set");

        var response = net.B.Decapsulate(retransmission, BackToBack.SourceA, buffer, underLoad: true);
        Assert.Equal(TunnelAction.SendToPeer, response.Action);
        Assert.Equal(Messages.ResponseSize, response.Length);

        var delivered = net.Deliver(net.A, buffer[..response.Length]);
        Assert.Equal(packet, Assert.Single(delivered).Packet);
        Assert.NotNull(net.PeerOfA.CurrentKeypair);
    }

    [Fact]
    public void Mac2_FromDifferentSourceAddress_DoesNotValidate()
    {
        var net = new BackToBack();
        var initiation = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var buffer = new byte[2048];
        var cookie = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer, underLoad: true);
        net.A.Decapsulate(buffer[..cookie.Length], BackToBack.SourceB, buffer);
        var trace = TimerLoop.Run(net, Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax, TimeSpan.FromMilliseconds(10), [net.PeerOfA], deliver: false);
        var withMac2 = Assert.Single(trace.Outputs).Datagram;

        var elsewhere = net.B.Decapsulate(withMac2, OtherSource, buffer, underLoad: true);

        // Another address gets a fresh cookie of its own, not a handshake.
        Assert.Equal(TunnelAction.SendToSource, elsewhere.Action);
        Assert.Equal(Messages.TypeCookieReply, Messages.ReadType(buffer));
        Assert.Equal(HandshakeState.None, net.PeerOfB.HandshakeState);

        // From the address the cookie was made for, the same bytes are accepted.
        Assert.Equal(TunnelAction.SendToPeer, net.B.Decapsulate(withMac2, BackToBack.SourceA, buffer, underLoad: true).Action);
    }

    [Fact]
    public void CookieReply_ForgedOrUnsolicited_Dropped()
    {
        var net = new BackToBack();
        var initiation = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var buffer = new byte[2048];
        var cookie = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer, underLoad: true);
        var reply = buffer[..cookie.Length];
        reply[^1] ^= 1;

        var result = net.A.Decapsulate(reply, BackToBack.SourceB, buffer);

        Assert.Equal(TunnelAction.Drop, result.Action);
        var trace = TimerLoop.Run(net, Protocol.RekeyTimeout + Protocol.RekeyTimeoutJitterMax, TimeSpan.FromMilliseconds(10), [net.PeerOfA], deliver: false);
        Assert.True(Assert.Single(trace.Outputs).Datagram.AsSpan(Messages.InitMac2, 16).IndexOfAnyExcept((byte)0) < 0, "a forged cookie is not used");
    }
}
