using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// A network namespace this test created (<c>ip netns add</c>), with helpers to run commands in it
/// and to open sockets in it from the test process itself. Disposing it kills whatever the test
/// left running inside and deletes it. It is not a sandbox for anything else: the UAPI socket
/// directory and the filesystem stay shared with the host.
/// </summary>
internal sealed class NetNs : IAsyncDisposable
{
    internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private bool _disposed;

    private NetNs(string name) => Name = name;

    public string Name { get; }

    public string Path => $"/var/run/netns/{Name}";

    public static async Task<NetNs> CreateAsync(string name, CancellationToken cancellationToken)
    {
        if (!name.StartsWith("mt-", StringComparison.Ordinal))
        {
            throw new ArgumentException("test namespaces are named mt-…", nameof(name));
        }

        (await ChildProcess.RunAsync("ip", ["netns", "add", name], DefaultTimeout, cancellationToken)).EnsureSuccess();
        var ns = new NetNs(name);
        try
        {
            (await ns.ExecAsync(["ip", "link", "set", "lo", "up"], cancellationToken)).EnsureSuccess();
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }

        return ns;
    }

    /// <summary>Runs a command inside the namespace to completion (<c>ip netns exec NAME …</c>).</summary>
    public Task<ExecResult> ExecAsync(IEnumerable<string> arguments, CancellationToken cancellationToken, TimeSpan? timeout = null, string? stdin = null) =>
        ChildProcess.RunAsync("ip", ["netns", "exec", Name, .. arguments], timeout ?? DefaultTimeout, cancellationToken, stdin);

    /// <summary>Like <see cref="ExecAsync"/> but throws with the command's output when it fails.</summary>
    public async Task<string> CheckAsync(IEnumerable<string> arguments, CancellationToken cancellationToken, TimeSpan? timeout = null) =>
        (await ExecAsync(arguments, cancellationToken, timeout)).EnsureSuccess().Stdout;

    /// <summary>
    /// Starts a long-running process inside the namespace. <c>ip netns exec</c> execs the command in
    /// place, so the returned process id is the command's own and signals reach it directly.
    /// </summary>
    public ChildProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null) =>
        ChildProcess.Start("ip", ["netns", "exec", Name, .. arguments], environment);

    /// <summary>
    /// Creates a socket that lives in this namespace. A socket belongs to the namespace of the thread
    /// that created it for its whole life, so a dedicated thread joins the namespace (setns), creates
    /// the socket and returns to the original namespace; every later operation on the socket (bind,
    /// connect, async I/O from any thread) happens in this namespace.
    /// </summary>
    public Socket CreateSocket(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                socket = CreateSocketOnThisThread(family, type, protocol);
            }
            catch (Exception e)
            {
                error = e;
            }
        })
        {
            IsBackground = true,
            Name = $"setns {Name}",
        };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            throw new InvalidOperationException($"cannot create a socket in namespace {Name}: {error.Message}", error);
        }

        return socket!;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        // `ip netns del` does not stop processes inside; anything still there was started by this
        // test (its peers kill their own children first; this is the backstop after a crash).
        var pids = await ChildProcess.RunAsync("ip", ["netns", "pids", Name], DefaultTimeout, CancellationToken.None);
        foreach (var line in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(line, out var pid))
            {
                _ = Native.Kill(pid, Native.SigKill);
            }
        }

        var deleted = await ChildProcess.RunAsync("ip", ["netns", "del", Name], DefaultTimeout, CancellationToken.None);
        if (!deleted.Succeeded && File.Exists(Path))
        {
            throw new InvalidOperationException($"cannot delete namespace {Name}\n{deleted.Describe()}");
        }
    }

    private Socket CreateSocketOnThisThread(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        using var original = File.OpenHandle("/proc/thread-self/ns/net", FileMode.Open, FileAccess.Read);
        using var target = File.OpenHandle(Path, FileMode.Open, FileAccess.Read);
        Join(target, Name);
        try
        {
            return new Socket(family, type, protocol);
        }
        finally
        {
            // The thread ends right after this, so a failure here cannot leak a thread in the wrong
            // namespace into the pool; it still fails the call so nobody trusts the result.
            Join(original, "the original namespace");
        }
    }

    private static void Join(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string what)
    {
        if (Native.SetNs((int)handle.DangerousGetHandle(), Native.CloneNewNet) != 0)
        {
            throw new InvalidOperationException($"setns into {what} failed with errno {Marshal.GetLastPInvokeError()}");
        }
    }
}
