using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Mesh.Net.Uapi;
using Microsoft.Extensions.Logging;

namespace Mesh.Net.Tests.Uapi;

/// <summary>A <see cref="FakeUapiDevice"/> behind a real <see cref="UapiServer"/> at /var/run/wireguard/uapXXXXXXXX.sock.</summary>
internal sealed class UapiTestHost : IAsyncDisposable
{
    private UapiTestHost(string name, FakeUapiDevice device, UapiServer server, CapturingLogger logger)
    {
        Name = name;
        Device = device;
        Server = server;
        Logger = logger;
    }

    public string Name { get; }

    public FakeUapiDevice Device { get; }

    public UapiServer Server { get; }

    public CapturingLogger Logger { get; }

    public static UapiTestHost Start(UapiServerOptions? options = null)
    {
        var name = "uap" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var device = new FakeUapiDevice();
        var logger = new CapturingLogger();
        var server = new UapiServer(UapiServer.DefaultSocketPath(name), device, logger, options);
        server.Start();
        return new UapiTestHost(name, device, server, logger);
    }

    public ValueTask DisposeAsync() => Server.DisposeAsync();

    /// <summary>Sends raw bytes on a fresh connection and reads until the server closes or a reply ends.</summary>
    public async Task<string> ExchangeAsync(byte[] request, int replies = 1, bool shutdownWrite = false)
    {
        using var socket = await ConnectAsync();
        await socket.SendAsync(request, SocketFlags.None, TestContext.Current.CancellationToken);
        if (shutdownWrite)
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        return await ReadRepliesAsync(socket, replies);
    }

    public Task<string> ExchangeAsync(string request, int replies = 1, bool shutdownWrite = false) =>
        ExchangeAsync(Encoding.Latin1.GetBytes(request), replies, shutdownWrite);

    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Server.SocketPath), TestContext.Current.CancellationToken);
        return socket;
    }

    /// <summary>Reads until <paramref name="replies"/> replies (each ending in "errno=N\n\n") arrived or the server closed.</summary>
    public static async Task<string> ReadRepliesAsync(Socket socket, int replies)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var text = new StringBuilder();
        var buffer = new byte[65536];
        while (CountReplies(text.ToString()) < replies)
        {
            int read;
            try
            {
                read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            }
            catch (SocketException)
            {
                break;
            }

            if (read == 0)
            {
                break;
            }

            text.Append(Encoding.Latin1.GetString(buffer, 0, read));
        }

        return text.ToString();
    }

    private static int CountReplies(string text)
    {
        var count = 0;
        var index = 0;
        while ((index = text.IndexOf("errno=", index, StringComparison.Ordinal)) >= 0)
        {
            var end = text.IndexOf("\n\n", index, StringComparison.Ordinal);
            if (end < 0)
            {
                break;
            }

            count++;
            index = end;
        }

        return count;
    }
}

/// <summary>Runs the real wg(8).</summary>
internal static class Wg
{
    public static string? MissingReason()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':'))
        {
            if (File.Exists(Path.Combine(dir, "wg")))
            {
                return Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root" || IsRoot()
                    ? null
                    : "wg needs root to reach /var/run/wireguard";
            }
        }

        return "wireguard-tools not installed: no wg binary on PATH";
    }

    public static async Task<(int ExitCode, string StdOut, string StdErr)> RunAsync(string? stdin, params string[] args)
    {
        var start = new ProcessStartInfo("wg")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("wg did not start");
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static bool IsRoot()
    {
        try
        {
            return File.ReadAllText("/proc/self/status").Split('\n')
                .FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0";
        }
        catch (IOException)
        {
            return false;
        }
    }
}

internal sealed class CapturingLogger : ILogger
{
    private readonly ConcurrentQueue<string> _messages = new();

    public IReadOnlyCollection<string> Messages => _messages;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        _messages.Enqueue($"{logLevel} {eventId.Id} {formatter(state, exception)} {exception}");
    }
}
