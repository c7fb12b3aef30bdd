using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Mesh.Net.Linux;

/// <summary>
/// One dual-stack UDP socket bound to [::]:port (IPV6_V6ONLY off, so IPv4 peers arrive as
/// v4-mapped addresses), moving datagrams in batches with recvmmsg/sendmmsg, which .NET's Socket
/// does not expose. It is the node's WireGuard underlay; what the datagrams mean is not its business.
/// </summary>
/// <remarks>
/// <para>Threading: receives and sends may run on different threads at once; several threads may
/// each receive into their own <see cref="PacketBatch"/>.</para>
/// <para>Errors: a datagram the kernel will not send (unreachable, refused by a firewall, too big)
/// is dropped and not counted, never thrown: UDP may lose packets anyway. ICMP errors queued for
/// the socket do not interrupt receiving.</para>
/// <para>Lifetime: <see cref="Dispose"/> wakes a thread blocked in <see cref="ReceiveBatch"/>
/// (which returns 0), waits until no call uses the socket and closes it. Calls after that return
/// 0/false.</para>
/// <para>Offloads: <see cref="GsoEnabled"/> says whether slots may carry UDP GSO messages
/// (<see cref="PacketBatch.SetSegmentSize"/>); it turns false for good, and the message is sent
/// datagram by datagram, if the kernel refuses one (EIO: the route's device cannot checksum it).
/// <see cref="TryEnableGro"/> makes receives return coalesced datagrams
/// (<see cref="PacketBatch.GetSegmentSize"/>), so receive batches then need 64 KB slots.</para>
/// <para>No call allocates.</para>
/// </remarks>
public sealed unsafe class BatchUdpSocket : IDisposable
{
    /// <summary>Socket buffer size asked for by default: room for bursts of a few thousand packets.</summary>
    public const int DefaultSocketBufferBytes = 4 << 20;

    private readonly int _fd;
    private readonly FdGate _gate;
    private volatile bool _gso;

    /// <summary>
    /// Binds [::]:<paramref name="port"/> (0: an ephemeral port, see <see cref="LocalPort"/>) and sizes
    /// the socket buffers to <paramref name="socketBufferBytes"/> (forced past net.core.*mem_max when
    /// the process has CAP_NET_ADMIN).
    /// </summary>
    public BatchUdpSocket(int port = 0, int socketBufferBytes = DefaultSocketBufferBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(socketBufferBytes);

        _fd = Native.Socket(Native.AF_INET6, Native.SOCK_DGRAM | Native.SOCK_NONBLOCK | Native.SOCK_CLOEXEC, 0);
        if (_fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new SystemCallException(errno == Errno.EAFNOSUPPORT
                ? "opening a UDP socket: this kernel has no IPv6 (booted with ipv6.disable=1?), which the dual-stack socket needs"
                : "opening a UDP socket", errno);
        }
        try
        {
            if (Native.SetIntOption(_fd, Native.IPPROTO_IPV6, Native.IPV6_V6ONLY, 0) != 0)
            {
                throw new SystemCallException("making the UDP socket dual-stack (IPV6_V6ONLY=0)", Marshal.GetLastPInvokeError());
            }
            SetBufferSize(Native.SO_RCVBUFFORCE, Native.SO_RCVBUF, socketBufferBytes);
            SetBufferSize(Native.SO_SNDBUFFORCE, Native.SO_SNDBUF, socketBufferBytes);

            var address = new SockAddrIn6 { Family = Native.AF_INET6 };
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(&address.Port, 2), (ushort)port);
            if (Native.Bind(_fd, &address, (uint)sizeof(SockAddrIn6)) != 0)
            {
                throw new SystemCallException($"binding UDP port {port} on [::]", Marshal.GetLastPInvokeError());
            }
            uint length = (uint)sizeof(SockAddrIn6);
            if (Native.GetSockName(_fd, &address, &length) != 0)
            {
                throw new SystemCallException("reading the UDP socket's local port", Marshal.GetLastPInvokeError());
            }
            LocalPort = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(&address.Port, 2));

