using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using Mesh.WireGuard;

namespace Mesh.Protocol.Relay;

/// <summary>The frame types of the relay protocol (see <see cref="RelayFrames"/> and RELAY.md).</summary>
public enum RelayFrameType : byte
{
    /// <summary>Server → client, first frame: protocol version, the relay's static public key, a challenge.</summary>
    ServerKey = 0x01,

    /// <summary>Client → server, answer to ServerKey: the node key and the proof that the client holds it.</summary>
    ClientInfo = 0x02,

    /// <summary>Server → client: accepted; carries the server's keepalive interval.</summary>
    ServerInfo = 0x03,

    /// <summary>Client → server: a packet for the node with the given key.</summary>
    SendPacket = 0x04,

    /// <summary>Server → client: a packet from the node with the given key.</summary>
    RecvPacket = 0x05,

    /// <summary>Either way, no payload: keeps proxies and NATs from closing an idle connection.</summary>
    KeepAlive = 0x06,

    /// <summary>Either way: 8 bytes the receiver echoes in a Pong.</summary>
    Ping = 0x07,

    /// <summary>The echo of a Ping.</summary>
    Pong = 0x08,

    /// <summary>Server → client: a packet was sent to a node that is not connected to this relay.</summary>
    PeerGone = 0x09,

    /// <summary>Server → client, last frame: why the server closes the connection.</summary>
    Error = 0x0A,
}

/// <summary>Why a peer is gone (the PeerGone frame's reason byte).</summary>
public enum RelayPeerGoneReason : byte
{
    /// <summary>No client with that key is connected to this relay.</summary>
    NotConnected = 0,
}

/// <summary>The Error frame's code: why the server closed the connection.</summary>
public enum RelayErrorCode : byte
{
    /// <summary>A malformed, oversized or unexpected frame.</summary>
    ProtocolError = 1,

    /// <summary>The ClientInfo proof does not verify: the client does not hold the key it claims.</summary>
    BadProof = 2,

    /// <summary>The node key is not a member of this network.</summary>
    Unauthorized = 3,

    /// <summary>A newer connection for the same node key replaced this one.</summary>
    Replaced = 4,

    /// <summary>The relay is shutting down.</summary>
    ShuttingDown = 5,

    /// <summary>The coordinator removed the node (deleted, expired, or no longer authorized).</summary>
    Disconnected = 6,

    /// <summary>The handshake did not complete in time.</summary>
    Timeout = 7,
}

/// <summary>
/// Encoding and decoding of relay frames. Every frame travels as exactly one binary WebSocket
/// message, laid out as
/// <code>
/// 0  type (1 byte, RelayFrameType)
/// 1  payload length n (4 bytes, big-endian, at most MaxPayloadSize)
/// 5  payload (n bytes)
/// </code>
/// and the message must be exactly 5 + n bytes long. The payloads, offsets from the payload's start:
/// <code>
/// ServerKey   0 version (1) = 1 | 1 relay public key (32) | 33 challenge (32)        = 65
/// ClientInfo  0 node public key (32) | 32 proof (32, see RelayProof)                  = 64
/// ServerInfo  0 keepalive interval in seconds (4, big-endian)                        = 4
/// SendPacket  0 destination node key (32) | 32 packet (0..MaxPacketSize)
/// RecvPacket  0 source node key (32)      | 32 packet (0..MaxPacketSize)
/// KeepAlive   (empty)                                                                 = 0
/// Ping, Pong  0 data (8)                                                              = 8
/// PeerGone    0 node key (32) | 32 reason (1, RelayPeerGoneReason)                    = 33
/// Error       0 code (1, RelayErrorCode) | 1 message (UTF-8, at most MaxErrorMessageSize)
/// </code>
/// Parsers demand the exact length and return false on anything else; they never throw.
/// Writers return the number of bytes written and throw only on caller error (a buffer too small
/// or a packet too large).
/// </summary>
public static class RelayFrames
{
    public const byte ProtocolVersion = 1;
    public const int HeaderSize = 5;
    public const int MaxPayloadSize = 64 * 1024;
    public const int KeySize = NoisePublicKey.Size;
    public const int ChallengeSize = 32;
    public const int ProofSize = 32;
    public const int PingDataSize = 8;
    public const int MaxPacketSize = MaxPayloadSize - KeySize;
    public const int MaxErrorMessageSize = 1024;

    /// <summary>The largest whole frame (header and payload): the size of a receive buffer.</summary>
    public const int MaxFrameSize = HeaderSize + MaxPayloadSize;

