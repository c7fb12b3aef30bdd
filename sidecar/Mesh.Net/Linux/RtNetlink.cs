using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using M = Mesh.Net.Linux.NetlinkMessage;

namespace Mesh.Net.Linux;

/// <summary>
/// A NETLINK_ROUTE socket that configures links, addresses and routes, the way `ip link|addr|route`
/// would, without starting a process. Not a general netlink library: it speaks only the handful of
/// requests the node agent needs, one at a time, each waiting for the kernel's ACK.
/// </summary>
/// <remarks>
/// Thread-safe (requests are serialized). Works in the network namespace of the thread that
/// constructed it. Every failure throws <see cref="NetlinkException"/> whose message names the
/// operation and its arguments. A control-path type: it allocates freely.
/// </remarks>
public sealed unsafe partial class RtNetlink : IDisposable
{
    private const int ReceiveBufferLength = 64 * 1024;
    private const int RequestBufferLength = 512;
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LocalAddressTimeout = TimeSpan.FromSeconds(2);

    private readonly Lock _lock = new();
    private readonly byte[] _request = new byte[RequestBufferLength];
    private readonly byte[] _receive = new byte[ReceiveBufferLength];
    private byte[] _reply = [];
    private int _replyLength;
    private string? _kernelMessage;
    private int _fd;
    private uint _seq;

    public RtNetlink()
    {
        _fd = Native.Socket(Native.AF_NETLINK, Native.SOCK_RAW | Native.SOCK_CLOEXEC, Native.NETLINK_ROUTE);
        if (_fd < 0)
        {
            throw new NetlinkException("opening a NETLINK_ROUTE socket", Marshal.GetLastPInvokeError());
        }
        try
        {
            var address = new SockAddrNl { Family = Native.AF_NETLINK };
            if (Native.Bind(_fd, &address, (uint)sizeof(SockAddrNl)) != 0)
            {
                throw new NetlinkException("binding the NETLINK_ROUTE socket", Marshal.GetLastPInvokeError());
            }
            // Best effort: errors come back with the kernel's reason (EXT_ACK) and without our request echoed (CAP_ACK).
            _ = Native.SetIntOption(_fd, Native.SOL_NETLINK, Native.NETLINK_EXT_ACK, 1);
            _ = Native.SetIntOption(_fd, Native.SOL_NETLINK, Native.NETLINK_CAP_ACK, 1);
            // A kernel always answers; the timeout only turns a bug into an exception instead of a hang.
            var timeout = new TimeVal { Seconds = (long)ReplyTimeout.TotalSeconds };
            _ = Native.SetSockOpt(_fd, Native.SOL_SOCKET, Native.SO_RCVTIMEO, &timeout, (uint)sizeof(TimeVal));
            _seq = (uint)Environment.TickCount;
        }
        catch
        {
            _ = Native.Close(_fd);
            throw;
        }
    }

    /// <summary>The index of interface <paramref name="name"/>; NetlinkException ENODEV if there is none.</summary>
    public int GetInterfaceIndex(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_lock)
        {
            var m = new M(_request, M.RTM_GETLINK, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
            m.IfInfo(Native.AF_UNSPEC, 0, 0, 0);
            m.AttributeString(M.IFLA_IFNAME, name);
            int errno = TransactLocked(m.Finish());
            if (errno != 0)
            {
                throw new NetlinkException($"looking up interface {name}", errno, _kernelMessage);
            }
            return ReadReplyIndexLocked($"looking up interface {name}");
        }
    }

