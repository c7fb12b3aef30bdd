using System.Runtime.InteropServices;
using System.Text;

namespace Mesh.Net.Linux;

/// <summary>
/// A Linux TUN interface (layer 3, no packet-information header): every <see cref="Read"/> returns
/// one IP packet the kernel routed into the interface, every <see cref="Write"/> injects one IP
/// packet as if it had arrived on it. This is the node agent's side of the mesh interface; it knows
/// nothing of WireGuard or of the packets' contents.
/// </summary>
/// <remarks>
/// <para>Threading: one thread may read while others write (TUN fds allow that); several readers on
/// one queue are safe but share its packets. For parallel reads, create the device with
/// <see cref="CreateMultiQueue"/> and give each reader its own <see cref="OpenQueue"/>.</para>
/// <para>Lifetime: <see cref="Dispose"/> wakes any thread blocked in <see cref="Read"/> (which then
/// returns 0), waits until no call uses the fd, closes it, and so deletes the interface (the device is
/// not persistent). Disposing the device disposes the queues opened from it.</para>
/// <para>Offloads (<see cref="Create(string, int, bool)"/> with <c>offloads: true</c>): the device is opened
/// with IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO for IPv4 and IPv6), so the kernel hands over
/// TCP super-packets of up to 64 KB with their checksums left partial, and takes them back the
/// same way. Every Read then returns, and every Write takes, a frame: a 10-byte
/// <c>virtio_net_hdr</c> followed by the packet (see <see cref="Offload.VirtioNetHeader"/>). When the
/// kernel refuses offloads the device is opened as before and <see cref="VirtioHeaders"/> is false.</para>
/// <para>Read and Write do not allocate.</para>
/// </remarks>
public sealed unsafe class TunDevice : IDisposable
{
    /// <summary>The kernel's limit on interface names: IFNAMSIZ less the terminating NUL.</summary>
    public const int MaxNameLength = Native.IFNAMSIZ - 1;

    internal const string DefaultDevicePath = "/dev/net/tun";

    private readonly int _fd;
    private readonly FdGate _gate;
    private readonly string _devicePath;
    private readonly bool _multiQueue;
    private readonly bool _vnet;
    private readonly List<TunDevice>? _queues;
    private readonly Lock _queuesLock = new();

    private TunDevice(int fd, string name, int index, int mtu, string devicePath, bool multiQueue, bool primary, bool vnet)
    {
        _vnet = vnet;
        _fd = fd;
        _gate = new FdGate();
        Name = name;
        InterfaceIndex = index;
        Mtu = mtu;
        _devicePath = devicePath;
        _multiQueue = multiQueue;
        _queues = primary && multiQueue ? [] : null;
    }

    /// <summary>The interface's name as the kernel gave it (a "%d" in the requested name is filled in).</summary>
    public string Name { get; }

    public int InterfaceIndex { get; }

    public int Mtu { get; }

    /// <summary>
    /// True when the kernel accepted offloads: reads and writes are frames (a virtio_net_hdr, then the
    /// packet) and a read may be a TCP super-packet of up to 64 KB.
    /// </summary>
    public bool VirtioHeaders => _vnet;

    /// <summary>The offloads asked of the kernel: checksum, TSO for IPv4 and IPv6 (no ECN, no UDP segmentation).</summary>
    internal const uint OffloadFlags = Native.TUN_F_CSUM | Native.TUN_F_TSO4 | Native.TUN_F_TSO6;

    /// <summary>
    /// Creates interface <paramref name="name"/> (at most 15 bytes; "mesh%d" lets the kernel pick the
    /// number), sets its MTU and brings it up. Needs CAP_NET_ADMIN.
    /// </summary>
    public static TunDevice Create(string name, int mtu = 1420) => Create(name, mtu, DefaultDevicePath, multiQueue: false);

    /// <summary>
    /// Like <see cref="Create(string, int)"/>; with <paramref name="offloads"/>, asks for virtio-net
    /// headers and TCP segmentation offload, falling back to a plain device when the kernel refuses
    /// (check <see cref="VirtioHeaders"/>).
    /// </summary>
    public static TunDevice Create(string name, int mtu, bool offloads) => Create(name, mtu, DefaultDevicePath, multiQueue: false, offloads);

    /// <summary>
    /// Like <see cref="Create(string, int)"/>, with IFF_MULTI_QUEUE: <see cref="OpenQueue"/> then adds
    /// queues, each its own fd, so several threads can read in parallel (the kernel spreads flows
    /// over the queues by hash).
    /// </summary>
    public static TunDevice CreateMultiQueue(string name, int mtu = 1420) => Create(name, mtu, DefaultDevicePath, multiQueue: true);