    public const int ServerKeyPayloadSize = 1 + KeySize + ChallengeSize;
    public const int ClientInfoPayloadSize = KeySize + ProofSize;
    public const int ServerInfoPayloadSize = 4;
    public const int PeerGonePayloadSize = KeySize + 1;

    private const int TypeOffset = 0;
    private const int LengthOffset = 1;

    /// <summary>Splits a received message into type and payload; false unless the length field matches the message exactly.</summary>
    public static bool TryReadFrame(ReadOnlySpan<byte> message, out RelayFrameType type, out ReadOnlySpan<byte> payload)
    {
        type = default;
        payload = default;
        if (message.Length < HeaderSize)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(message[LengthOffset..]);
        if (length > MaxPayloadSize || length != (uint)(message.Length - HeaderSize))
        {
            return false;
        }

        type = (RelayFrameType)message[TypeOffset];
        payload = message[HeaderSize..];
        return true;
    }

    public static int WriteServerKey(Span<byte> destination, NoisePublicKey relayKey, ReadOnlySpan<byte> challenge)
    {
        RequireLength(challenge, ChallengeSize, nameof(challenge));
        var payload = Begin(destination, RelayFrameType.ServerKey, ServerKeyPayloadSize);
        payload[0] = ProtocolVersion;
        relayKey.CopyTo(payload[1..]);
        challenge.CopyTo(payload[(1 + KeySize)..]);
        return HeaderSize + ServerKeyPayloadSize;
    }

    /// <summary>False for a wrong length or a version other than ours.</summary>
    public static bool TryParseServerKey(ReadOnlySpan<byte> payload, out NoisePublicKey relayKey, Span<byte> challenge)
    {
        relayKey = default;
        if (payload.Length != ServerKeyPayloadSize || payload[0] != ProtocolVersion || challenge.Length < ChallengeSize)
        {
            return false;
        }

        relayKey = new NoisePublicKey(payload.Slice(1, KeySize));
        payload.Slice(1 + KeySize, ChallengeSize).CopyTo(challenge);
        return true;
    }

    public static int WriteClientInfo(Span<byte> destination, NodeKey node, ReadOnlySpan<byte> proof)
    {
        RequireLength(proof, ProofSize, nameof(proof));
        var payload = Begin(destination, RelayFrameType.ClientInfo, ClientInfoPayloadSize);
        node.Value.CopyTo(payload);
        proof.CopyTo(payload[KeySize..]);
        return HeaderSize + ClientInfoPayloadSize;
    }

    public static bool TryParseClientInfo(ReadOnlySpan<byte> payload, out NodeKey node, out ReadOnlySpan<byte> proof)
    {
        node = default;
        proof = default;
        if (payload.Length != ClientInfoPayloadSize)
        {
            return false;
        }

        node = new NodeKey(new NoisePublicKey(payload[..KeySize]));
        proof = payload.Slice(KeySize, ProofSize);
        return true;
    }

