using System.Net;
using Mesh.Protocol.Paths;
using Mesh.Protocol.Stun;
using Mesh.WireGuard;

namespace Mesh.Protocol.Tests.Paths;

public class PathProbeTests
{
    private static readonly (byte[] Private, NoisePublicKey Public) Alice = TestKeys.NewPair();
    private static readonly (byte[] Private, NoisePublicKey Public) Bob = TestKeys.NewPair();

    [Fact]
    public void BothEnds_DeriveTheSameKey_AndAPongCarriesTheObservedEndpoint()
    {
        var aliceKey = PathProbeKey.Derive(Alice.Private, Bob.Public)!;
        var bobKey = PathProbeKey.Derive(Bob.Private, Alice.Public)!;
        var observed = IPEndPoint.Parse("198.18.2.7:41641");
        var datagram = new byte[PathProbeCodec.Size];
        Assert.Equal(PathProbeCodec.Size, PathProbeCodec.Write(datagram, Alice.Public, aliceKey, new PathProbe(PathProbeKind.Pong, 0x0102030405060708, observed), SystemRandomSource.Instance));

        Assert.True(PathProbeCodec.IsProbe(datagram));
        Assert.True(PathProbeCodec.TryReadSender(datagram, out var sender));
        Assert.Equal(Alice.Public, sender);
        Assert.True(PathProbeCodec.TryOpen(datagram, bobKey, out var probe));
        Assert.Equal(PathProbeKind.Pong, probe.Kind);
        Assert.Equal(0x0102030405060708UL, probe.TransactionId);
        Assert.Equal(observed, probe.Observed);
    }

    [Fact]
    public void IPv6Observed_RoundTrips_AndAPingHasNone()
    {
        var key = PathProbeKey.Derive(Alice.Private, Bob.Public)!;
        var datagram = new byte[PathProbeCodec.Size];
        PathProbeCodec.Write(datagram, Alice.Public, key, new PathProbe(PathProbeKind.Pong, 7, IPEndPoint.Parse("[fd00::1]:5")), SystemRandomSource.Instance);
        Assert.True(PathProbeCodec.TryOpen(datagram, key, out var pong));
        Assert.Equal(IPEndPoint.Parse("[fd00::1]:5"), pong.Observed);

        PathProbeCodec.Write(datagram, Alice.Public, key, new PathProbe(PathProbeKind.Ping, 8, null), SystemRandomSource.Instance);
        Assert.True(PathProbeCodec.TryOpen(datagram, key, out var ping));
        Assert.Equal(PathProbeKind.Ping, ping.Kind);
        Assert.Null(ping.Observed);
    }

    [Fact]
    public void EveryAlteredByte_IsRefused()
    {
        var key = PathProbeKey.Derive(Alice.Private, Bob.Public)!;
        var datagram = new byte[PathProbeCodec.Size];
        PathProbeCodec.Write(datagram, Alice.Public, key, new PathProbe(PathProbeKind.Ping, 42, null), SystemRandomSource.Instance);
        for (var i = 0; i < datagram.Length; i++)
        {
            var altered = (byte[])datagram.Clone();
            altered[i] ^= 0x01;
            Assert.False(PathProbeCodec.TryOpen(altered, key, out _), $"byte {i} altered and still accepted");
        }
    }

    [Fact]
    public void AThirdNodesKey_CannotOpenOrForge()
    {
        var carol = TestKeys.NewPair();
        var aliceBob = PathProbeKey.Derive(Alice.Private, Bob.Public)!;
        var carolBob = PathProbeKey.Derive(carol.Private, Bob.Public)!;
        var datagram = new byte[PathProbeCodec.Size];

        // Carol claims to be Alice: Bob opens with the Alice–Bob key and refuses it.
        PathProbeCodec.Write(datagram, Alice.Public, carolBob, new PathProbe(PathProbeKind.Pong, 1, IPEndPoint.Parse("198.18.0.1:1")), SystemRandomSource.Instance);
        Assert.False(PathProbeCodec.TryOpen(datagram, aliceBob, out _));
    }

    [Fact]
    public void WireGuardAndStunDatagrams_AreNotProbes_AndProbesAreNotStun()
    {
        var handshake = new byte[148];
        handshake[0] = 1;
        Assert.False(PathProbeCodec.IsProbe(handshake));
        var stun = new byte[StunMessage.BindingRequestSize];
        StunMessage.WriteBindingRequest(stun, StunTransactionId.NewId());
        Assert.False(PathProbeCodec.IsProbe(stun));

        var key = PathProbeKey.Derive(Alice.Private, Bob.Public)!;
        var datagram = new byte[PathProbeCodec.Size];
        PathProbeCodec.Write(datagram, Alice.Public, key, new PathProbe(PathProbeKind.Ping, 1, null), SystemRandomSource.Instance);
        Assert.False(StunMessage.IsStunPacket(datagram));
        Assert.NotInRange(datagram[0], (byte)1, (byte)4);
        Assert.False(PathProbeCodec.IsProbe(datagram.AsSpan(0, datagram.Length - 1)));
    }

    [Fact]
    public void LowOrderPeerKey_DerivesNoKey() =>
        Assert.Null(PathProbeKey.Derive(Alice.Private, new NoisePublicKey(new byte[32])));
}