            // The kernel knows UDP_SEGMENT (4.18+) when it can read it back.
            int segment = 0;
            uint segmentLength = sizeof(int);
            _gso = Native.GetSockOpt(_fd, Native.SOL_UDP, Native.UDP_SEGMENT, &segment, &segmentLength) == 0;
            _gate = new FdGate();
        }
        catch
        {
            _ = Native.Close(_fd);
            throw;
        }
    }

    /// <summary>The bound port (the kernel's choice when 0 was asked for).</summary>
    public int LocalPort { get; }

    /// <summary>True while sends may carry UDP GSO messages (several same-size datagrams in one slot).</summary>
    public bool GsoEnabled => _gso;

    /// <summary>Turns UDP GSO off (for the tests of the fallback, and for callers that must not use it).</summary>
    public void DisableGso() => _gso = false;

    /// <summary>
    /// Asks the kernel for UDP GRO (5.0+): datagrams of one sender arriving as one GSO burst are
    /// received as one coalesced slot. False when the kernel refuses; receives are unchanged then.
    /// Receive batches must then have slots of 65,535 bytes or more.
    /// </summary>
    public bool TryEnableGro()
    {
        if (!_gate.TryEnter())
        {
            return false;
        }
        try
        {
            return Native.SetIntOption(_fd, Native.SOL_UDP, Native.UDP_GRO, 1) == 0;
        }
        finally
        {
            _gate.Exit();
        }
    }

    /// <summary>
    /// Blocks until at least one datagram arrives, then fills as many slots of
    /// <paramref name="batch"/> as are ready (each slot's Length and Endpoint set to the datagram and
    /// its sender; a datagram longer than the buffer is truncated) and returns their number. Returns
    /// 0 once the socket is disposed.
    /// </summary>
    public int ReceiveBatch(PacketBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (!_gate.TryEnter())
        {
            return 0;
        }
        try
        {
            while (true)
            {
                MMsgHdr* messages = batch.PrepareReceive(batch.Count);
                int received = Native.RecvMMsg(_fd, messages, (uint)batch.Count, 0, null);
                if (received > 0)
                {
                    batch.CompleteReceive(received);
                    return received;
                }
                int errno = received == 0 ? Errno.EAGAIN : Marshal.GetLastPInvokeError();
                switch (errno)
                {
                    case Errno.EAGAIN:
                        if (!_gate.WaitReady(_fd, Native.POLLIN))
                        {
                            return 0;
                        }
                        break;
                    case Errno.EINTR:
                    // An ICMP error for an earlier send, reported once; the next call receives normally.
                    case Errno.ECONNREFUSED:
                    case Errno.EHOSTUNREACH:
                    case Errno.ENETUNREACH:
                    case Errno.EHOSTDOWN:
                    case Errno.ENETDOWN:
                    case Errno.EMSGSIZE:
                        break;
                    default:
                        throw new SystemCallException($"receiving on UDP port {LocalPort}", errno);
                }
            }
        }
        finally
        {
            _gate.Exit();
            GC.KeepAlive(batch);
        }
    }

    /// <summary>
    /// Sends slots 0..<paramref name="count"/>-1 of <paramref name="batch"/>, each its Length bytes to
    /// its Endpoint. Waits while the socket buffer is full. Returns how many the kernel accepted;
    /// datagrams it refused are skipped. 0 after Dispose.
    /// </summary>
    public int SendBatch(PacketBatch batch, int count) => SendBatch(batch, count, out _);

    /// <summary>
    /// As <see cref="SendBatch(PacketBatch, int)"/>; <paramref name="bytes"/> is the payload the kernel
    /// accepted. The count is of datagrams: a GSO slot counts as the datagrams it carries.
    /// </summary>
    public int SendBatch(PacketBatch batch, int count, out long bytes)
    {
        bytes = 0;
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, batch.Count);
        if (count == 0 || !_gate.TryEnter())
        {
            return 0;
        }
        try
        {
            MMsgHdr* messages = batch.PrepareSend(count);
            int next = 0;
            int sent = 0;
            while (next < count)
            {
                int n = Native.SendMMsg(_fd, messages + next, (uint)(count - next), 0);
                if (n > 0)
                {
                    for (int i = next; i < next + n; i++)
                    {
                        bytes += messages[i].Length;
                        sent += batch.DatagramsIn(i);
                    }

                    next += n;
                    continue;
                }
                int errno = n == 0 ? Errno.EAGAIN : Marshal.GetLastPInvokeError();
                if (errno == Errno.EAGAIN)
                {
                    if (!_gate.WaitReady(_fd, Native.POLLOUT))
                    {
                        break;
                    }
                }
                else if (errno == Errno.EIO && batch.DatagramsIn(next) > 1)
                {
                    // The kernel cannot segment here (no checksum offload on the route's device):
                    // give up GSO for good and send this slot's datagrams one by one.
                    _gso = false;
                    sent += SendSegments(batch, next, ref bytes);
                    next++;
                }
                else if (errno != Errno.EINTR)
                {
                    next++; // the kernel refused datagram `next` (ENETUNREACH, EACCES, EMSGSIZE, …): drop it
                }
            }
            return sent;
        }
        finally
        {
            _gate.Exit();
            GC.KeepAlive(batch);
        }
    }

    /// <summary>
    /// Sends one datagram; false if the kernel refused it (unreachable, too big, …) or the socket is
    /// disposed. Waits while the socket buffer is full.
    /// </summary>
    public bool Send(ReadOnlySpan<byte> datagram, in UdpEndpoint destination)
    {
        if (!_gate.TryEnter())
        {
            return false;
        }
        try
        {
            SockAddrIn6 address;
            destination.WriteTo(&address);
            fixed (byte* p = datagram)
            {
                while (true)
                {
                    nint n = Native.SendTo(_fd, p, (nuint)datagram.Length, 0, &address, (uint)sizeof(SockAddrIn6));
                    if (n >= 0)
                    {
                        return true;
                    }
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EAGAIN)
                    {
                        if (!_gate.WaitReady(_fd, Native.POLLOUT))
                        {
                            return false;
                        }
                    }
                    else if (errno != Errno.EINTR)
                    {
                        return false;
                    }
                }
            }
        }
        finally
        {
            _gate.Exit();
        }
    }

    /// <summary>Sends a GSO slot as separate datagrams (the fallback when the kernel refuses UDP GSO).</summary>
    private int SendSegments(PacketBatch batch, int index, ref long bytes)
    {
        int length = batch.GetLength(index);
        int size = batch.GetSegmentSize(index);
        var destination = batch.GetEndpoint(index);
        SockAddrIn6 address;
        destination.WriteTo(&address);
        byte* data = batch.BufferPointer(index);
        int sent = 0;
        for (int offset = 0; offset < length; offset += size)
        {
            int chunk = Math.Min(size, length - offset);
            while (true)
            {
                nint n = Native.SendTo(_fd, data + offset, (nuint)chunk, 0, &address, (uint)sizeof(SockAddrIn6));
                if (n >= 0)
                {
                    sent++;
                    bytes += chunk;
                    break;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EAGAIN)
                {
                    if (!_gate.WaitReady(_fd, Native.POLLOUT))
                    {
                        return sent;
                    }
                }
                else if (errno != Errno.EINTR)
                {
                    break;
                }
            }
        }
        return sent;
    }

    public void Dispose()
    {
        if (_gate.Close())
        {
            _ = Native.Close(_fd);
        }
    }

    /// <summary>The FORCE variant ignores net.core.{r,w}mem_max but needs CAP_NET_ADMIN; fall back to the capped one.</summary>
    private void SetBufferSize(int forceOption, int option, int bytes)
    {
        if (Native.SetIntOption(_fd, Native.SOL_SOCKET, forceOption, bytes) != 0)
        {
            _ = Native.SetIntOption(_fd, Native.SOL_SOCKET, option, bytes);
        }
    }
}