    public static int WriteServerInfo(Span<byte> destination, TimeSpan keepAliveInterval)
    {
        var payload = Begin(destination, RelayFrameType.ServerInfo, ServerInfoPayloadSize);
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)Math.Clamp(keepAliveInterval.TotalSeconds, 0, uint.MaxValue));
        return HeaderSize + ServerInfoPayloadSize;
    }

    public static bool TryParseServerInfo(ReadOnlySpan<byte> payload, out TimeSpan keepAliveInterval)
    {
        keepAliveInterval = default;
        if (payload.Length != ServerInfoPayloadSize)
        {
            return false;
        }

        keepAliveInterval = TimeSpan.FromSeconds(BinaryPrimitives.ReadUInt32BigEndian(payload));
        return true;
    }

    /// <summary>A SendPacket (client → server) or RecvPacket (server → client): the peer's key and the packet.</summary>
    public static int WritePacket(Span<byte> destination, RelayFrameType type, NodeKey peer, ReadOnlySpan<byte> packet)
    {
        if (type is not (RelayFrameType.SendPacket or RelayFrameType.RecvPacket))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "only SendPacket and RecvPacket carry packets");
        }

        if (packet.Length > MaxPacketSize)
        {
            throw new ArgumentException($"a relayed packet is at most {MaxPacketSize} bytes, not {packet.Length}", nameof(packet));
        }

        var payload = Begin(destination, type, KeySize + packet.Length);
        peer.Value.CopyTo(payload);
        packet.CopyTo(payload[KeySize..]);
        return HeaderSize + KeySize + packet.Length;
    }

    /// <summary>The payload of a SendPacket or RecvPacket: the peer's key and the packet (which may be empty).</summary>
    public static bool TryParsePacket(ReadOnlySpan<byte> payload, out NodeKey peer, out ReadOnlySpan<byte> packet)
    {
        peer = default;
        packet = default;
        if (payload.Length < KeySize || payload.Length > MaxPayloadSize)
        {
            return false;
        }

        peer = new NodeKey(new NoisePublicKey(payload[..KeySize]));
        packet = payload[KeySize..];
        return true;
    }

    public static int WriteKeepAlive(Span<byte> destination)
    {
        Begin(destination, RelayFrameType.KeepAlive, 0);
        return HeaderSize;
    }

    public static bool TryParseKeepAlive(ReadOnlySpan<byte> payload) => payload.IsEmpty;

    /// <summary>A Ping or a Pong with its 8 bytes of data.</summary>
    public static int WritePing(Span<byte> destination, RelayFrameType type, ulong data)
    {
        if (type is not (RelayFrameType.Ping or RelayFrameType.Pong))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "only Ping and Pong carry ping data");
        }

        var payload = Begin(destination, type, PingDataSize);
        BinaryPrimitives.WriteUInt64BigEndian(payload, data);
        return HeaderSize + PingDataSize;
    }

    public static bool TryParsePing(ReadOnlySpan<byte> payload, out ulong data)
    {
        data = 0;
        if (payload.Length != PingDataSize)
        {
            return false;
        }

        data = BinaryPrimitives.ReadUInt64BigEndian(payload);
        return true;
    }

    public static int WritePeerGone(Span<byte> destination, NodeKey peer, RelayPeerGoneReason reason)
    {
        var payload = Begin(destination, RelayFrameType.PeerGone, PeerGonePayloadSize);
        peer.Value.CopyTo(payload);
        payload[KeySize] = (byte)reason;
        return HeaderSize + PeerGonePayloadSize;
    }

    public static bool TryParsePeerGone(ReadOnlySpan<byte> payload, out NodeKey peer, out RelayPeerGoneReason reason)
    {
        peer = default;
        reason = default;
        if (payload.Length != PeerGonePayloadSize)
        {
            return false;
        }

        peer = new NodeKey(new NoisePublicKey(payload[..KeySize]));
        reason = (RelayPeerGoneReason)payload[KeySize];
        return true;
    }

    /// <summary>Writes an Error frame; a message longer than <see cref="MaxErrorMessageSize"/> UTF-8 bytes is cut short.</summary>
    public static int WriteError(Span<byte> destination, RelayErrorCode code, string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Span<byte> text = stackalloc byte[MaxErrorMessageSize];
        var length = Utf8Prefix(message, text);
        var payload = Begin(destination, RelayFrameType.Error, 1 + length);
        payload[0] = (byte)code;
        text[..length].CopyTo(payload[1..]);
        return HeaderSize + 1 + length;
    }

    /// <summary>False for an empty payload, a message over the limit, or one that is not valid UTF-8.</summary>
    public static bool TryParseError(ReadOnlySpan<byte> payload, out RelayErrorCode code, out string message)
    {
        code = default;
        message = string.Empty;
        if (payload.Length < 1 || payload.Length > 1 + MaxErrorMessageSize || !Utf8.IsValid(payload[1..]))
        {
            return false;
        }

        code = (RelayErrorCode)payload[0];
        message = Encoding.UTF8.GetString(payload[1..]);
        return true;
    }

    /// <summary>The size of a whole Error frame for <paramref name="message"/>, for sizing a buffer.</summary>
    public static int ErrorFrameSize(string message) => HeaderSize + 1 + Math.Min(Encoding.UTF8.GetByteCount(message), MaxErrorMessageSize);

    private static Span<byte> Begin(Span<byte> destination, RelayFrameType type, int payloadLength)
    {
        if (destination.Length < HeaderSize + payloadLength)
        {
            throw new ArgumentException($"a {type} frame needs {HeaderSize + payloadLength} bytes, the buffer has {destination.Length}", nameof(destination));
        }

        destination[TypeOffset] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(destination[LengthOffset..], (uint)payloadLength);
        return destination.Slice(HeaderSize, payloadLength);
    }

    private static void RequireLength(ReadOnlySpan<byte> value, int length, string name)
    {
        if (value.Length != length)
        {
            throw new ArgumentException($"{name} is {length} bytes, not {value.Length}", name);
        }
    }

    /// <summary>Encodes the longest prefix of <paramref name="text"/> that fits, never splitting a character.</summary>
    private static int Utf8Prefix(string text, Span<byte> destination)
    {
        var encoder = Encoding.UTF8.GetEncoder();
        encoder.Convert(text.AsSpan(), destination, flush: true, out _, out var bytesUsed, out _);
        return bytesUsed;
    }
}
