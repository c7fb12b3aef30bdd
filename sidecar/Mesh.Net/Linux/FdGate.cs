using System.Runtime.InteropServices;

namespace Mesh.Net.Linux;

/// <summary>
/// Lets Dispose unblock threads waiting on a non-blocking file descriptor, and close that descriptor
/// only once no thread uses it any more.
/// </summary>
/// <remarks>
/// Closing an fd under a thread blocked in read(2) does not wake it on Linux, and closing it under a
/// thread about to call read(2) races with the number's reuse by the next open(2). So every I/O call
/// brackets its work with <see cref="TryEnter"/>/<see cref="Exit"/>, blocks only in
/// <see cref="WaitReady"/> (a poll(2) on the fd and an eventfd), and <see cref="Close"/> marks the
/// gate closed, signals the eventfd (it stays readable, so every waiter wakes), waits until the
/// users have left and only then lets the owner close its fd. Users never block anywhere but in the
/// poll, so the wait is short.
/// </remarks>
internal sealed unsafe class FdGate
{
    private readonly int _eventFd;
    private int _users;
    private int _closed;

    public FdGate()
    {
        _eventFd = Native.EventFd(0, Native.EFD_CLOEXEC | Native.EFD_NONBLOCK);
        if (_eventFd < 0)
        {
            throw new SystemCallException("creating an eventfd", Marshal.GetLastPInvokeError());
        }
    }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Registers a user; false (and nothing to undo) once the gate is closed.</summary>
    public bool TryEnter()
    {
        Interlocked.Increment(ref _users);
        if (Volatile.Read(ref _closed) != 0)
        {
            Interlocked.Decrement(ref _users);
            return false;
        }
        return true;
    }

    public void Exit() => Interlocked.Decrement(ref _users);

    /// <summary>
    /// Blocks until <paramref name="fd"/> reports one of <paramref name="events"/> (or an error or
    /// hang-up, which the caller's next syscall then reports). False when the gate was closed.
    /// </summary>
    public bool WaitReady(int fd, short events)
    {
        PollFd* fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = fd, Events = events };
        fds[1] = new PollFd { Fd = _eventFd, Events = Native.POLLIN };
        while (true)
        {
            fds[0].Revents = 0;
            fds[1].Revents = 0;
            int ready = Native.Poll(fds, 2, -1);
            if (ready < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                {
                    continue;
                }
                throw new SystemCallException("waiting in poll", errno);
            }
            if (fds[1].Revents != 0 || Volatile.Read(ref _closed) != 0)
            {
                return false;
            }
            if (fds[0].Revents != 0)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// Closes the gate, wakes every waiter and returns once no user is left; true for the call
    /// that closed it (which then owns closing the fd), false if already closed.
    /// </summary>
    public bool Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return false;
        }
        ulong one = 1;
        _ = Native.Write(_eventFd, (byte*)&one, sizeof(ulong));
        var spin = new SpinWait();
        while (Volatile.Read(ref _users) != 0)
        {
            spin.SpinOnce();
        }
        _ = Native.Close(_eventFd);
        return true;
    }
}
