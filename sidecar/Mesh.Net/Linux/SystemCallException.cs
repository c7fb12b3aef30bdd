namespace Mesh.Net.Linux;

/// <summary>
/// A Linux system call failed. The message names what was being done and ends with the C library's
/// text and the errno name, e.g. "creating TUN device lio0: Device or resource busy (EBUSY)".
/// </summary>
public class SystemCallException : IOException
{
    public SystemCallException(string operation, int errno)
        : this($"{operation}: {Linux.Errno.Describe(errno)}", errno, inner: null)
    {
    }

    protected SystemCallException(string message, int errno, Exception? inner)
        : base(message, inner)
    {
        Errno = errno;
        HResult = errno;
    }

    /// <summary>The positive errno value (EEXIST = 17, …).</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name ("EEXIST").</summary>
    public string ErrnoName => Linux.Errno.Name(Errno);
}

/// <summary>
/// The kernel refused a NETLINK_ROUTE request. The message names the operation and its arguments,
/// e.g. "adding address 100.64.0.1/32 to mtun0: File exists (EEXIST)", followed by the kernel's
/// extended-ACK text when it sent one.
/// </summary>
public sealed class NetlinkException : SystemCallException
{
    public NetlinkException(string operation, int errno, string? kernelMessage = null)
        : base(Format(operation, errno, kernelMessage), errno, inner: null)
    {
        KernelMessage = kernelMessage;
    }

    /// <summary>The kernel's extended-ACK message (NLMSGERR_ATTR_MSG), if it sent one.</summary>
    public string? KernelMessage { get; }

    private static string Format(string operation, int errno, string? kernelMessage) =>
        string.IsNullOrEmpty(kernelMessage)
            ? $"{operation}: {Linux.Errno.Describe(errno)}"
            : $"{operation}: {Linux.Errno.Describe(errno)}; kernel says: {kernelMessage}";
}