    internal static TunDevice Create(string name, int mtu, string devicePath, bool multiQueue, bool offloads = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 68);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mtu, 65535);
        int nameLength = Encoding.UTF8.GetByteCount(name);
        if (nameLength > MaxNameLength)
        {
            throw new ArgumentException(
                $"TUN interface name '{name}' is {nameLength} bytes long; Linux allows at most {MaxNameLength}", nameof(name));
        }

        int fd;
        string kernelName;
        bool vnet = false;
        if (offloads && TryOpenWithOffloads(name, devicePath, multiQueue, out fd, out kernelName))
        {
            vnet = true;
        }
        else
        {
            fd = OpenQueueFd(name, devicePath, multiQueue, vnet: false, out kernelName);
        }
        try
        {
            using var netlink = new RtNetlink();
            int index = netlink.GetInterfaceIndex(kernelName);
            netlink.SetMtu(index, mtu);
            netlink.SetLinkUp(index, true);
            return new TunDevice(fd, kernelName, index, mtu, devicePath, multiQueue, primary: true, vnet);
        }
        catch
        {
            _ = Native.Close(fd);
            throw;
        }
    }

    /// <summary>
    /// Attaches one more queue to a device made by <see cref="CreateMultiQueue"/>: a TunDevice with
    /// the same name, index and MTU whose Read and Write use their own fd. Disposing it detaches the
    /// queue only.
    /// </summary>
    public TunDevice OpenQueue()
    {
        if (_queues is null)
        {
            throw new InvalidOperationException(_multiQueue
                ? "open queues from the device CreateMultiQueue returned, not from a queue"
                : $"TUN device {Name} was not created with CreateMultiQueue");
        }
        lock (_queuesLock)
        {
            ObjectDisposedException.ThrowIf(_gate.IsClosed, this);
            int fd = OpenQueueFd(Name, _devicePath, multiQueue: true, _vnet, out _);
            if (_vnet && Native.Ioctl(fd, Native.TUNSETOFFLOAD, (void*)(nuint)OffloadFlags) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                _ = Native.Close(fd);
                throw new SystemCallException($"enabling offloads on a new queue of TUN device {Name}", errno);
            }
            var queue = new TunDevice(fd, Name, InterfaceIndex, Mtu, _devicePath, multiQueue: true, primary: false, _vnet);
            _queues.Add(queue);
            return queue;
        }
    }

    /// <summary>
    /// Blocks until one IP packet arrives and copies it into <paramref name="buffer"/> (a packet
    /// longer than the buffer is truncated, so give it at least <see cref="Mtu"/> bytes). Returns its
    /// length, or 0 once the device is disposed. Throws <see cref="SystemCallException"/> when the
    /// interface was deleted from outside (EBADFD).
    /// </summary>
    public int Read(Span<byte> buffer) => ReadCore(buffer, wait: true);

    /// <summary>
    /// Reads one packet if one is already queued, without waiting: returns its length, -1 when
    /// none is ready, or 0 once disposed. Lets a reader drain a burst into one batched UDP send.
    /// </summary>
    public int TryRead(Span<byte> buffer) => ReadCore(buffer, wait: false);

    private int ReadCore(Span<byte> buffer, bool wait)
    {
        if (buffer.IsEmpty)
        {
            throw new ArgumentException("the read buffer is empty", nameof(buffer));
        }
        if (!_gate.TryEnter())
        {
            return 0;
        }
        try
        {
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    nint n = Native.Read(_fd, p, (nuint)buffer.Length);
                    if (n >= 0)
                    {
                        return (int)n;
                    }
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EAGAIN)
                    {
                        if (!wait)
                        {
                            return -1;
                        }
                        if (!_gate.WaitReady(_fd, Native.POLLIN))
                        {
                            return 0;
                        }
                    }
                    else if (errno != Errno.EINTR)
                    {
                        throw new SystemCallException($"reading from TUN device {Name}", errno);
                    }
                }
            }
        }
        finally
        {
            _gate.Exit();
        }
    }

    /// <summary>
    /// Injects one IP packet. Throws <see cref="SystemCallException"/> when the kernel refuses it
    /// (EINVAL: not IPv4/IPv6; EIO: the link is down) and ObjectDisposedException after Dispose.
    /// </summary>
    public void Write(ReadOnlySpan<byte> packet)
    {
        int errno = WriteCore(packet);
        if (errno != 0)
        {
            throw new SystemCallException($"writing a {packet.Length}-byte packet to TUN device {Name}", errno);
        }
    }

    /// <summary>
    /// Like <see cref="Write"/>, but returns false instead of throwing when the kernel refuses the
    /// packet, for a data path that must not stop on one bad packet.
    /// </summary>
    public bool TryWrite(ReadOnlySpan<byte> packet) => WriteCore(packet) == 0;

    /// <summary>
    /// Writes <paramref name="header"/> and <paramref name="packet"/> as one frame (one writev), so an
    /// offloading device's virtio-net header need not sit in the packet's buffer. False when the
    /// kernel refuses it.
    /// </summary>
    public bool TryWrite(ReadOnlySpan<byte> header, ReadOnlySpan<byte> packet)
    {
        if (!_gate.TryEnter())
        {
            throw new ObjectDisposedException(nameof(TunDevice), $"TUN device {Name} is disposed");
        }
        try
        {
            fixed (byte* h = header)
            fixed (byte* p = packet)
            {
                IoVec* vectors = stackalloc IoVec[2];
                vectors[0] = new IoVec { Base = h, Length = (nuint)header.Length };
                vectors[1] = new IoVec { Base = p, Length = (nuint)packet.Length };
                while (true)
                {
                    nint n = Native.Writev(_fd, vectors, 2);
                    if (n >= 0)
                    {
                        return true;
                    }
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EAGAIN)
                    {
                        if (!_gate.WaitReady(_fd, Native.POLLOUT))
                        {
                            throw new ObjectDisposedException(nameof(TunDevice), $"TUN device {Name} is disposed");
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

    /// <summary>Closes the fd (deleting the interface once its last queue is closed), waking blocked readers.</summary>
    public void Dispose()
    {
        if (_queues is not null)
        {
            lock (_queuesLock)
            {
                foreach (TunDevice queue in _queues)
                {
                    queue.Dispose();
                }
                _queues.Clear();
            }
        }
        if (_gate.Close())
        {
            _ = Native.Close(_fd);
        }
    }

    private int WriteCore(ReadOnlySpan<byte> packet)
    {
        if (!_gate.TryEnter())
        {
            throw new ObjectDisposedException(nameof(TunDevice), $"TUN device {Name} is disposed");
        }
        try
        {
            fixed (byte* p = packet)
            {
                while (true)
                {
                    nint n = Native.Write(_fd, p, (nuint)packet.Length);
                    if (n >= 0)
                    {
                        return 0;
                    }
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EAGAIN)
                    {
                        if (!_gate.WaitReady(_fd, Native.POLLOUT))
                        {
                            throw new ObjectDisposedException(nameof(TunDevice), $"TUN device {Name} is disposed");
                        }
                    }
                    else if (errno != Errno.EINTR)
                    {
                        return errno;
                    }
                }
            }
        }
        finally
        {
            _gate.Exit();
        }
    }

    /// <summary>
    /// Opens the device with IFF_VNET_HDR and enables checksum and TSO offloads; false (nothing left
    /// open) when the kernel refuses either, so the caller opens a plain device instead.
    /// </summary>
    private static bool TryOpenWithOffloads(string name, string devicePath, bool multiQueue, out int fd, out string kernelName)
    {
        kernelName = name;
        try
        {
            fd = OpenQueueFd(name, devicePath, multiQueue, vnet: true, out kernelName);
        }
        catch (SystemCallException e) when (e.Errno == Errno.EINVAL)
        {
            fd = -1;
            return false;
        }
        if (Native.Ioctl(fd, Native.TUNSETOFFLOAD, (void*)(nuint)OffloadFlags) != 0)
        {
            _ = Native.Close(fd);
            fd = -1;
            return false;
        }
        return true;
    }

    /// <summary>Opens the clone device and attaches it to interface <paramref name="name"/> (creating it if needed).</summary>
    private static int OpenQueueFd(string name, string devicePath, bool multiQueue, bool vnet, out string kernelName)
    {
        int fd;
        byte[] path = Encoding.UTF8.GetBytes(devicePath + "\0");
        fixed (byte* p = path)
        {
            fd = Native.Open(p, Native.O_RDWR | Native.O_NONBLOCK | Native.O_CLOEXEC);
        }
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                Errno.ENOENT or Errno.ENODEV or Errno.ENXIO => new SystemCallException(
                    $"{devicePath} is missing: load the tun kernel module (modprobe tun) or, in a container, "
                    + $"give it the device (--device {devicePath}, or a hostPath/device plugin in Kubernetes); opening it failed", errno),
                Errno.EACCES or Errno.EPERM => new SystemCallException(
                    $"opening {devicePath} needs CAP_NET_ADMIN (run as root or add the capability) and access to the device", errno),
                _ => new SystemCallException($"opening {devicePath}", errno),
            };
        }

        var request = default(IfReqFlags);
        Encoding.UTF8.GetBytes(name, new Span<byte>(request.Name, MaxNameLength));
        request.Flags = (short)(Native.IFF_TUN | Native.IFF_NO_PI | (multiQueue ? Native.IFF_MULTI_QUEUE : 0) | (vnet ? Native.IFF_VNET_HDR : 0));
        if (Native.Ioctl(fd, Native.TUNSETIFF, &request) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            _ = Native.Close(fd);
            throw errno switch
            {
                Errno.EPERM or Errno.EACCES => new SystemCallException(
                    $"creating TUN device {name} needs CAP_NET_ADMIN (run as root or add the capability)", errno),
                Errno.EBUSY => new SystemCallException(
                    $"creating TUN device {name}: an interface of that name exists and is in use", errno),
                Errno.EINVAL => new SystemCallException(
                    $"creating TUN device {name}: the name is invalid, or taken by an interface of another kind"
                    + (multiQueue ? " or without multi-queue" : " or with multi-queue"), errno),
                _ => new SystemCallException($"creating TUN device {name}", errno),
            };
        }
        var kernelNameBytes = new ReadOnlySpan<byte>(request.Name, Native.IFNAMSIZ);
        int end = kernelNameBytes.IndexOf((byte)0);
        kernelName = Encoding.UTF8.GetString(end < 0 ? kernelNameBytes : kernelNameBytes[..end]);
        return fd;
    }
}
