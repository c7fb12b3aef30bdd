using System.Net;
using Mesh.Protocol.Stun;

namespace Mesh.Protocol.Tests.Stun;

public class StunMessageTests
{
    // Known-answer vectors from RFC 5769 ("Test Vectors for Session Traversal Utilities for NAT
    // (STUN)", April 2010), as printed in the RFC. SOFTWARE/USERNAME padding is 0x20 there on purpose.
    private const string Rfc5769TransactionId = "b7e7a701bc34d686fa87dfae";

    /// <summary>RFC 5769 §2.1 "Sample Request": SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT.</summary>
    private const string Rfc5769Request = """
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff
        80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
        80 28 00 04 e5 7a 3b cf
        """;

    /// <summary>RFC 5769 §2.2 "Sample IPv4 Response": XOR-MAPPED-ADDRESS 192.0.2.1:32853.</summary>
    private const string Rfc5769IPv4Response = """
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
        80 28 00 04 c0 7d 4c 96
        """;

    /// <summary>RFC 5769 §2.3 "Sample IPv6 Response": XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.</summary>
    private const string Rfc5769IPv6Response = """
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
        80 28 00 04 c8 fb 0b 4c
        """;

    private static byte[] Hex(string text) => Convert.FromHexString(string.Concat(text.Where(Uri.IsHexDigit)));

