using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mesh.Operator.Tests.Process;

/// <summary>
/// The real `mesh-operator` executable as a child process: `dotnet mesh-operator.dll …` from this
/// test's output directory (the test project references Mesh.Operator, so the build puts it there),
/// in a working directory the test chooses. Output is read as it comes so a chatty process never
/// blocks on a full pipe. MESH_* variables are removed so the default socket is what gets used.
/// </summary>
internal sealed class MeshOperatorProcess : IAsyncDisposable
{
    private readonly System.Diagnostics.Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private MeshOperatorProcess(System.Diagnostics.Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(_out, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_err, e.Data);
    }

    public static string DllPath => Path.Combine(AppContext.BaseDirectory, "mesh-operator.dll");

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Out
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    public string Err
    {
        get
        {
            lock (_err)
            {
                return _err.ToString();
            }
        }
    }

    public static MeshOperatorProcess Start(string workingDirectory, params string[] args)
    {
        Assert.True(File.Exists(DllPath), $"{DllPath} is missing: the test project must reference Mesh.Operator");
        var info = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(DllPath);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var name in new[] { "MESH_SERVER", "MESH_API_KEY", "MESH_SOCKET" })
        {
            info.Environment.Remove(name);
        }

        var process = new MeshOperatorProcess(new System.Diagnostics.Process { StartInfo = info });
        process._process.Start();
        process._process.StandardInput.Close();
        process._process.BeginOutputReadLine();
        process._process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs a command to completion (a CLI verb); fails the test if it takes longer than <paramref name="timeout"/>.</summary>
    public static async Task<ProcessResult> RunAsync(string workingDirectory, params string[] args) =>
        await RunAsync(workingDirectory, TimeSpan.FromSeconds(60), args);

    public static async Task<ProcessResult> RunAsync(string workingDirectory, TimeSpan timeout, params string[] args)
    {
        await using var process = Start(workingDirectory, args);
        var exited = await process.WaitForExitAsync(timeout);
        Assert.True(exited, $"mesh-operator {string.Join(' ', args)} still running after {timeout}\nstdout:\n{process.Out}\nstderr:\n{process.Err}");
        return new ProcessResult(args, process.ExitCode, process.Out, process.Err);
    }

    /// <summary>True when the process exited within <paramref name="timeout"/> (its output fully read).</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            // Waits for the end of the redirected streams too, so Out and Err are complete.
            await _process.WaitForExitAsync(deadline.Token);
            return true;
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Sends SIGTERM, as a service manager or the kubelet does to stop the container.</summary>
    public async Task TerminateAsync()
    {
        // `kill` rather than P/Invoke: .NET's Process.Kill only sends SIGKILL.
        var kill = await RunToolAsync("kill", "-TERM", Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(kill == 0 || _process.HasExited, $"kill -TERM {Id} exited {kill}");
    }

    /// <summary>A TCP or UDP port free on 127.0.0.1 just now (the OS picks it; nothing else may take it in between, which is good enough here).</summary>
    public static int FreePort(ProtocolType protocol = ProtocolType.Tcp)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, protocol == ProtocolType.Udp ? SocketType.Dgram : SocketType.Stream, protocol);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public override string ToString() => $"pid {Id}\nstdout:\n{Out}\nstderr:\n{Err}";

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }

        _process.Dispose();
    }

    private static async Task<int> RunToolAsync(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return process.ExitCode;
    }

    /// <summary>The `dotnet` host running these tests when known (the SDK sets DOTNET_HOST_PATH), else `dotnet` from PATH.</summary>
    internal static string DotnetHost()
    {
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        var current = Environment.ProcessPath;
        return current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (builder)
        {
            builder.AppendLine(line);
        }
    }
}

internal sealed record ProcessResult(string[] Args, int Exit, string Out, string Err)
{
    public System.Text.Json.JsonElement Json
    {
        get
        {
            using var document = System.Text.Json.JsonDocument.Parse(Out);
            return document.RootElement.Clone();
        }
    }

    public override string ToString() => $"mesh-operator {string.Join(' ', Args)}: exit {Exit}\nstdout:\n{Out}\nstderr:\n{Err}";
}