    /// <summary>The name of interface <paramref name="ifindex"/>; NetlinkException ENODEV if there is none.</summary>
    public string GetInterfaceName(int ifindex)
    {
        lock (_lock)
        {
            var m = new M(_request, M.RTM_GETLINK, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
            m.IfInfo(Native.AF_UNSPEC, ifindex, 0, 0);
            string operation = $"looking up interface index {ifindex.ToString(CultureInfo.InvariantCulture)}";
            int errno = TransactLocked(m.Finish());
            if (errno != 0)
            {
                throw new NetlinkException(operation, errno, _kernelMessage);
            }
            ReadOnlySpan<byte> reply = _reply.AsSpan(0, _replyLength);
            if (reply.Length < M.HeaderLength + M.IfInfoLength
                || !M.TryFindAttribute(reply[(M.HeaderLength + M.IfInfoLength)..], M.IFLA_IFNAME, out var name))
            {
                throw new NetlinkException(operation + " (the kernel's reply carries no name)", Errno.EINVAL);
            }
            return M.ReadString(name);
        }
    }

    public void SetLinkUp(int ifindex, bool up)
    {
        int errno;
        lock (_lock)
        {
            var m = new M(_request, M.RTM_NEWLINK, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
            m.IfInfo(Native.AF_UNSPEC, ifindex, up ? M.IFF_UP : 0, M.IFF_UP);
            errno = TransactLocked(m.Finish());
        }
        ThrowIfFailed(errno, () => $"setting {Describe(ifindex)} {(up ? "up" : "down")}");
    }

    public void SetMtu(int ifindex, int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mtu);
        int errno;
        lock (_lock)
        {
            var m = new M(_request, M.RTM_NEWLINK, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
            m.IfInfo(Native.AF_UNSPEC, ifindex, 0, 0);
            m.AttributeU32(M.IFLA_MTU, (uint)mtu);
            errno = TransactLocked(m.Finish());
        }
        ThrowIfFailed(errno, () => $"setting the MTU of {Describe(ifindex)} to {mtu}");
    }

    /// <summary>Deletes a link (RTM_DELLINK); a TUN device goes away by closing its last fd instead.</summary>
    public void DeleteLink(int ifindex)
    {
        string name = Describe(ifindex);
        int errno;
        lock (_lock)
        {
            var m = new M(_request, M.RTM_DELLINK, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
            m.IfInfo(Native.AF_UNSPEC, ifindex, 0, 0);
            errno = TransactLocked(m.Finish());
        }
        ThrowIfFailed(errno, () => $"deleting link {name}");
    }

    /// <summary>
    /// Adds <paramref name="address"/>/<paramref name="prefixLength"/> to the interface (exclusive:
    /// an existing identical address is EEXIST). IPv6 addresses skip duplicate address detection
    /// (IFA_F_NODAD) so they are usable at once.
    /// </summary>
    public void AddAddress(int ifindex, IPAddress address, int prefixLength) =>
        ChangeAddress(add: true, ifindex, address, prefixLength);

    /// <summary>Removes an address (EADDRNOTAVAIL if the interface does not have it).</summary>
    public void DeleteAddress(int ifindex, IPAddress address, int prefixLength) =>
        ChangeAddress(add: false, ifindex, address, prefixLength);

    /// <summary>
    /// Adds or replaces the route to <paramref name="destination"/>/<paramref name="prefixLength"/>
    /// through the interface in the main table (NLM_F_CREATE|NLM_F_REPLACE: adding it again is not an
    /// error; a route with the same prefix and metric through another interface is taken over).
    /// Metric 0 means the kernel's default (0 for IPv4, 1024 for IPv6).
    /// </summary>
    public void AddRoute(int ifindex, IPAddress destination, int prefixLength, int metric = 0) =>
        ChangeRoute(add: true, ifindex, destination, prefixLength, metric);

    /// <summary>Deletes that route (ESRCH if there is none). Metric 0 matches any metric.</summary>
    public void DeleteRoute(int ifindex, IPAddress destination, int prefixLength, int metric = 0) =>
        ChangeRoute(add: false, ifindex, destination, prefixLength, metric);

    public void Dispose()
    {
        lock (_lock)
        {
            if (_fd >= 0)
            {
                _ = Native.Close(_fd);
                _fd = -1;
            }
        }
    }

    private void ChangeAddress(bool add, int ifindex, IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        byte family = Family(address, prefixLength);
        bool v6 = family == Native.AF_INET6;
        int errno;
        lock (_lock)
        {
            ushort flags = add
                ? (ushort)(M.NLM_F_REQUEST | M.NLM_F_ACK | M.NLM_F_CREATE | M.NLM_F_EXCL)
                : (ushort)(M.NLM_F_REQUEST | M.NLM_F_ACK);
            var m = new M(_request, add ? M.RTM_NEWADDR : M.RTM_DELADDR, flags, ++_seq);
            byte addressFlags = v6 && add ? M.IFA_F_NODAD : (byte)0;
            m.IfAddr(family, (byte)prefixLength, addressFlags, M.RT_SCOPE_UNIVERSE, ifindex);
            m.AttributeAddress(M.IFA_LOCAL, address);
            m.AttributeAddress(M.IFA_ADDRESS, address);
            if (addressFlags != 0)
            {
                m.AttributeU32(M.IFA_FLAGS, addressFlags);
            }
            errno = TransactLocked(m.Finish());
        }
        ThrowIfFailed(errno, () => add
            ? $"adding address {Cidr(address, prefixLength)} to {Describe(ifindex)}"
            : $"deleting address {Cidr(address, prefixLength)} from {Describe(ifindex)}");
        if (add && v6)
        {
            WaitUntilLocal(ifindex, address);
        }
    }

    /// <summary>
    /// The kernel ACKs a new IPv6 address before it can receive: even with IFA_F_NODAD, the address
    /// leaves the tentative state and gets its local route in a workqueue item a moment later, and
    /// until then packets to it are dropped (Ip6InAddrErrors). So wait, briefly, until a route lookup
    /// for it says "local". DAD does not start on a link that is down or has no carrier; then there
    /// is nothing to wait for.
    /// </summary>
    private void WaitUntilLocal(int ifindex, IPAddress address)
    {
        lock (_lock)
        {
            var link = new M(_request, M.RTM_GETLINK, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
            link.IfInfo(Native.AF_UNSPEC, ifindex, 0, 0);
            if (TransactLocked(link.Finish()) != 0 || _replyLength < M.HeaderLength + M.IfInfoLength)
            {
                return;
            }
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(_reply.AsSpan(M.HeaderLength + M.IfInfoFlagsOffset));
            if ((flags & (M.IFF_UP | M.IFF_LOWER_UP)) != (M.IFF_UP | M.IFF_LOWER_UP))
            {
                return;
            }
            long deadline = Environment.TickCount64 + (long)LocalAddressTimeout.TotalMilliseconds;
            var spin = new SpinWait();
            while (Environment.TickCount64 < deadline)
            {
                var m = new M(_request, M.RTM_GETROUTE, M.NLM_F_REQUEST | M.NLM_F_ACK, ++_seq);
                m.RtMsg(Native.AF_INET6, 128, 0, 0, 0, 0);
                m.AttributeAddress(M.RTA_DST, address);
                if (TransactLocked(m.Finish()) == 0 && _replyLength >= M.HeaderLength + M.RtMsgLength
                    && _reply[M.HeaderLength + M.RtTypeOffset] == M.RTN_LOCAL)
                {
                    return;
                }
                spin.SpinOnce(sleep1Threshold: 20);
            }
        }
    }

    private void ChangeRoute(bool add, int ifindex, IPAddress destination, int prefixLength, int metric)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(metric);
        byte family = Family(destination, prefixLength);
        int errno;
        lock (_lock)
        {
            ushort flags = add
                ? (ushort)(M.NLM_F_REQUEST | M.NLM_F_ACK | M.NLM_F_CREATE | M.NLM_F_REPLACE)
                : (ushort)(M.NLM_F_REQUEST | M.NLM_F_ACK);
            var m = new M(_request, add ? M.RTM_NEWROUTE : M.RTM_DELROUTE, flags, ++_seq);
            // As `ip route` does: a gatewayless IPv4 route is link-scoped, IPv6 routes are universe;
            // a delete matches any scope.
            byte scope = !add ? M.RT_SCOPE_NOWHERE
                : family == Native.AF_INET6 ? M.RT_SCOPE_UNIVERSE : M.RT_SCOPE_LINK;
            m.RtMsg(family, (byte)prefixLength, M.RT_TABLE_MAIN, M.RTPROT_STATIC, scope, M.RTN_UNICAST);
            m.AttributeAddress(M.RTA_DST, Network(destination, prefixLength));
            m.AttributeU32(M.RTA_OIF, (uint)ifindex);
            if (metric != 0)
            {
                m.AttributeU32(M.RTA_PRIORITY, (uint)metric);
            }
            errno = TransactLocked(m.Finish());
        }
        string metricText = metric != 0 ? $" metric {metric}" : "";
        ThrowIfFailed(errno, () => add
            ? $"adding route {Cidr(Network(destination, prefixLength), prefixLength)} dev {Describe(ifindex)}{metricText}"
            : $"deleting route {Cidr(Network(destination, prefixLength), prefixLength)} dev {Describe(ifindex)}{metricText}");
    }

    private void ThrowIfFailed(int errno, Func<string> operation)
    {
        if (errno != 0)
        {
            string? kernelMessage = _kernelMessage;
            throw new NetlinkException(operation(), errno, kernelMessage);
        }
    }

    /// <summary>"mtun0", or "ifindex 7" when the name cannot be found (the message must still be built).</summary>
    private string Describe(int ifindex)
    {
        try
        {
            return GetInterfaceName(ifindex);
        }
        catch (NetlinkException)
        {
            return "ifindex " + ifindex.ToString(CultureInfo.InvariantCulture);
        }
    }

    private static string Cidr(IPAddress address, int prefixLength) =>
        $"{address}/{prefixLength.ToString(CultureInfo.InvariantCulture)}";

    private static byte Family(IPAddress address, int prefixLength)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, 32);
            return Native.AF_INET;
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, 128);
            return Native.AF_INET6;
        }
        throw new ArgumentException($"{address} is neither IPv4 nor IPv6", nameof(address));
    }

    /// <summary>The address with its host bits cleared: the kernel refuses a route whose destination has them set.</summary>
    private static IPAddress Network(IPAddress address, int prefixLength)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        bytes = bytes[..length];
        for (int bit = prefixLength; bit < length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }
        return new IPAddress(bytes);
    }

    private int ReadReplyIndexLocked(string operation)
    {
        if (_replyLength < M.HeaderLength + M.IfInfoLength)
        {
            throw new NetlinkException(operation + " (the kernel sent no link)", Errno.EINVAL);
        }
        return BinaryPrimitives.ReadInt32LittleEndian(_reply.AsSpan(M.HeaderLength + M.IfInfoIndexOffset));
    }

    private delegate void MessageHandler(ReadOnlySpan<byte> message);

    /// <summary>
    /// Sends one request and reads until its ACK or error; keeps the first data reply in _reply.
    /// Returns 0 or the positive errno.
    /// </summary>
    private int TransactLocked(ReadOnlySpan<byte> request)
    {
        _replyLength = 0;
        return ExchangeLocked(request, message =>
        {
            if (_replyLength == 0)
            {
                if (_reply.Length < message.Length)
                {
                    _reply = new byte[message.Length];
                }
                message.CopyTo(_reply);
                _replyLength = message.Length;
            }
        });
    }

    /// <summary>
    /// Sends one request and reads the kernel's answer to it: every data message goes to
    /// <paramref name="handler"/>; an ACK or error, or NLMSG_DONE (the end of a dump), ends it.
    /// Returns 0 or the positive errno.
    /// </summary>
    private int ExchangeLocked(ReadOnlySpan<byte> request, MessageHandler handler)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        uint seq = BinaryPrimitives.ReadUInt32LittleEndian(request[M.HeaderSeqOffset..]);
        _kernelMessage = null;
        fixed (byte* p = request)
        {
            while (Native.Send(_fd, p, (nuint)request.Length, 0) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                {
                    return errno;
                }
            }
        }
        fixed (byte* buffer = _receive)
        {
            while (true)
            {
                nint received = Native.Recv(_fd, buffer, (nuint)_receive.Length, 0);
                if (received < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }
                    return errno == Errno.EAGAIN ? Errno.ETIMEDOUT : errno;
                }
                ReadOnlySpan<byte> datagram = _receive.AsSpan(0, (int)received);
                while (datagram.Length >= M.HeaderLength)
                {
                    int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram);
                    if (length < M.HeaderLength || length > datagram.Length)
                    {
                        break;
                    }
                    ReadOnlySpan<byte> message = datagram[..length];
                    datagram = datagram[Math.Min(M.Align(length), datagram.Length)..];
                    if (BinaryPrimitives.ReadUInt32LittleEndian(message[M.HeaderSeqOffset..]) != seq)
                    {
                        continue; // a late answer to an earlier request
                    }
                    ushort type = BinaryPrimitives.ReadUInt16LittleEndian(message[M.HeaderTypeOffset..]);
                    if (type == M.NLMSG_ERROR)
                    {
                        return ParseAck(message);
                    }
                    if (type == M.NLMSG_DONE)
                    {
                        return 0;
                    }
                    handler(message);
                }
            }
        }
    }

    private int ParseAck(ReadOnlySpan<byte> message)
    {
        if (message.Length < M.ErrorRequestOffset)
        {
            return Errno.EINVAL;
        }
        int error = -BinaryPrimitives.ReadInt32LittleEndian(message[M.ErrorCodeOffset..]);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(message[M.HeaderFlagsOffset..]);
        if (error != 0 && (flags & M.NLM_F_ACK_TLVS) != 0 && message.Length >= M.ErrorRequestOffset + M.HeaderLength)
        {
            // The echoed request: only its header when capped, else the whole message.
            int echoed = (flags & M.NLM_F_CAPPED) != 0
                ? M.HeaderLength
                : (int)BinaryPrimitives.ReadUInt32LittleEndian(message[M.ErrorRequestOffset..]);
            int attributes = M.ErrorRequestOffset + M.Align(echoed);
            if (attributes < message.Length
                && M.TryFindAttribute(message[attributes..], M.NLMSGERR_ATTR_MSG, out var text))
            {
                _kernelMessage = M.ReadString(text);
            }
        }
        return error;
    }
}