    [Fact]
    public void ParseResponse_Rfc5769IPv4Vector_YieldsMappedAddress()
    {
        Assert.True(StunMessage.TryParseBindingResponse(Hex(Rfc5769IPv4Response), out var id, out var mapped));
        Assert.Equal(Rfc5769TransactionId, id.ToString());
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 32853), mapped);
    }

    [Fact]
    public void ParseResponse_Rfc5769IPv6Vector_YieldsMappedAddress()
    {
        Assert.True(StunMessage.TryParseBindingResponse(Hex(Rfc5769IPv6Response), out var id, out var mapped));
        Assert.Equal(Rfc5769TransactionId, id.ToString());
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8:1234:5678:11:2233:4455:6677"), 32853), mapped);
    }

    [Fact]
    public void ParseRequest_Rfc5769RequestVector_IsBindingRequest()
    {
        var packet = Hex(Rfc5769Request);
        Assert.True(StunMessage.IsStunPacket(packet));
        Assert.True(StunMessage.TryParseBindingRequest(packet, out var id));
        Assert.Equal(Rfc5769TransactionId, id.ToString());
        Assert.False(StunMessage.TryParseBindingResponse(packet, out _, out _));
    }

    [Theory]
    [InlineData(Rfc5769Request)]
    [InlineData(Rfc5769IPv4Response)]
    [InlineData(Rfc5769IPv6Response)]
    public void Parse_Rfc5769VectorWithOneBitFlipped_FingerprintRejects(string vector)
    {
        var packet = Hex(vector);
        packet[30] ^= 0x01; // inside the SOFTWARE value, which nothing but FINGERPRINT covers
        Assert.False(StunMessage.TryParseBindingRequest(packet, out _));
        Assert.False(StunMessage.TryParseBindingResponse(packet, out _, out _));
    }

    [Fact]
    public void WriteRequest_IsRecognisedAndParses()
    {
        var id = StunTransactionId.NewId();
        var packet = new byte[StunMessage.BindingRequestSize];
        Assert.Equal(StunMessage.BindingRequestSize, StunMessage.WriteBindingRequest(packet, id));
        Assert.True(StunMessage.IsStunPacket(packet));
        Assert.True(StunMessage.TryParseBindingRequest(packet, out var parsed));
        Assert.Equal(id, parsed);
    }

    [Theory]
    [InlineData("192.0.2.1", 32853)]
    [InlineData("198.18.0.7", 1)]
    [InlineData("2001:db8:1234:5678:11:2233:4455:6677", 65535)]
    [InlineData("::1", 41641)]
    public void WriteResponse_RoundTrips(string address, int port)
    {
        var id = StunTransactionId.NewId();
        var buffer = new byte[StunMessage.MaxBindingResponseSize];
        var endPoint = new IPEndPoint(IPAddress.Parse(address), port);
        var length = StunMessage.WriteBindingResponse(buffer, id, endPoint);
        Assert.True(StunMessage.TryParseBindingResponse(buffer.AsSpan(0, length), out var parsedId, out var mapped));
        Assert.Equal(id, parsedId);
        Assert.Equal(endPoint, mapped);
    }

    [Fact]
    public void WriteResponse_Rfc5769Address_ReproducesTheVectorsXorValue()
    {
        var id = new StunTransactionId(Convert.FromHexString(Rfc5769TransactionId));
        var buffer = new byte[StunMessage.MaxBindingResponseSize];
        var length = StunMessage.WriteBindingResponse(buffer, id, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 32853));
        Assert.Equal(StunMessage.HeaderSize + 12 + 8, length);
        Assert.Equal(Hex("00 20 00 08 00 01 a1 47 e1 12 a6 43"), buffer[20..32]);
    }

    [Fact]
    public void WriteResponse_IPv4MappedIPv6Sender_IsWrittenAsIPv4()
    {
        var buffer = new byte[StunMessage.MaxBindingResponseSize];
        var length = StunMessage.WriteBindingResponse(buffer, StunTransactionId.NewId(), new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.9"), 7));
        Assert.True(StunMessage.TryParseBindingResponse(buffer.AsSpan(0, length), out _, out var mapped));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.9"), 7), mapped);
    }

    [Fact]
    public void ParseResponse_MappedAddressOnly_IsTheFallback()
    {
        // Header (length 12) + MAPPED-ADDRESS 198.18.0.1:3478, not XORed.
        var packet = Hex("01 01 00 0c 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 01  00 01 00 08 00 01 0d 96 c6 12 00 01");
        Assert.True(StunMessage.TryParseBindingResponse(packet, out _, out var mapped));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.18.0.1"), 3478), mapped);
    }

    [Fact]
    public void ParseResponse_NoAddressAttribute_IsRejected()
    {
        var packet = Hex("01 01 00 00 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 01");
        Assert.True(StunMessage.IsStunPacket(packet));
        Assert.False(StunMessage.TryParseBindingResponse(packet, out _, out _));
    }

    [Fact]
    public void ParseResponse_AddressOfWrongLengthForFamily_IsRejected()
    {
        // IPv6 family with an 8-byte value.
        var packet = Hex("01 01 00 0c 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 01  00 20 00 08 00 02 a1 47 e1 12 a6 43");
        Assert.False(StunMessage.TryParseBindingResponse(packet, out _, out _));
    }

    [Fact]
    public void Parse_EveryTruncationOfEveryVector_ReturnsFalse()
    {
        foreach (var vector in new[] { Rfc5769Request, Rfc5769IPv4Response, Rfc5769IPv6Response })
        {
            var packet = Hex(vector);
            for (var n = 0; n < packet.Length; n++)
            {
                var prefix = packet.AsSpan(0, n);
                Assert.False(StunMessage.IsStunPacket(prefix));
                Assert.False(StunMessage.TryParseBindingRequest(prefix, out _));
                Assert.False(StunMessage.TryParseBindingResponse(prefix, out _, out _));
            }
        }
    }

    [Fact]
    public void Parse_AttributeRunningPastTheEnd_ReturnsFalse()
    {
        // Message length 8, but the attribute claims 12 bytes of value.
        var packet = Hex("00 01 00 08 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 01  80 22 00 0c 41 42 43 44");
        Assert.True(StunMessage.IsStunPacket(packet));
        Assert.False(StunMessage.TryParseBindingRequest(packet, out _));
    }

    [Fact]
    public void Parse_FingerprintNotLast_ReturnsFalse()
    {
        var packet = new byte[StunMessage.BindingRequestSize + 8];
        StunMessage.WriteBindingRequest(packet, StunTransactionId.NewId());
        packet[3] += 8; // length now covers a trailing SOFTWARE attribute after FINGERPRINT
        packet[28] = 0x80;
        packet[29] = 0x22;
        packet[31] = 4;
        Assert.False(StunMessage.TryParseBindingRequest(packet, out _));
    }

    [Fact]
    public void IsStunPacket_WireGuardMessages_AreNot()
    {
        // A handshake initiation (type 1) and a transport data message (type 4) header.
        var initiation = new byte[148];
        initiation[0] = 1;
        initiation[4] = 0x21;
        var data = new byte[32];
        data[0] = 4;
        Assert.False(StunMessage.IsStunPacket(initiation));
        Assert.False(StunMessage.IsStunPacket(data));
    }

    [Fact]
    public void Parse_RandomGarbage_NeverThrows()
    {
        var random = new Random(5769);
        var buffer = new byte[128];
        for (var i = 0; i < 20_000; i++)
        {
            var length = random.Next(buffer.Length);
            random.NextBytes(buffer);
            if (i % 2 == 0)
            {
                // Make half of them pass the header check so the attribute walker sees garbage.
                buffer[0] = (byte)(i % 4 == 0 ? 0x00 : 0x01); // Binding Request or Success Response
                buffer[1] = 0x01;
                length = Math.Max(20, length & ~3);
                buffer[2] = 0;
                buffer[3] = (byte)(length - 20);
                buffer[4] = 0x21;
                buffer[5] = 0x12;
                buffer[6] = 0xa4;
                buffer[7] = 0x42;
            }

            var packet = buffer.AsSpan(0, length);
            _ = StunMessage.IsStunPacket(packet);
            _ = StunMessage.TryParseBindingRequest(packet, out _);
            _ = StunMessage.TryParseBindingResponse(packet, out _, out _);
        }
    }
}
