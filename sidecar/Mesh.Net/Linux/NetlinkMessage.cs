using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Mesh.Net.Linux;

/// <summary>
/// Builds and reads NETLINK_ROUTE messages in host byte order, as the kernel expects them.
/// Layouts: rtnetlink(7), netlink(7), <c>include/uapi/linux/{netlink,rtnetlink,if_link,if_addr}.h</c>;
/// every structure and attribute is padded to 4 bytes (NLMSG_ALIGN / RTA_ALIGN).
/// </summary>
internal ref struct NetlinkMessage
{
    // struct nlmsghdr, 16 bytes:
    //  0               4       6       8               12              16
    // +---------------+-------+-------+---------------+---------------+
    // | nlmsg_len u32 | type  | flags | nlmsg_seq u32 | nlmsg_pid u32 |
    // +---------------+-------+-------+---------------+---------------+
    public const int HeaderLength = 16;
    public const int HeaderLengthOffset = 0;
    public const int HeaderTypeOffset = 4;
    public const int HeaderFlagsOffset = 6;
    public const int HeaderSeqOffset = 8;
    public const int HeaderPidOffset = 12;

    // Message types.
    public const ushort NLMSG_ERROR = 2;
    public const ushort NLMSG_DONE = 3;
    public const ushort RTM_NEWLINK = 16;
    public const ushort RTM_DELLINK = 17;
    public const ushort RTM_GETLINK = 18;
    public const ushort RTM_NEWADDR = 20;
    public const ushort RTM_DELADDR = 21;
    public const ushort RTM_NEWROUTE = 24;
    public const ushort RTM_DELROUTE = 25;
    public const ushort RTM_GETROUTE = 26;

    // nlmsg_flags.
    public const ushort NLM_F_REQUEST = 0x1;
    public const ushort NLM_F_MULTI = 0x2;
    public const ushort NLM_F_ACK = 0x4;
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;
    public const ushort NLM_F_CAPPED = 0x100;   // on NLMSG_ERROR: the request was not echoed
    public const ushort NLM_F_ACK_TLVS = 0x200; // on NLMSG_ERROR: extended-ACK attributes follow

    // struct nlmsgerr after the header: int error (negative errno, 0 = ACK), then the request's
    // nlmsghdr (and its payload unless NLM_F_CAPPED), then NLMSGERR_ATTR_* attributes.
    public const int ErrorCodeOffset = HeaderLength;
    public const int ErrorRequestOffset = HeaderLength + 4;
    public const ushort NLMSGERR_ATTR_MSG = 1;

    // struct ifinfomsg, 16 bytes:
    //  0        1     2         4               8               12              16
    // +--------+-----+---------+---------------+---------------+---------------+
    // | family | pad | type u16| ifi_index i32 | ifi_flags u32 | ifi_change u32|
    // +--------+-----+---------+---------------+---------------+---------------+
    public const int IfInfoLength = 16;
    public const int IfInfoFamilyOffset = 0;
    public const int IfInfoTypeOffset = 2;
    public const int IfInfoIndexOffset = 4;
    public const int IfInfoFlagsOffset = 8;
    public const int IfInfoChangeOffset = 12;
    public const uint IFF_UP = 0x1;
    public const uint IFF_LOWER_UP = 0x10000;
    public const ushort IFLA_IFNAME = 3;
    public const ushort IFLA_MTU = 4;

    // struct ifaddrmsg, 8 bytes:
    //  0        1           2         3         4               8
    // +--------+-----------+---------+---------+---------------+
    // | family | prefixlen | flags u8| scope u8| ifa_index u32 |
    // +--------+-----------+---------+---------+---------------+
    public const int IfAddrLength = 8;
    public const int IfAddrFamilyOffset = 0;
    public const int IfAddrPrefixOffset = 1;
    public const int IfAddrFlagsOffset = 2;
    public const int IfAddrScopeOffset = 3;
    public const int IfAddrIndexOffset = 4;
    public const ushort IFA_ADDRESS = 1;
    public const ushort IFA_LOCAL = 2;
    public const ushort IFA_FLAGS = 8;
    public const byte IFA_F_NODAD = 0x02;

    // struct rtmsg, 12 bytes:
    //  0        1         2         3     4       5          6       7      8              12
    // +--------+---------+---------+-----+-------+----------+-------+------+--------------+
    // | family | dst_len | src_len | tos | table | protocol | scope | type | rtm_flags u32|
    // +--------+---------+---------+-----+-------+----------+-------+------+--------------+
    public const int RtMsgLength = 12;
    public const int RtFamilyOffset = 0;
    public const int RtDstLenOffset = 1;
    public const int RtSrcLenOffset = 2;
    public const int RtTosOffset = 3;
    public const int RtTableOffset = 4;
    public const int RtProtocolOffset = 5;
    public const int RtScopeOffset = 6;
    public const int RtTypeOffset = 7;
    public const int RtFlagsOffset = 8;
    public const byte RT_TABLE_MAIN = 254;
    public const byte RTPROT_STATIC = 4;
    public const byte RT_SCOPE_UNIVERSE = 0;
    public const byte RT_SCOPE_LINK = 253;
    public const byte RT_SCOPE_NOWHERE = 255;
    public const byte RTN_UNICAST = 1;
    public const byte RTN_LOCAL = 2;
    public const ushort RTA_DST = 1;
    public const ushort RTA_OIF = 4;
    public const ushort RTA_PRIORITY = 6;

    // struct rtattr, 4 bytes, then the payload, padded to 4:
    //  0             2              4
    // +-------------+--------------+---------- - - ----+-----+
    // | rta_len u16 | rta_type u16 | payload           | pad |
    // +-------------+--------------+---------- - - ----+-----+
    // rta_len counts header and payload, not the padding.
    public const int AttributeHeaderLength = 4;

    private readonly Span<byte> _buffer;
    private int _length;

    /// <summary>Starts a message: an nlmsghdr whose length is fixed up by <see cref="Finish"/>.</summary>
    public NetlinkMessage(Span<byte> buffer, ushort type, ushort flags, uint seq)
    {
        _buffer = buffer;
        buffer[..HeaderLength].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[HeaderTypeOffset..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[HeaderFlagsOffset..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[HeaderSeqOffset..], seq);
        _length = HeaderLength;
    }

    public static int Align(int length) => (length + 3) & ~3;

    public void IfInfo(byte family, int index, uint flags, uint change)
    {
        Span<byte> s = Reserve(IfInfoLength);
        s[IfInfoFamilyOffset] = family;
        BinaryPrimitives.WriteInt32LittleEndian(s[IfInfoIndexOffset..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(s[IfInfoFlagsOffset..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[IfInfoChangeOffset..], change);
    }

    public void IfAddr(byte family, byte prefixLength, byte flags, byte scope, int index)
    {
        Span<byte> s = Reserve(IfAddrLength);
        s[IfAddrFamilyOffset] = family;
        s[IfAddrPrefixOffset] = prefixLength;
        s[IfAddrFlagsOffset] = flags;
        s[IfAddrScopeOffset] = scope;
        BinaryPrimitives.WriteInt32LittleEndian(s[IfAddrIndexOffset..], index);
    }

    public void RtMsg(byte family, byte dstLength, byte table, byte protocol, byte scope, byte type)
    {
        Span<byte> s = Reserve(RtMsgLength);
        s[RtFamilyOffset] = family;
        s[RtDstLenOffset] = dstLength;
        s[RtTableOffset] = table;
        s[RtProtocolOffset] = protocol;
        s[RtScopeOffset] = scope;
        s[RtTypeOffset] = type;
    }

    public void Attribute(ushort type, scoped ReadOnlySpan<byte> payload)
    {
        Span<byte> s = Reserve(AttributeHeaderLength + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(AttributeHeaderLength + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        payload.CopyTo(s[AttributeHeaderLength..]);
    }

    public void AttributeU32(ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, value);
        Attribute(type, payload);
    }

    /// <summary>A NUL-terminated string attribute (IFLA_IFNAME).</summary>
    public void AttributeString(ushort type, string value)
    {
        Span<byte> payload = stackalloc byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, payload);
        payload[^1] = 0;
        Attribute(type, payload);
    }

    /// <summary>The address in network byte order: 4 bytes for IPv4, 16 for IPv6.</summary>
    public void AttributeAddress(ushort type, IPAddress address)
    {
        Span<byte> payload = stackalloc byte[16];
        address.TryWriteBytes(payload, out int written);
        Attribute(type, payload[..written]);
    }

    /// <summary>Writes nlmsg_len and returns the message's bytes.</summary>
    public readonly ReadOnlySpan<byte> Finish()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)_length);
        return _buffer[.._length];
    }

    private Span<byte> Reserve(int length)
    {
        int aligned = Align(length);
        Span<byte> s = _buffer.Slice(_length, aligned);
        s.Clear();
        _length += aligned;
        return s[..length];
    }

    /// <summary>
    /// Finds attribute <paramref name="type"/> among the rtattrs in <paramref name="attributes"/>;
    /// demands that every attribute's length fits.
    /// </summary>
    public static bool TryFindAttribute(ReadOnlySpan<byte> attributes, ushort type, out ReadOnlySpan<byte> payload)
    {
        while (attributes.Length >= AttributeHeaderLength)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            ushort attributeType = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]) & 0x3fff);
            if (length < AttributeHeaderLength || length > attributes.Length)
            {
                break;
            }
            if (attributeType == type)
            {
                payload = attributes[AttributeHeaderLength..length];
                return true;
            }
            int next = Align(length);
            if (next >= attributes.Length)
            {
                break;
            }
            attributes = attributes[next..];
        }
        payload = default;
        return false;
    }

    /// <summary>A NUL-terminated string attribute's text.</summary>
    public static string ReadString(ReadOnlySpan<byte> payload)
    {
        int end = payload.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? payload : payload[..end]);
    }
}
