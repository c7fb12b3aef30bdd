namespace Mesh.Net.Uapi;

/// <summary>
/// A refused UAPI request. <see cref="Errno"/> is the positive errno.h value; the reply carries it
/// negated (<c>errno=-22</c>), which is what wireguard-go sends and what wg(8) turns back into
/// <c>strerror</c>. The message is logged and must not contain key material.
/// </summary>
public sealed class UapiException : Exception
{
    public UapiException(int errno, string message)
        : base(message)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(errno);
        Errno = errno;
    }

    /// <summary>The positive errno.h value.</summary>
    public int Errno { get; }
}

/// <summary>
/// The Linux errno values wireguard-go replies with (its <c>ipc/uapi_unix.go</c> constants), plus
/// <see cref="MessageTooLong"/> for our request size limit.
/// </summary>
public static class UapiErrno
{
    /// <summary>EIO: reading the request failed, or a line was longer than the line limit.</summary>
    public const int Io = 5;

    /// <summary>EINVAL: an unknown key, or a value that does not parse.</summary>
    public const int Invalid = 22;

    /// <summary>ENOANO: anything the device threw that was not a <see cref="UapiException"/>.</summary>
    public const int Unknown = 55;

    /// <summary>EPROTO: a line without <c>=</c>.</summary>
    public const int Protocol = 71;

    /// <summary>EMSGSIZE: the request was larger than the request size limit (ours; wireguard-go has none).</summary>
    public const int MessageTooLong = 90;

    /// <summary>EADDRINUSE: the listen port or fwmark could not be applied to the socket.</summary>
    public const int AddressInUse = 98;
}
