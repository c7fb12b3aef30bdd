using Mesh.WireGuard.Crypto;
using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>
/// What reaches the engine from the network is hostile: replays, flipped bits, truncations and
/// garbage are dropped (never written to the TUN, never an exception) and leave the session working.
/// </summary>
public sealed class TamperingTests
{
    [Fact]
    public void Decapsulate_ReplayedTransport_DropsReplay()
    {
        var net = TimerLoop.Established(out _);
        var datagram = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var buffer = new byte[2048];

        Assert.Equal(TunnelAction.WriteToTunnel, net.B.Decapsulate(datagram, BackToBack.SourceA, buffer).Action);
        var replay = net.B.Decapsulate(datagram, BackToBack.SourceA, buffer);

        Assert.Equal(TunnelAction.Drop, replay.Action);
        Assert.Equal(DropReason.Replay, replay.Reason);
    }

    [Fact]
    public void Decapsulate_AnySingleBitFlipped_DropsWithoutTunnelWrite()
    {
        var net = TimerLoop.Established(out _);
        var packet = TimerLoop.AToB(payload: 30);
        var datagram = BackToBack.Send(net.A, packet)!;
        var buffer = new byte[2048];

        for (var bit = 0; bit < datagram.Length * 8; bit++)
        {
            var tampered = (byte[])datagram.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            var result = net.B.Decapsulate(tampered, BackToBack.SourceA, buffer);
            Assert.True(result.Action == TunnelAction.Drop, $"bit {bit}: {result}");
        }

        // None of the forgeries moved the replay window: the genuine datagram still arrives.
        Assert.Equal(packet, Assert.Single(net.Deliver(net.B, datagram)).Packet);
    }

    [Fact]
    public void Decapsulate_HandshakeMessagesWithAnyBitFlippedBeforeMac2_DroppedAndGenuineStillCompletes()
    {
        var net = new BackToBack();
        var packet = TimerLoop.AToB();
        var initiation = BackToBack.Send(net.A, packet)!;
        var buffer = new byte[2048];

        // mac2 is only looked at under load, so every bit up to it is covered by mac1 or the AEADs.
        AssertFlipsDropped(net.B, initiation, Messages.InitMac2, BackToBack.SourceA);
        Assert.Equal(HandshakeState.None, net.PeerOfB.HandshakeState);

        var response = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer);
        var responseBytes = buffer[..response.Length];
        AssertFlipsDropped(net.A, responseBytes, Messages.RespMac2, BackToBack.SourceB);
        Assert.Equal(HandshakeState.InitiationCreated, net.PeerOfA.HandshakeState);
        Assert.Null(net.PeerOfA.CurrentKeypair);

