using System.ComponentModel;
using System.Diagnostics;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>Result of a finished command: what ran, how it ended, what it printed.</summary>
internal sealed record ExecResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    public ExecResult EnsureSuccess()
    {
        if (!Succeeded)
        {
            throw new InvalidOperationException($"`{Command}` exited with {ExitCode}\n{Describe()}");
        }

        return this;
    }

    public string Describe() => $"--- stdout of `{Command}`\n{Stdout}--- stderr\n{Stderr}";
}

/// <summary>
/// A child process with captured stdout and stderr. Disposing it kills whatever is still running
/// (the whole tree), so a failing test never leaves a daemon behind. Only processes this harness
/// started are ever signalled, and only by their id.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly CapturedOutput _stdout = new();
    private readonly CapturedOutput _stderr = new();

    private ChildProcess(Process process, string command)
    {
        _process = process;
        Command = command;
    }

    public string Command { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public string Stdout => _stdout.ToString();

    public string Stderr => _stderr.ToString();

    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, bool redirectStdin = false)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var command = string.Join(' ', info.ArgumentList.Prepend(fileName));
        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process, command);
        process.OutputDataReceived += (_, e) => child._stdout.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child._stderr.Append(e.Data);
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            process.Dispose();
            throw new InvalidOperationException($"cannot start `{command}`: {e.Message}", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Runs a command to completion; kills it and throws <see cref="TimeoutException"/> past the timeout.</summary>
    public static async Task<ExecResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken, string? stdin = null)
    {
        await using var child = Start(fileName, arguments, redirectStdin: stdin is not null);
        if (stdin is not null)
        {
            await child._process.StandardInput.WriteAsync(stdin.AsMemory(), cancellationToken);
            child._process.StandardInput.Close();
        }

        if (!await child.WaitForExitAsync(timeout, cancellationToken))
        {
            child.KillTree();
            throw new TimeoutException($"`{child.Command}` did not finish within {timeout.TotalSeconds:0.#} s\n{child.Describe()}");
        }

        return new ExecResult(child.Command, child._process.ExitCode, child.Stdout, child.Stderr);
    }

    /// <summary>Waits for exit (and for the captured output to drain); false when the timeout passes first.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Sends a signal to this process only (not its group).</summary>
    public void Signal(int signal)
    {
        if (_process.HasExited)
        {
            return;
        }

        if (Native.Kill(_process.Id, signal) != 0 && !_process.HasExited)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed with errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>SIGTERM, then SIGKILL if it has not exited within <paramref name="grace"/>. True when it exited on SIGTERM.</summary>
    public async Task<bool> StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        if (_process.HasExited)
        {
            return true;
        }

        Signal(Native.SigTerm);
        if (await WaitForExitAsync(grace, cancellationToken))
        {
            return true;
        }

        KillTree();
        await WaitForExitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        return false;
    }

    public string Describe()
    {
        var state = _process.HasExited ? $"exited with {_process.ExitCode}" : $"running as pid {_process.Id}";
        return $"=== `{Command}` ({state})\n--- stdout\n{Stdout}--- stderr\n{Stderr}";
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            KillTree();
            await WaitForExitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        }

        _process.Dispose();
    }

    private void KillTree()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
