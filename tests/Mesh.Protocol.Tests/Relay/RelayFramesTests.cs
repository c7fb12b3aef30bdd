using System.Buffers.Binary;
using CsCheck;
using Mesh.Protocol.Relay;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Tests.Relay;

public class RelayFramesTests
{
    private static NodeKey Key(byte fill)
    {
        var bytes = new byte[32];
        Array.Fill(bytes, fill);
        return new NodeKey(new NoisePublicKey(bytes));
    }

    private static (RelayFrameType Type, byte[] Payload) Read(ReadOnlySpan<byte> frame)
    {
        Assert.True(RelayFrames.TryReadFrame(frame, out var type, out var payload));
        return (type, payload.ToArray());
    }

    [Fact]
    public void ServerKey_RoundTrips()
    {
        var challenge = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var buffer = new byte[RelayFrames.MaxFrameSize];
        var length = RelayFrames.WriteServerKey(buffer, Key(7).Value, challenge);
        Assert.Equal(RelayFrames.HeaderSize + 65, length);

        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.ServerKey, type);
        var parsed = new byte[32];
        Assert.True(RelayFrames.TryParseServerKey(payload, out var relayKey, parsed));
        Assert.Equal(Key(7).Value, relayKey);
        Assert.Equal(challenge, parsed);
    }

    [Fact]
    public void ServerKey_OtherVersion_IsRejected()
    {
        var buffer = new byte[RelayFrames.MaxFrameSize];
        var length = RelayFrames.WriteServerKey(buffer, Key(7).Value, new byte[32]);
        buffer[RelayFrames.HeaderSize] = 2;
        var (_, payload) = Read(buffer.AsSpan(0, length));
        Assert.False(RelayFrames.TryParseServerKey(payload, out _, new byte[32]));
    }

    [Fact]
    public void Header_IsTypeThenBigEndianLength()
    {
        var buffer = new byte[64];
        var length = RelayFrames.WritePing(buffer, RelayFrameType.Ping, 0x0102030405060708);
        Assert.Equal(new byte[] { 0x07, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 }, buffer[..length]);
    }

    [Fact]
    public void ClientInfo_RoundTrips()
    {
        var proof = Enumerable.Repeat((byte)0xAB, 32).ToArray();
        var buffer = new byte[128];
        var length = RelayFrames.WriteClientInfo(buffer, Key(3), proof);
        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.ClientInfo, type);
        Assert.True(RelayFrames.TryParseClientInfo(payload, out var node, out var parsedProof));
        Assert.Equal(Key(3), node);
        Assert.Equal(proof, parsedProof.ToArray());
    }

    [Fact]
    public void ServerInfo_RoundTrips()
    {
        var buffer = new byte[16];
        var length = RelayFrames.WriteServerInfo(buffer, TimeSpan.FromSeconds(60));
        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.ServerInfo, type);
        Assert.True(RelayFrames.TryParseServerInfo(payload, out var keepAlive));
        Assert.Equal(TimeSpan.FromSeconds(60), keepAlive);
    }

    [Theory]
    [InlineData(RelayFrameType.SendPacket, 0)]
    [InlineData(RelayFrameType.RecvPacket, 1)]
    [InlineData(RelayFrameType.SendPacket, 1420)]
    [InlineData(RelayFrameType.RecvPacket, RelayFrames.MaxPacketSize)]
    public void Packet_RoundTrips(RelayFrameType frameType, int size)
    {
        var packet = Enumerable.Range(0, size).Select(i => (byte)(i * 7)).ToArray();
        var buffer = new byte[RelayFrames.MaxFrameSize];
        var length = RelayFrames.WritePacket(buffer, frameType, Key(9), packet);
        Assert.Equal(RelayFrames.HeaderSize + 32 + size, length);
        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(frameType, type);
        Assert.True(RelayFrames.TryParsePacket(payload, out var peer, out var parsed));
        Assert.Equal(Key(9), peer);
        Assert.Equal(packet, parsed.ToArray());
    }

    [Fact]
    public void Packet_RandomKeysAndPayloads_RoundTrip()
    {
        // Sample runs on several threads at once: each sample gets its own buffer.
        Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[0, 2000]).Sample((key, packet) =>
        {
            var buffer = new byte[RelayFrames.MaxFrameSize];
            var peer = new NodeKey(new NoisePublicKey(key));
            var length = RelayFrames.WritePacket(buffer, RelayFrameType.SendPacket, peer, packet);
            Assert.True(RelayFrames.TryReadFrame(buffer.AsSpan(0, length), out var type, out var payload));
            Assert.Equal(RelayFrameType.SendPacket, type);
            Assert.True(RelayFrames.TryParsePacket(payload, out var parsedPeer, out var parsed));
            Assert.Equal(peer, parsedPeer);
            Assert.True(parsed.SequenceEqual(packet));
        });
    }

    [Fact]
    public void Packet_TooLarge_Throws()
    {
        var buffer = new byte[RelayFrames.MaxFrameSize + 1];
        Assert.Throws<ArgumentException>(() => RelayFrames.WritePacket(buffer, RelayFrameType.SendPacket, Key(1), new byte[RelayFrames.MaxPacketSize + 1]));
    }

    [Fact]
    public void Packet_PayloadShorterThanKey_IsRejected()
    {
        Assert.False(RelayFrames.TryParsePacket(new byte[31], out _, out _));
    }

    [Fact]
    public void PingPongKeepAlive_RoundTrip()
    {
        var buffer = new byte[16];
        var length = RelayFrames.WritePing(buffer, RelayFrameType.Pong, 42);
        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.Pong, type);
        Assert.True(RelayFrames.TryParsePing(payload, out var data));
        Assert.Equal(42ul, data);

        length = RelayFrames.WriteKeepAlive(buffer);
        (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.KeepAlive, type);
        Assert.True(RelayFrames.TryParseKeepAlive(payload));
        Assert.False(RelayFrames.TryParseKeepAlive(new byte[1]));
        Assert.False(RelayFrames.TryParsePing(new byte[7], out _));
        Assert.False(RelayFrames.TryParsePing(new byte[9], out _));
    }

    [Fact]
    public void PeerGone_RoundTrips()
    {
        var buffer = new byte[64];
        var length = RelayFrames.WritePeerGone(buffer, Key(4), RelayPeerGoneReason.NotConnected);
        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.PeerGone, type);
        Assert.True(RelayFrames.TryParsePeerGone(payload, out var peer, out var reason));
        Assert.Equal(Key(4), peer);
        Assert.Equal(RelayPeerGoneReason.NotConnected, reason);
    }

    [Fact]
    public void Error_RoundTrips_AndLongMessagesAreCutOnACharacterBoundary()
    {
        var buffer = new byte[RelayFrames.MaxFrameSize];
        var length = RelayFrames.WriteError(buffer, RelayErrorCode.Unauthorized, "nodekey:ab is not a node of this network");
        var (type, payload) = Read(buffer.AsSpan(0, length));
        Assert.Equal(RelayFrameType.Error, type);
        Assert.True(RelayFrames.TryParseError(payload, out var code, out var message));
        Assert.Equal(RelayErrorCode.Unauthorized, code);
        Assert.Equal("nodekey:ab is not a node of this network", message);

        var longMessage = new string('é', 2000); // 2 bytes each in UTF-8
        length = RelayFrames.WriteError(buffer, RelayErrorCode.ProtocolError, longMessage);
        Assert.Equal(RelayFrames.ErrorFrameSize(longMessage), length);
        (_, payload) = Read(buffer.AsSpan(0, length));
        Assert.True(RelayFrames.TryParseError(payload, out _, out message));
        Assert.Equal(new string('é', RelayFrames.MaxErrorMessageSize / 2), message);
    }

    [Fact]
    public void Error_InvalidUtf8OrEmpty_IsRejected()
    {
        Assert.False(RelayFrames.TryParseError([], out _, out _));
        Assert.False(RelayFrames.TryParseError([1, 0xC3], out _, out _));
    }

    [Fact]
    public void ReadFrame_LengthFieldMustMatchExactly()
    {
        var buffer = new byte[16];
        var length = RelayFrames.WritePing(buffer, RelayFrameType.Ping, 1);
        Assert.True(RelayFrames.TryReadFrame(buffer.AsSpan(0, length), out _, out _));
        Assert.False(RelayFrames.TryReadFrame(buffer.AsSpan(0, length - 1), out _, out _));
        Assert.False(RelayFrames.TryReadFrame(buffer.AsSpan(0, length + 1), out _, out _));
        for (var n = 0; n < RelayFrames.HeaderSize; n++)
        {
            Assert.False(RelayFrames.TryReadFrame(buffer.AsSpan(0, n), out _, out _));
        }
    }

    [Fact]
    public void ReadFrame_LengthBeyondMaximum_IsRejected()
    {
        var frame = new byte[RelayFrames.MaxFrameSize + 1];
        frame[0] = (byte)RelayFrameType.SendPacket;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), RelayFrames.MaxPayloadSize + 1);
        Assert.False(RelayFrames.TryReadFrame(frame, out _, out _));
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), uint.MaxValue);
        Assert.False(RelayFrames.TryReadFrame(frame.AsSpan(0, 5), out _, out _));
    }

    [Fact]
    public void ExactLengthParsers_RejectEveryOtherLength()
    {
        var scratch = new byte[32];
        for (var n = 0; n < 80; n++)
        {
            var payload = new byte[n];
            Assert.Equal(n == RelayFrames.ServerKeyPayloadSize, RelayFrames.TryParseServerKey(PrefixVersion(payload), out _, scratch));
            Assert.Equal(n == RelayFrames.ClientInfoPayloadSize, RelayFrames.TryParseClientInfo(payload, out _, out _));
            Assert.Equal(n == RelayFrames.ServerInfoPayloadSize, RelayFrames.TryParseServerInfo(payload, out _));
            Assert.Equal(n == RelayFrames.PeerGonePayloadSize, RelayFrames.TryParsePeerGone(payload, out _, out _));
            Assert.Equal(n == RelayFrames.PingDataSize, RelayFrames.TryParsePing(payload, out _));
        }

        static byte[] PrefixVersion(byte[] payload)
        {
            if (payload.Length > 0)
            {
                payload[0] = RelayFrames.ProtocolVersion;
            }

            return payload;
        }
    }

    [Fact]
    public void Parsers_RandomInput_NeverThrow()
    {
        var random = new Random(20240);
        var buffer = new byte[300];
        var challenge = new byte[32];
        for (var i = 0; i < 20_000; i++)
        {
            random.NextBytes(buffer);
            var span = buffer.AsSpan(0, random.Next(buffer.Length));
            if (span.Length >= RelayFrames.HeaderSize && i % 2 == 0)
            {
                BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)(span.Length - RelayFrames.HeaderSize));
            }

            if (RelayFrames.TryReadFrame(span, out _, out var payload))
            {
                _ = RelayFrames.TryParseServerKey(payload, out _, challenge);
                _ = RelayFrames.TryParseClientInfo(payload, out _, out _);
                _ = RelayFrames.TryParseServerInfo(payload, out _);
                _ = RelayFrames.TryParsePacket(payload, out _, out _);
                _ = RelayFrames.TryParsePing(payload, out _);
                _ = RelayFrames.TryParsePeerGone(payload, out _, out _);
                _ = RelayFrames.TryParseError(payload, out _, out _);
            }
        }
    }
}

