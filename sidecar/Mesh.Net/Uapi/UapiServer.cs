using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Net.Uapi;

/// <summary>
/// Serves WireGuard's cross-platform UAPI (<see cref="UapiProtocol"/>) on a unix stream socket so
/// that the stock <c>wg show</c>, <c>wg set</c> and <c>wg setconf</c> work against our userspace
/// device. It is not the device: every get and set goes to an <see cref="IUapiDevice"/>.
/// </summary>
/// <remarks>
/// <para>Connections are served concurrently; each carries requests in turn until the client closes it.
/// Device calls are serialised by one lock so a get never sees half of a set.</para>
/// <para>Robustness: a line longer than <see cref="UapiServerOptions.MaxLineLength"/> is answered with
/// EIO (what wireguard-go's line scanner gives), a set request larger than
/// <see cref="UapiServerOptions.MaxRequestBytes"/> with EMSGSIZE, and both close the connection; an
/// unknown operation closes the connection without a reply, as wireguard-go does; a set request cut
/// off before its blank line is dropped unapplied. No client input can stop the accept loop.</para>
/// <para>The socket file is created 0600 in a 0755 directory (as wireguard-go does) and removed on
/// dispose. A stale socket file nobody listens on is replaced; a live one makes <see cref="Start"/> throw.</para>
/// </remarks>
public sealed class UapiServer : IAsyncDisposable
{
    /// <summary>Where wg(8) looks for userspace interfaces.</summary>
    public const string DefaultSocketDirectory = "/var/run/wireguard";

    private readonly string _socketPath;
    private readonly IUapiDevice _device;
    private readonly ILogger _logger;
    private readonly UapiServerOptions _options;
    private readonly Lock _deviceLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, Socket> _connections = new();
    private readonly ConcurrentDictionary<long, Task> _connectionTasks = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _nextConnectionId;
    private int _disposed;

