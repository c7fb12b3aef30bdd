using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Mesh.Protocol.Stun;

/// <summary>
/// The 96-bit STUN transaction id (RFC 8489 §5) as a value: compared without allocating, printed
/// as 24 hex digits.
/// </summary>
public readonly struct StunTransactionId : IEquatable<StunTransactionId>
{
    public const int Size = 12;

    private readonly ulong _high;
    private readonly uint _low;

    public StunTransactionId(ReadOnlySpan<byte> id)
    {
        if (id.Length != Size)
        {
            throw new ArgumentException($"A STUN transaction id is {Size} bytes, not {id.Length}.", nameof(id));
        }

        _high = BinaryPrimitives.ReadUInt64BigEndian(id);
        _low = BinaryPrimitives.ReadUInt32BigEndian(id[8..]);
    }

    /// <summary>A fresh id from the system CSPRNG (RFC 8489 §6: "uniformly and randomly chosen").</summary>
    public static StunTransactionId NewId()
    {
        Span<byte> id = stackalloc byte[Size];
        RandomNumberGenerator.Fill(id);
        return new StunTransactionId(id);
    }

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], _low);
    }

    public bool Equals(StunTransactionId other) => _high == other._high && _low == other._low;

    public override bool Equals(object? obj) => obj is StunTransactionId other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_high, _low);

    public override string ToString() => $"{_high:x16}{_low:x8}";

    public static bool operator ==(StunTransactionId left, StunTransactionId right) => left.Equals(right);

    public static bool operator !=(StunTransactionId left, StunTransactionId right) => !left.Equals(right);
}

/// <summary>
/// The part of STUN (RFC 8489, which obsoletes RFC 5389) that NAT discovery needs: a Binding
/// Request, and a Binding Success Response carrying the address the server saw the request come
/// from. This is what the coordinator's STUN server answers and what the node agent's netcheck
/// asks. It is not a general STUN stack: no authentication (MESSAGE-INTEGRITY is skipped, not
/// checked), no TURN, no error responses. Parsers return false on anything malformed and never throw.
/// </summary>
/// <remarks>
/// Message header (RFC 8489 §5), all fields big-endian:
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |0 0|     STUN Message Type     |         Message Length        |   0
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Magic Cookie = 0x2112A442                    |   4
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                Transaction ID (96 bits)                       |   8
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  attributes (Message Length bytes, a multiple of 4)           |  20
/// </code>
/// Each attribute (§14) is Type (2) | Length (2) | Value (Length bytes, zero-padded to a multiple of
/// 4; the padding's content is ignored). FINGERPRINT (§14.7), when present, is last and holds
/// CRC-32 of everything before it XOR 0x5354554E.
/// </remarks>
public static class StunMessage
{
    // Specification (RFC 8489).
    public const int HeaderSize = 20;
    public const uint MagicCookie = 0x2112A442;
    public const ushort BindingRequestType = 0x0001;
    public const ushort BindingSuccessResponseType = 0x0101;
    public const ushort AttributeMappedAddress = 0x0001;
    public const ushort AttributeXorMappedAddress = 0x0020;
    public const ushort AttributeFingerprint = 0x8028;
    public const uint FingerprintXor = 0x5354554E;

    /// <summary>XOR-MAPPED-ADDRESS under its pre-RFC code point, still sent by some old servers.</summary>
    public const ushort AttributeXorMappedAddressLegacy = 0x8020;

    private const int TypeOffset = 0;
    private const int LengthOffset = 2;
    private const int CookieOffset = 4;
    private const int TransactionIdOffset = 8;
    private const int AttributeHeaderSize = 4;
    private const int FingerprintAttributeSize = AttributeHeaderSize + 4;
    private const int AddressFamilyIPv4 = 0x01;
    private const int AddressFamilyIPv6 = 0x02;
    private const int AddressValueSizeIPv4 = 4 + 4;
    private const int AddressValueSizeIPv6 = 4 + 16;

    /// <summary>Our Binding Request: the header and a FINGERPRINT, nothing else.</summary>
    public const int BindingRequestSize = HeaderSize + FingerprintAttributeSize;

    /// <summary>Our largest Binding Success Response: an IPv6 XOR-MAPPED-ADDRESS and a FINGERPRINT.</summary>
    public const int MaxBindingResponseSize = HeaderSize + AttributeHeaderSize + AddressValueSizeIPv6 + FingerprintAttributeSize;

