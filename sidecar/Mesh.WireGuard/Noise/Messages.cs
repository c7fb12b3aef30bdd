using System.Buffers.Binary;

namespace Mesh.WireGuard.Noise;

/// <summary>
/// Byte layouts of WireGuard's four messages (whitepaper §5.4.2–§5.4.7). All integers are
/// little-endian; the first four bytes are the type followed by three zero bytes, read together as
/// one 32-bit word so that a non-zero reserved byte makes the message unknown.
/// <code>
/// Handshake initiation (148 bytes)        Handshake response (92 bytes)
///   0  type = 1, reserved                   0  type = 2, reserved
///   4  sender index                         4  sender index
///   8  unencrypted ephemeral (32)           8  receiver index
///  40  encrypted static (32 + 16)          12  unencrypted ephemeral (32)
///  88  encrypted timestamp (12 + 16)       44  encrypted nothing (0 + 16)
/// 116  mac1 (16)                           60  mac1 (16)
/// 132  mac2 (16)                           76  mac2 (16)
///
/// Cookie reply (64 bytes)                 Transport data (16 + n + 16 bytes)
///   0  type = 3, reserved                   0  type = 4, reserved
///   4  receiver index                       4  receiver index
///   8  nonce (24)                           8  counter (64-bit)
///  32  encrypted cookie (16 + 16)          16  encrypted, zero-padded packet + tag
/// </code>
/// </summary>
public static class Messages
{
    public const uint TypeInitiation = 1;
    public const uint TypeResponse = 2;
    public const uint TypeCookieReply = 3;
    public const uint TypeTransport = 4;

    public const int InitiationSize = 148;
    public const int ResponseSize = 92;
    public const int CookieReplySize = 64;
    public const int TransportHeaderSize = 16;
    public const int TagSize = 16;
    /// <summary>A transport message carrying an empty (keepalive) packet.</summary>
    public const int TransportMinSize = TransportHeaderSize + TagSize;

    // Initiation offsets
    public const int InitSender = 4;
    public const int InitEphemeral = 8;
    public const int InitStatic = 40;
    public const int InitStaticSize = 32 + 16;
    public const int InitTimestamp = 88;
    public const int InitTimestampSize = 12 + 16;
    public const int InitMac1 = 116;
    public const int InitMac2 = 132;

    // Response offsets
    public const int RespSender = 4;
    public const int RespReceiver = 8;
    public const int RespEphemeral = 12;
    public const int RespEmpty = 44;
    public const int RespMac1 = 60;
    public const int RespMac2 = 76;

    // Cookie reply offsets
    public const int CookieReceiver = 4;
    public const int CookieNonce = 8;
    public const int CookieNonceSize = 24;
    public const int CookieEncrypted = 32;
    public const int CookieEncryptedSize = 16 + 16;

    // Transport offsets
    public const int TransportReceiver = 4;
    public const int TransportCounter = 8;
    public const int TransportData = 16;

    public static uint ReadType(ReadOnlySpan<byte> message) =>
        message.Length < 4 ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(message);

    public static void WriteHeader(Span<byte> message, uint type) =>
        BinaryPrimitives.WriteUInt32LittleEndian(message, type);

    public static uint ReadIndex(ReadOnlySpan<byte> message, int offset) =>
        BinaryPrimitives.ReadUInt32LittleEndian(message[offset..]);

    public static void WriteIndex(Span<byte> message, int offset, uint index) =>
        BinaryPrimitives.WriteUInt32LittleEndian(message[offset..], index);
}