    /// <param name="socketPath">The unix socket path, usually <see cref="DefaultSocketPath"/>.</param>
    /// <param name="device">The device that answers get and set.</param>
    /// <param name="logger">Where to log; never receives key material.</param>
    /// <param name="options">Limits; null for the defaults.</param>
    public UapiServer(string socketPath, IUapiDevice device, ILogger? logger = null, UapiServerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(device);
        _socketPath = socketPath;
        _device = device;
        _logger = logger ?? NullLogger.Instance;
        _options = options ?? new UapiServerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxLineLength, 128, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxRequestBytes, _options.MaxLineLength, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxConnections, 1, nameof(options));
    }

    /// <summary>The socket path this server listens on.</summary>
    public string SocketPath => _socketPath;

    /// <summary><c>/var/run/wireguard/NAME.sock</c>, after checking NAME is a valid Linux interface name.</summary>
    public static string DefaultSocketPath(string interfaceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        if (interfaceName.Length > 15 || interfaceName is "." or ".."
            || interfaceName.AsSpan().IndexOfAny('/', ':', '\0') >= 0 || interfaceName.Any(char.IsWhiteSpace))
        {
            throw new ArgumentException($"\"{interfaceName}\" is not a valid interface name (at most 15 characters, no '/', ':' or spaces)", nameof(interfaceName));
        }

        return Path.Combine(DefaultSocketDirectory, interfaceName + ".sock");
    }

    /// <summary>Binds the socket and starts accepting. Throws when the path is in use or cannot be created.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("the UAPI server needs unix file modes; Windows uses a named pipe instead");
        }

        if (_listener is not null)
        {
            throw new InvalidOperationException("the UAPI server is already started");
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(_socketPath));
        if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        var listener = Bind();
        try
        {
            // Tighten right after bind. Until then the file has the umask's mode, and connecting needs
            // write permission, which the usual 022 umask gives only to the owner (root) anyway.
            File.SetUnixFileMode(_socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(_options.MaxConnections);
        }
        catch
        {
            listener.Dispose();
            TryDeleteSocketFile();
            throw;
        }

        _listener = listener;
        UapiLog.Listening(_logger, _socketPath);
        _acceptLoop = Task.Run(() => AcceptLoopAsync(listener, _stopping.Token));
    }

    /// <summary>Stops accepting, closes every connection, waits for their handlers and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        foreach (var connection in _connections.Values)
        {
            connection.Dispose();
        }

        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        await Task.WhenAll(_connectionTasks.Values).ConfigureAwait(false);
        if (_listener is not null)
        {
            TryDeleteSocketFile();
            UapiLog.Stopped(_logger, _socketPath);
        }

        _stopping.Dispose();
    }

    private Socket Bind()
    {
        var endpoint = new UnixDomainSocketEndPoint(_socketPath);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
        }

        // The path exists. If something answers on it, it is not ours to take; otherwise it is a
        // leftover from a process that died without cleaning up.
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(endpoint);
                throw new IOException($"UAPI socket {_socketPath} is in use by another process");
            }
            catch (SocketException)
            {
            }
        }

        File.Delete(_socketPath);
        UapiLog.RemovedStaleSocket(_logger, _socketPath);
        socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(endpoint);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Transient accept errors (EMFILE, ECONNABORTED) must not end the server.
                UapiLog.AcceptFailed(_logger, _socketPath, ex);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (_connections.Count >= _options.MaxConnections)
            {
                UapiLog.TooManyConnections(_logger, _options.MaxConnections);
                client.Dispose();
                continue;
            }

            var id = Interlocked.Increment(ref _nextConnectionId);
            _connections[id] = client;
            if (cancellationToken.IsCancellationRequested)
            {
                // DisposeAsync may have walked _connections before this one was added.
                client.Dispose();
            }

            // Removal is a continuation registered after the add, so a connection that ends at once
            // cannot be removed before it was added.
            var task = Task.Run(() => ServeConnectionAsync(id, client, cancellationToken), CancellationToken.None);
            _connectionTasks[id] = task;
            _ = task.ContinueWith(_ => _connectionTasks.TryRemove(id, out Task? _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task ServeConnectionAsync(long id, Socket client, CancellationToken cancellationToken)
    {
        UapiLog.ConnectionOpened(_logger, id);
        try
        {
            var reader = new UapiLineReader(client, _options.MaxLineLength);
            while (await ServeRequestAsync(id, client, reader, cancellationToken).ConfigureAwait(false))
            {
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                UapiLog.ConnectionError(_logger, id, ex);
            }
        }
        catch (Exception ex)
        {
            // A bug in this server, not client input: log it and drop this connection only.
            UapiLog.ConnectionFailed(_logger, id, ex);
        }
        finally
        {
            client.Dispose();
            _connections.TryRemove(id, out _);
            UapiLog.ConnectionClosed(_logger, id);
        }
    }

    /// <summary>Serves one request. Returns false when the connection should close.</summary>
    private async Task<bool> ServeRequestAsync(long id, Socket client, UapiLineReader reader, CancellationToken cancellationToken)
    {
        var (status, operation) = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        switch (status)
        {
            case UapiLineStatus.EndOfStream:
                return false;
            case UapiLineStatus.TooLong:
                UapiLog.LineTooLong(_logger, id, _options.MaxLineLength);
                await SendAsync(client, UapiProtocol.FormatErrno(UapiErrno.Io), cancellationToken).ConfigureAwait(false);
                return false;
        }

        switch (operation)
        {
            case UapiProtocol.GetOperation:
                return await ServeGetAsync(id, client, reader, cancellationToken).ConfigureAwait(false);
            case UapiProtocol.SetOperation:
                return await ServeSetAsync(id, client, reader, cancellationToken).ConfigureAwait(false);
            default:
                UapiLog.InvalidOperation(_logger, id);
                return false;
        }
    }

    private async Task<bool> ServeGetAsync(long id, Socket client, UapiLineReader reader, CancellationToken cancellationToken)
    {
        var (status, line) = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        switch (status)
        {
            case UapiLineStatus.EndOfStream:
                return false;
            case UapiLineStatus.TooLong:
                UapiLog.LineTooLong(_logger, id, _options.MaxLineLength);
                await SendAsync(client, UapiProtocol.FormatErrno(UapiErrno.Io), cancellationToken).ConfigureAwait(false);
                return false;
        }

        if (line.Length != 0)
        {
            UapiLog.RequestRefused(_logger, id, "get", UapiErrno.Invalid, "get=1 must be followed by a blank line");
            await SendAsync(client, UapiProtocol.FormatErrno(UapiErrno.Invalid), cancellationToken).ConfigureAwait(false);
            return true;
        }

        string reply;
        try
        {
            UapiDeviceState state;
            lock (_deviceLock)
            {
                state = _device.GetState();
            }

            reply = UapiProtocol.FormatGet(state);
        }
        catch (UapiException ex)
        {
            UapiLog.RequestRefused(_logger, id, "get", ex.Errno, ex.Message);
            reply = UapiProtocol.FormatErrno(ex.Errno);
        }
        catch (Exception ex)
        {
            UapiLog.DeviceFailed(_logger, id, "get", ex);
            reply = UapiProtocol.FormatErrno(UapiErrno.Unknown);
        }

        await SendAsync(client, reply, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async Task<bool> ServeSetAsync(long id, Socket client, UapiLineReader reader, CancellationToken cancellationToken)
    {
        var parser = new UapiSetParser();
        var requestBytes = 0L;
        while (true)
        {
            var (status, line) = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            switch (status)
            {
                case UapiLineStatus.EndOfStream:
                    UapiLog.SetTruncated(_logger, id);
                    return false;
                case UapiLineStatus.TooLong:
                    UapiLog.LineTooLong(_logger, id, _options.MaxLineLength);
                    await SendAsync(client, UapiProtocol.FormatErrno(UapiErrno.Io), cancellationToken).ConfigureAwait(false);
                    return false;
            }

            if (line.Length == 0)
            {
                break;
            }

            requestBytes += line.Length + 1;
            if (requestBytes > _options.MaxRequestBytes)
            {
                UapiLog.RequestTooLarge(_logger, id, _options.MaxRequestBytes);
                await SendAsync(client, UapiProtocol.FormatErrno(UapiErrno.MessageTooLong), cancellationToken).ConfigureAwait(false);
                return false;
            }

            parser.AddLine(line);
        }

        int errno;
        try
        {
            var request = parser.Build();
            lock (_deviceLock)
            {
                _device.Apply(request);
            }

            UapiLog.SetApplied(_logger, id, request.Peers.Count);
            errno = 0;
        }
        catch (UapiException ex)
        {
            UapiLog.RequestRefused(_logger, id, "set", ex.Errno, ex.Message);
            errno = ex.Errno;
        }
        catch (Exception ex)
        {
            UapiLog.DeviceFailed(_logger, id, "set", ex);
            errno = UapiErrno.Unknown;
        }

        await SendAsync(client, UapiProtocol.FormatErrno(errno), cancellationToken).ConfigureAwait(false);
        return true;
    }

    private static async Task SendAsync(Socket client, string text, CancellationToken cancellationToken)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var sent = 0;
        while (sent < bytes.Length)
        {
            sent += await client.SendAsync(bytes.AsMemory(sent), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
    }

    private void TryDeleteSocketFile()
    {
        try
        {
            File.Delete(_socketPath);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Limits of a <see cref="UapiServer"/>.</summary>
public sealed class UapiServerOptions
{
    /// <summary>
    /// The longest accepted line, without its newline. The longest legitimate line is a key
    /// (76 bytes) or a scoped IPv6 endpoint; 4 KiB leaves room without letting a client grow buffers.
    /// </summary>
    public int MaxLineLength { get; init; } = 4096;

    /// <summary>The largest set request body: 16 MiB is about 300,000 allowed IPs.</summary>
    public int MaxRequestBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>Connections served at once; more are closed on accept.</summary>
    public int MaxConnections { get; init; } = 64;
}