    /// <summary>
    /// Whether a datagram looks like STUN: the first two bits zero, the magic cookie in place, and the
    /// length field matching the datagram. Cheap enough to demultiplex every packet of a socket that
    /// also carries WireGuard (whose messages start with a type byte 1..4 followed by three zero
    /// bytes and a random sender index, so a false positive needs the index to equal the cookie and
    /// the length to line up).
    /// </summary>
    public static bool IsStunPacket(ReadOnlySpan<byte> packet) =>
        packet.Length >= HeaderSize
        && (packet[0] & 0xC0) == 0
        && BinaryPrimitives.ReadUInt32BigEndian(packet[CookieOffset..]) == MagicCookie
        && BinaryPrimitives.ReadUInt16BigEndian(packet[LengthOffset..]) == packet.Length - HeaderSize
        && (packet.Length - HeaderSize) % 4 == 0;

    /// <summary>Writes a Binding Request of <see cref="BindingRequestSize"/> bytes; returns its length.</summary>
    public static int WriteBindingRequest(Span<byte> destination, StunTransactionId transactionId)
    {
        var message = destination[..BindingRequestSize];
        WriteHeader(message, BindingRequestType, BindingRequestSize - HeaderSize, transactionId);
        WriteFingerprint(message, HeaderSize);
        return BindingRequestSize;
    }

    /// <summary>Accepts any well-formed Binding Request (attributes other than FINGERPRINT are skipped).</summary>
    public static bool TryParseBindingRequest(ReadOnlySpan<byte> packet, out StunTransactionId transactionId)
    {
        if (!TryReadHeader(packet, out var type, out transactionId) || type != BindingRequestType)
        {
            return false;
        }

        return TryWalkAttributes(packet, out _);
    }

    /// <summary>
    /// Writes a Binding Success Response telling the client it was seen at <paramref name="mapped"/>
    /// (an IPv4-mapped IPv6 address is written as IPv4). <paramref name="destination"/> needs
    /// <see cref="MaxBindingResponseSize"/> bytes; returns the length written.
    /// </summary>
    public static int WriteBindingResponse(Span<byte> destination, StunTransactionId transactionId, IPEndPoint mapped)
    {
        ArgumentNullException.ThrowIfNull(mapped);
        var address = mapped.Address.IsIPv4MappedToIPv6 ? mapped.Address.MapToIPv4() : mapped.Address;
        var valueSize = address.AddressFamily == AddressFamily.InterNetwork ? AddressValueSizeIPv4 : AddressValueSizeIPv6;
        var length = HeaderSize + AttributeHeaderSize + valueSize + FingerprintAttributeSize;
        var message = destination[..length];
        WriteHeader(message, BindingSuccessResponseType, length - HeaderSize, transactionId);

        var attribute = message[HeaderSize..];
        BinaryPrimitives.WriteUInt16BigEndian(attribute, AttributeXorMappedAddress);
        BinaryPrimitives.WriteUInt16BigEndian(attribute[2..], (ushort)valueSize);
        var value = attribute.Slice(AttributeHeaderSize, valueSize);
        value[0] = 0;
        value[1] = valueSize == AddressValueSizeIPv4 ? (byte)AddressFamilyIPv4 : (byte)AddressFamilyIPv6;
        BinaryPrimitives.WriteUInt16BigEndian(value[2..], (ushort)(mapped.Port ^ (MagicCookie >> 16)));
        if (!address.TryWriteBytes(value[4..], out _))
        {
            throw new ArgumentException("the mapped address does not fit", nameof(mapped));
        }

        // X-Address = address XOR (magic cookie || transaction id): the message's bytes 4..20.
        XorInPlace(value[4..], message.Slice(CookieOffset, valueSize - 4));
        WriteFingerprint(message, length - FingerprintAttributeSize);
        return length;
    }

    /// <summary>
    /// Parses a Binding Success Response and returns the mapped address: XOR-MAPPED-ADDRESS if
    /// present, else MAPPED-ADDRESS. False for anything else, including a response with neither.
    /// </summary>
    public static bool TryParseBindingResponse(ReadOnlySpan<byte> packet, out StunTransactionId transactionId, [NotNullWhen(true)] out IPEndPoint? mapped)
    {
        mapped = null;
        if (!TryReadHeader(packet, out var type, out transactionId) || type != BindingSuccessResponseType)
        {
            return false;
        }

        return TryWalkAttributes(packet, out mapped) && mapped is not null;
    }

