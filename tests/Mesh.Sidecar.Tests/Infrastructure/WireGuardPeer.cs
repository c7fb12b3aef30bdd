using System.Text;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// One running WireGuard interface inside a test namespace, whatever implements it. Both
/// implementations serve the cross-platform UAPI socket at <c>/var/run/wireguard/NAME.sock</c>, so
/// <c>wg show</c>/<c>wg set</c> drive them the same way. Disposing stops the process with SIGTERM and
/// then checks that it cleaned up after itself: the socket and the interface must be gone.
/// </summary>
internal abstract class WireGuardPeer : IAsyncDisposable
{
    internal static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);
    internal static readonly TimeSpan CleanupDeadline = TimeSpan.FromSeconds(5);

    private bool _disposed;

    protected WireGuardPeer(NetNs ns, string interfaceName, WireGuardConfig config)
    {
        Namespace = ns;
        Interface = interfaceName;
        Config = config;
        WorkDirectory = Directory.CreateTempSubdirectory("mt-wg-");
    }

    /// <summary>"mesh-sidecar" or "wireguard-go", for messages.</summary>
    public abstract string Implementation { get; }

    public NetNs Namespace { get; }

    public string Interface { get; }

    public WireGuardConfig Config { get; }

    public string PublicKey => Config.Keys.PublicKey;

    public string SocketPath => $"/var/run/wireguard/{Interface}.sock";

    protected DirectoryInfo WorkDirectory { get; }

    protected ChildProcess? Process { get; set; }

    /// <summary>Runs <c>wg ARGS</c> inside this peer's namespace.</summary>
    public Task<ExecResult> WgAsync(IEnumerable<string> arguments, CancellationToken cancellationToken) =>
        Namespace.ExecAsync(["wg", .. arguments], cancellationToken, TimeSpan.FromSeconds(10));

    public async Task<WgDump> DumpAsync(CancellationToken cancellationToken)
    {
        var result = await WgAsync(["show", Interface, "dump"], cancellationToken);
        return WgDump.Parse(result.EnsureSuccess().Stdout);
    }

    /// <summary>Everything useful for a failure message; never throws.</summary>
    public async Task<string> DescribeAsync()
    {
        var text = new StringBuilder().Append("##### ").Append(Implementation).Append(' ').Append(Interface)
            .Append(" in ").Append(Namespace.Name).Append('\n');
        text.Append(Process?.Describe() ?? "(no process)\n");
        string[][] commands = [["wg", "show", Interface], ["ip", "addr"], ["ip", "route"], ["ip", "-6", "route"]];
        foreach (var command in commands)
        {
            try
            {
                var result = await Namespace.ExecAsync(command, CancellationToken.None, TimeSpan.FromSeconds(5));
                text.Append("--- ").Append(string.Join(' ', command)).Append(" (exit ").Append(result.ExitCode).Append(")\n")
                    .Append(result.Stdout).Append(result.Stderr);
            }
            catch (Exception e)
            {
                text.Append("--- ").Append(string.Join(' ', command)).Append(": ").Append(e.Message).Append('\n');
            }
        }

        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        var problems = new List<string>();
        if (Process is not null)
        {
            if (!Process.HasExited && !await Process.StopAsync(StopGrace, CancellationToken.None))
            {
                problems.Add($"did not exit within {StopGrace.TotalSeconds:0} s of SIGTERM (killed)");
            }

            if (!await Eventually.TryAsync(() => !File.Exists(SocketPath), CleanupDeadline, CancellationToken.None))
            {
                problems.Add($"left {SocketPath} behind after exiting");
                File.Delete(SocketPath);
            }

            if (!await Eventually.TryAsync(async ct => !(await Namespace.ExecAsync(["ip", "link", "show", Interface], ct)).Succeeded, CleanupDeadline, CancellationToken.None))
            {
                problems.Add($"left interface {Interface} behind after exiting");
            }
        }

        var description = problems.Count > 0 ? Process!.Describe() : string.Empty;
        if (Process is not null)
        {
            await Process.DisposeAsync();
        }

        WorkDirectory.Delete(recursive: true);
        if (problems.Count > 0 && CheckCleanShutdown)
        {
            throw new InvalidOperationException($"{Implementation} {Interface}: {string.Join("; ", problems)}\n{description}");
        }
    }

    /// <summary>Whether a dirty shutdown fails the test (ours: yes; the reference: only reported by its own tests).</summary>
    protected virtual bool CheckCleanShutdown => true;

    protected string WriteConfigFile(string name, string contents)
    {
        var path = System.IO.Path.Combine(WorkDirectory.FullName, name);
        File.WriteAllText(path, contents);
        if (!OperatingSystem.IsWindows())
        {
            // wg and wg-quick warn about key files other users can read.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    /// <summary>Waits until the UAPI socket exists; fails early, with the output, if the process exits first.</summary>
    protected async Task WaitForSocketAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var process = Process ?? throw new InvalidOperationException("not started");
        var ready = await Eventually.TryAsync(() => File.Exists(SocketPath) || process.HasExited, timeout, cancellationToken);
        if (process.HasExited)
        {
            await process.WaitForExitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            throw new InvalidOperationException($"{Implementation} exited with {process.ExitCode} before serving {SocketPath}\n{process.Describe()}");
        }

        if (!ready)
        {
            throw new TimeoutException($"{Implementation} did not create {SocketPath} within {timeout.TotalSeconds:0} s\n{process.Describe()}");
        }
    }

    /// <summary>Runs a setup step and, if it throws, tears the half-started peer down before rethrowing.</summary>
    protected static async Task<T> StartOrCleanUpAsync<T>(T peer, Func<T, Task> start)
        where T : WireGuardPeer
    {
        try
        {
            await start(peer);
            return peer;
        }
        catch
        {
            try
            {
                await peer.DisposeAsync();
            }
            catch (InvalidOperationException)
            {
                // The start failure is the interesting one.
            }

            throw;
        }
    }
}