        Assert.Equal(packet, Assert.Single(net.Deliver(net.A, responseBytes)).Packet);
    }

    [Fact]
    public void Decapsulate_TruncatedMessages_Drop()
    {
        var net = new BackToBack();
        var buffer = new byte[2048];
        var initiation = BackToBack.Send(net.A, TimerLoop.AToB())!;
        var cookie = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer, underLoad: true);
        Assert.Equal(TunnelAction.SendToSource, cookie.Action);
        var cookieReply = buffer[..cookie.Length];
        var response = net.B.Decapsulate(initiation, BackToBack.SourceA, buffer);
        Assert.Equal(TunnelAction.SendToPeer, response.Action);
        var responseBytes = buffer[..response.Length];

        AssertPrefixesDropped(net.B, initiation, BackToBack.SourceA);
        AssertPrefixesDropped(net.A, responseBytes, BackToBack.SourceB);
        AssertPrefixesDropped(net.A, cookieReply, BackToBack.SourceB);

        // The intact response still completes the handshake; then truncated transport messages.
        net.Deliver(net.A, responseBytes);
        Assert.NotNull(net.PeerOfA.CurrentKeypair);
        var transport = BackToBack.Send(net.A, TimerLoop.AToB(payload: 40))!;
        AssertPrefixesDropped(net.B, transport, BackToBack.SourceA);
        Assert.Single(net.Deliver(net.B, transport));
    }

    [Fact]
    public void Decapsulate_GarbageOfEveryLength_DropsWithoutException()
    {
        var net = TimerLoop.Established(out _);
        var random = new SeededRandom(77);
        var buffer = new byte[2048];
        var liveIndex = net.PeerOfB.CurrentKeypair!.LocalIndex;
        var outcomes = new HashSet<DropReason>();

        for (var length = 0; length <= 200; length++)
        {
            var garbage = new byte[length];
            for (var variant = 0; variant < 6; variant++)
            {
                random.Fill(garbage);
                if (variant > 0 && length >= 4)
                {
                    // Variants 1..4 carry a well-formed type word so the garbage reaches each parser.
                    Messages.WriteHeader(garbage, (uint)Math.Min(variant, 4));
                }

                if (variant == 5 && length >= 8)
                {
                    // A transport header naming the live session: only the AEAD stands in the way.
                    Messages.WriteHeader(garbage, Messages.TypeTransport);
                    Messages.WriteIndex(garbage, Messages.TransportReceiver, liveIndex);
                }

                if (variant == 1 && length == Messages.InitiationSize)
                {
                    // A valid mac1 (anyone knowing B's public key can compute one) gets it past the cheap check.
                    Blake2s.Mac(net.PeerOfA.Keys.Mac1Key, garbage.AsSpan(0, Messages.InitMac1), garbage.AsSpan(Messages.InitMac1, Blake2s.MacSize));
                }

                var result = net.B.Decapsulate(garbage, BackToBack.SourceA, buffer);
                Assert.True(result.Action == TunnelAction.Drop, $"length {length} variant {variant}: {result}");
                outcomes.Add(result.Reason);
            }
        }

        // The garbage did reach the deeper checks, not just the type switch.
        Assert.Contains(DropReason.InvalidMac1, outcomes);
        Assert.Contains(DropReason.HandshakeRejected, outcomes);
        Assert.Contains(DropReason.AuthenticationFailed, outcomes);
        Assert.Contains(DropReason.UnknownIndex, outcomes);

        Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, TimerLoop.AToB())!));
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));
    }

    [Fact]
    public void Decapsulate_ReplayedInitiation_RejectedAndSessionUndisturbed()
    {
        var net = new BackToBack();
        var initiation = BackToBack.Send(net.A, TimerLoop.AToB())!;
        Assert.Single(net.Deliver(net.B, initiation));
        var currentB = net.PeerOfB.CurrentKeypair;
        var currentA = net.PeerOfA.CurrentKeypair;
        net.Clock.Advance(TimeSpan.FromSeconds(1)); // well past the initiation flood limit

        var result = net.B.Decapsulate(initiation, BackToBack.SourceA, new byte[2048]);

        Assert.Equal(TunnelAction.Drop, result.Action);
        Assert.Equal(DropReason.HandshakeRejected, result.Reason);
        Assert.Same(currentB, net.PeerOfB.CurrentKeypair);
        Assert.Null(net.PeerOfB.NextKeypair);
        Assert.Same(currentA, net.PeerOfA.CurrentKeypair);
        Assert.Single(net.Deliver(net.A, BackToBack.Send(net.B, TimerLoop.BToA())!));
        Assert.Single(net.Deliver(net.B, BackToBack.Send(net.A, TimerLoop.AToB())!));
        Assert.Same(currentB, net.PeerOfB.CurrentKeypair);
    }

    private static void AssertFlipsDropped(WireGuardEngine engine, byte[] message, int bytes, byte[] source)
    {
        var buffer = new byte[2048];
        for (var bit = 0; bit < bytes * 8; bit++)
        {
            var tampered = (byte[])message.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            var result = engine.Decapsulate(tampered, source, buffer);
            Assert.True(result.Action == TunnelAction.Drop, $"type {Messages.ReadType(message)} bit {bit}: {result}");
        }
    }

    private static void AssertPrefixesDropped(WireGuardEngine engine, byte[] message, byte[] source)
    {
        var buffer = new byte[2048];
        for (var length = 0; length < message.Length; length++)
        {
            var result = engine.Decapsulate(message.AsSpan(0, length), source, buffer);
            Assert.True(result.Action == TunnelAction.Drop, $"{Messages.ReadType(message)} cut to {length}: {result}");
        }
    }
}