    private static void WriteHeader(Span<byte> message, ushort type, int attributesLength, StunTransactionId transactionId)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message[TypeOffset..], type);
        BinaryPrimitives.WriteUInt16BigEndian(message[LengthOffset..], (ushort)attributesLength);
        BinaryPrimitives.WriteUInt32BigEndian(message[CookieOffset..], MagicCookie);
        transactionId.CopyTo(message[TransactionIdOffset..]);
    }

    /// <summary>Writes FINGERPRINT at <paramref name="offset"/>, the end of the message; the header's length must already count it.</summary>
    private static void WriteFingerprint(Span<byte> message, int offset)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message[offset..], AttributeFingerprint);
        BinaryPrimitives.WriteUInt16BigEndian(message[(offset + 2)..], 4);
        var crc = StunCrc32.Compute(message[..offset]) ^ FingerprintXor;
        BinaryPrimitives.WriteUInt32BigEndian(message[(offset + AttributeHeaderSize)..], crc);
    }

    private static bool TryReadHeader(ReadOnlySpan<byte> packet, out ushort type, out StunTransactionId transactionId)
    {
        type = 0;
        transactionId = default;
        if (!IsStunPacket(packet))
        {
            return false;
        }

        type = BinaryPrimitives.ReadUInt16BigEndian(packet[TypeOffset..]);
        transactionId = new StunTransactionId(packet.Slice(TransactionIdOffset, StunTransactionId.Size));
        return true;
    }

    /// <summary>
    /// Walks the attributes: every one must fit exactly, a FINGERPRINT must be last and correct.
    /// Returns the first XOR-MAPPED-ADDRESS, or the first MAPPED-ADDRESS when there is none.
    /// </summary>
    private static bool TryWalkAttributes(ReadOnlySpan<byte> packet, out IPEndPoint? mapped)
    {
        mapped = null;
        IPEndPoint? plain = null;
        var offset = HeaderSize;
        while (offset < packet.Length)
        {
            if (packet.Length - offset < AttributeHeaderSize)
            {
                return false;
            }

            var type = BinaryPrimitives.ReadUInt16BigEndian(packet[offset..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(packet[(offset + 2)..]);
            var padded = (length + 3) & ~3;
            var valueOffset = offset + AttributeHeaderSize;
            if (packet.Length - valueOffset < padded)
            {
                return false;
            }

            var value = packet.Slice(valueOffset, length);
            switch (type)
            {
                case AttributeFingerprint:
                    if (length != 4 || valueOffset + 4 != packet.Length
                        || BinaryPrimitives.ReadUInt32BigEndian(value) != (StunCrc32.Compute(packet[..offset]) ^ FingerprintXor))
                    {
                        return false;
                    }

                    break;
                case AttributeXorMappedAddress or AttributeXorMappedAddressLegacy when mapped is null:
                    if (!TryReadAddress(value, packet, xored: true, out mapped))
                    {
                        return false;
                    }

                    break;
                case AttributeMappedAddress when plain is null:
                    if (!TryReadAddress(value, packet, xored: false, out plain))
                    {
                        return false;
                    }

                    break;
            }

            offset = valueOffset + padded;
        }

        mapped ??= plain;
        return true;
    }

    /// <summary>
    /// MAPPED-ADDRESS (RFC 8489 §14.1) and XOR-MAPPED-ADDRESS (§14.2) values:
    /// <code>
    /// 0  reserved (1, zero)
    /// 1  family (1): 0x01 IPv4, 0x02 IPv6
    /// 2  port (2); XOR-MAPPED: port XOR the cookie's top 16 bits
    /// 4  address (4 or 16); XOR-MAPPED: XOR (magic cookie || transaction id)
    /// </code>
    /// </summary>
    private static bool TryReadAddress(ReadOnlySpan<byte> value, ReadOnlySpan<byte> message, bool xored, [NotNullWhen(true)] out IPEndPoint? endPoint)
    {
        endPoint = null;
        int addressSize;
        if (value.Length == AddressValueSizeIPv4 && value[1] == AddressFamilyIPv4)
        {
            addressSize = 4;
        }
        else if (value.Length == AddressValueSizeIPv6 && value[1] == AddressFamilyIPv6)
        {
            addressSize = 16;
        }
        else
        {
            return false;
        }

        int port = BinaryPrimitives.ReadUInt16BigEndian(value[2..]);
        Span<byte> address = stackalloc byte[16];
        address = address[..addressSize];
        value.Slice(4, addressSize).CopyTo(address);
        if (xored)
        {
            port ^= (int)(MagicCookie >> 16);
            XorInPlace(address, message.Slice(CookieOffset, addressSize));
        }

        endPoint = new IPEndPoint(new IPAddress(address), port);
        return true;
    }

    private static void XorInPlace(Span<byte> target, ReadOnlySpan<byte> mask)
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] ^= mask[i];
        }
    }
}
