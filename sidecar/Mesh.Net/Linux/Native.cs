using System.Runtime.InteropServices;

namespace Mesh.Net.Linux;

// The libc entry points and constants the Linux I/O primitives use, in one place. Values are the
// x86_64/arm64 Linux ABI (asm-generic); every call sets errno, read with Marshal.GetLastPInvokeError.
// Arguments are blittable (pointers, integers), so no call marshals or allocates.
internal static unsafe partial class Native
{
    private const string LibC = "libc";

    // open(2) flags.
    public const int O_RDWR = 0x2;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    // socket(2).
    public const int AF_UNSPEC = 0;
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int AF_NETLINK = 16;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_RAW = 3;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int NETLINK_ROUTE = 0;

    // setsockopt(2) levels and options.
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_RCVTIMEO = 20;
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;
    public const int IPPROTO_IPV6 = 41;
    public const int IPV6_V6ONLY = 26;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;

    // poll(2).
    public const short POLLIN = 0x1;
    public const short POLLOUT = 0x4;

    // eventfd(2).
    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    // TUN driver, <linux/if_tun.h>: TUNSETIFF = _IOW('T', 202, int).
    public const ulong TUNSETIFF = 0x400454ca;
    public const short IFF_TUN = 0x0001;
    public const short IFF_NO_PI = 0x1000;
    public const short IFF_MULTI_QUEUE = 0x0100;
    public const short IFF_VNET_HDR = 0x4000;

    // TUNSETOFFLOAD = _IOW('T', 208, unsigned int), TUNSETVNETHDRSZ = _IOW('T', 216, int); offload bits.
    public const ulong TUNSETOFFLOAD = 0x400454d0;
    public const ulong TUNSETVNETHDRSZ = 0x400454d8;
    public const uint TUN_F_CSUM = 0x01;
    public const uint TUN_F_TSO4 = 0x02;
    public const uint TUN_F_TSO6 = 0x04;

    // UDP segmentation and receive offloads, <linux/udp.h>.
    public const int SOL_UDP = 17;
    public const int UDP_SEGMENT = 103;
    public const int UDP_GRO = 104;
    public const int IFNAMSIZ = 16;

    [LibraryImport(LibC, EntryPoint = "open", SetLastError = true)]
    public static partial int Open(byte* path, int flags);

    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport(LibC, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport(LibC, EntryPoint = "writev", SetLastError = true)]
    public static partial nint Writev(int fd, IoVec* vectors, int count);

    [LibraryImport(LibC, EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport(LibC, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(LibC, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* argument);

    [LibraryImport(LibC, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport(LibC, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initialValue, int flags);

    [LibraryImport(LibC, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(LibC, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(LibC, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* address, uint length);

    [LibraryImport(LibC, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, void* address, uint* length);

    [LibraryImport(LibC, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(LibC, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(LibC, EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(int fd, byte* buffer, nuint length, int flags, void* address, uint addressLength);

    [LibraryImport(LibC, EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport(LibC, EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int RecvMMsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    // unshare(2): gives the calling thread a network namespace of its own (tests isolate themselves so).
    public const int CLONE_NEWNET = 0x40000000;

    [LibraryImport(LibC, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    [LibraryImport(LibC, EntryPoint = "gettid")]
    public static partial int GetTid();

    public static int SetIntOption(int fd, int level, int name, int value) =>
        SetSockOpt(fd, level, name, &value, sizeof(int));
}

/// <summary><c>struct pollfd</c>: 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}

/// <summary><c>struct iovec</c>: 16 bytes on 64-bit.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    public byte* Base;
    public nuint Length;
}

/// <summary><c>struct msghdr</c>: 56 bytes on 64-bit (4 bytes of padding after NameLength and after Flags).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public IoVec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}

/// <summary><c>struct mmsghdr</c>: 64 bytes on 64-bit; Length is what the kernel sent or received.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MMsgHdr
{
    public MsgHdr Header;
    public uint Length;
}

/// <summary><c>struct sockaddr_in6</c>: 28 bytes; Port and FlowInfo in network byte order.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockAddrIn6
{
    public ushort Family;
    public ushort Port;
    public uint FlowInfo;
    public fixed byte Address[16];
    public uint ScopeId;
}

/// <summary><c>struct sockaddr_in</c>: 16 bytes; Port and Address in network byte order.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockAddrIn
{
    public ushort Family;
    public ushort Port;
    public fixed byte Address[4];
    public fixed byte Zero[8];
}

/// <summary><c>struct sockaddr_nl</c>: 12 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockAddrNl
{
    public ushort Family;
    public ushort Pad;
    public uint PortId;
    public uint Groups;
}

/// <summary><c>struct ifreq</c> as TUNSETIFF uses it: a 16-byte name, then the flags in a 24-byte union (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 40)]
internal unsafe struct IfReqFlags
{
    public fixed byte Name[Native.IFNAMSIZ];
    public short Flags;
}

/// <summary><c>struct cmsghdr</c>: 16 bytes on 64-bit, then the data (CMSG_DATA) aligned to 8.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CMsgHdr
{
    public nuint Length;
    public int Level;
    public int Type;
}

/// <summary><c>struct timeval</c>: 16 bytes on 64-bit.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TimeVal
{
    public long Seconds;
    public long Microseconds;
}
