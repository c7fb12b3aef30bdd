using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Mesh.Sidecar.Agent;

/// <summary>A request on the agent's local socket: one JSON line.</summary>
internal sealed record LocalRequest(string Op, string? Argument = null);

/// <summary>The reply: one JSON line.</summary>
internal sealed record LocalResponse(bool Ok, string? Error = null, StatusReport? Status = null, IReadOnlyList<string>? Ips = null, string? Message = null, PingReport? Ping = null);

/// <summary>`mesh-sidecar ping NODE`: an echo through the tunnel and the path that carried it.</summary>
internal sealed record PingReport(string Node, string Ip, bool Answered, double? RttMilliseconds, string Path);

/// <summary>`mesh-sidecar status --json`: this node and its peers.</summary>
internal sealed record StatusReport(StatusNode Self, IReadOnlyList<StatusNode> Peers, string? BackendState = null);

internal sealed record StatusNode(
    string Hostname,
    string Name,
    IReadOnlyList<string> Ips,
    bool Online,
    string Path,
    long RxBytes,
    long TxBytes,
    DateTimeOffset? LastHandshake,
    string? User = null,
    IReadOnlyList<string>? Tags = null);

/// <summary>
/// The agent's local API: a unix socket (default /var/run/mesh/mesh.sock, mode 0600) carrying one
/// JSON request line and one JSON reply line per connection. The CLI verbs (`status`, `ip`, `down`)
/// are its clients. Kept deliberately small: no HTTP stack in the AOT-compiled agent.
/// </summary>
internal sealed class LocalApiServer : IAsyncDisposable
{
    private const int MaxRequestBytes = 64 * 1024;
    private readonly string _path;
    private readonly Func<LocalRequest, Task<LocalResponse>> _handle;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;

    public LocalApiServer(string path, Func<LocalRequest, Task<LocalResponse>> handle)
    {
        _path = Path.GetFullPath(path);
        _handle = handle;
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        if (File.Exists(_path))
        {
            File.Delete(_path); // a stale socket from a crashed agent
        }

        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(_path));
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(16);
        _accept = Task.Run(AcceptLoopAsync);
    }

    public string SocketPath => _path;

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using (client)
        {
            LocalResponse response;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                var line = await ReadLineAsync(client, timeout.Token).ConfigureAwait(false);
                var request = line is null ? null : JsonSerializer.Deserialize(line, AgentJson.Default.LocalRequest);
                response = request is null ? new LocalResponse(false, "empty request") : await _handle(request).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                response = new LocalResponse(false, $"malformed request: {e.Message}");
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is InvalidOperationException or IOException)
            {
                response = new LocalResponse(false, e.Message);
            }

            try
            {
                var bytes = JsonSerializer.SerializeToUtf8Bytes(response, AgentJson.Default.LocalResponse);
                await client.SendAsync(bytes.Append((byte)'\n').ToArray(), SocketFlags.None).ConfigureAwait(false);
            }
            catch (SocketException)
            {
            }
        }
    }

    private static async Task<string?> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        using var collected = new MemoryStream();
        while (collected.Length < MaxRequestBytes)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            var newline = Array.IndexOf(buffer, (byte)'\n', 0, n);
            collected.Write(buffer, 0, newline >= 0 ? newline : n);
            if (newline >= 0)
            {
                break;
            }
        }

        return collected.Length == 0 ? null : Encoding.UTF8.GetString(collected.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accept.ConfigureAwait(false);
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }

        _stop.Dispose();
    }
}

/// <summary>The CLI's side of the local API.</summary>
internal static class LocalApiClient
{
    public const string DefaultSocket = "/var/run/mesh/mesh.sock";

    public static async Task<LocalResponse> CallAsync(string socketPath, LocalRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot reach the agent at {socketPath}: {e.Message} (is `mesh-sidecar up` running? pass --socket PATH)", e);
        }

        var bytes = JsonSerializer.SerializeToUtf8Bytes(request, AgentJson.Default.LocalRequest);
        await socket.SendAsync(bytes.Append((byte)'\n').ToArray(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        using var collected = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false)) > 0)
        {
            collected.Write(buffer, 0, n);
        }

        return JsonSerializer.Deserialize(collected.ToArray(), AgentJson.Default.LocalResponse)
            ?? throw new IOException("the agent sent an empty reply");
    }
}