public class RelayProofTests
{
    private static (byte[] Private, NoisePublicKey Public) KeyPair() => TestKeys.NewPair();

    [Fact]
    public void Proof_FromTheKeyHolder_Verifies()
    {
        var relay = KeyPair();
        var node = KeyPair();
        var challenge = new byte[32];
        Random.Shared.NextBytes(challenge);
        var proof = new byte[32];

        Assert.True(RelayProof.TryCompute(node.Private, node.Public, relay.Public, challenge, proof));
        Assert.True(RelayProof.Verify(relay.Private, relay.Public, node.Public, challenge, proof));
    }

    [Fact]
    public void Proof_FromAnotherPrivateKey_DoesNotVerify()
    {
        var relay = KeyPair();
        var node = KeyPair();
        var impostor = KeyPair();
        var challenge = new byte[32];
        var proof = new byte[32];

        Assert.True(RelayProof.TryCompute(impostor.Private, node.Public, relay.Public, challenge, proof));
        Assert.False(RelayProof.Verify(relay.Private, relay.Public, node.Public, challenge, proof));
    }

    [Fact]
    public void Proof_ForAnotherChallengeOrRelay_DoesNotVerify()
    {
        var relay = KeyPair();
        var otherRelay = KeyPair();
        var node = KeyPair();
        var challenge = new byte[32];
        var proof = new byte[32];
        RelayProof.TryCompute(node.Private, node.Public, relay.Public, challenge, proof);

        var otherChallenge = new byte[32];
        otherChallenge[0] = 1;
        Assert.False(RelayProof.Verify(relay.Private, relay.Public, node.Public, otherChallenge, proof));
        Assert.False(RelayProof.Verify(otherRelay.Private, otherRelay.Public, node.Public, challenge, proof));
    }

    [Fact]
    public void Proof_LowOrderNodeKey_IsRefused()
    {
        var relay = KeyPair();
        Assert.False(RelayProof.Verify(relay.Private, relay.Public, new NoisePublicKey(new byte[32]), new byte[32], new byte[32]));
    }
}
