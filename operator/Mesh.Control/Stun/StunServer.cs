using System.Net;
using System.Net.Sockets;
using Mesh.Protocol.Stun;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Control.Stun;

/// <summary>
/// The coordinator's embedded STUN server: answers every well-formed Binding Request with a Binding
/// Success Response carrying the sender's address as XOR-MAPPED-ADDRESS, so nodes learn their
/// public endpoint (the node agent's netcheck; DESIGN.md ports: 3478/udp). It is not a TURN
/// server and checks no credentials: the answer only tells a sender what it already sent from.
/// Anything else that arrives, garbage included, is dropped without a reply.
/// </summary>
/// <remarks>
/// One receive loop per socket; a request is answered inline, since a reply is one datagram of
/// at most <see cref="StunMessage.MaxBindingResponseSize"/> bytes. Per-request allocation is the
/// sender's <see cref="IPEndPoint"/>; STUN traffic is a few packets per node per minute.
/// </remarks>
public sealed class StunServer : IAsyncDisposable
{
    private const int ReceiveBufferSize = 2048;

    private readonly List<Socket> _sockets = [];
    private readonly List<Task> _loops = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly ILogger _logger;
    private long _requests;
    private long _ignored;
    private int _disposed;

    private StunServer(ILogger logger) => _logger = logger;

    /// <summary>The bound endpoints, with the ports the system chose for port 0.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints { get; private set; } = [];

    /// <summary>Binding Requests answered.</summary>
    public long RequestsAnswered => Interlocked.Read(ref _requests);

    /// <summary>Datagrams dropped because they were not a well-formed Binding Request.</summary>
    public long DatagramsIgnored => Interlocked.Read(ref _ignored);

    /// <summary>Binds every endpoint (throws <see cref="StunListenException"/>, naming it, if one cannot be bound) and starts answering.</summary>
    public static StunServer Start(StunServerOptions options, ILogger<StunServer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var server = new StunServer(logger ?? (ILogger)NullLogger.Instance);
        var bound = new List<IPEndPoint>();
        try
        {
            foreach (var endPoint in options.EffectiveEndpoints)
            {
                var socket = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                server._sockets.Add(socket);
                if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    socket.DualMode = false;
                }

                try
                {
                    socket.Bind(endPoint);
                }
                catch (SocketException e)
                {
                    throw new StunListenException(endPoint, e);
                }

                bound.Add((IPEndPoint)socket.LocalEndPoint!);
            }
        }
        catch
        {
            foreach (var socket in server._sockets)
            {
                socket.Dispose();
            }

            throw;
        }

        server.LocalEndPoints = bound;
        for (var i = 0; i < server._sockets.Count; i++)
        {
            StunLog.Listening(server._logger, bound[i]);
            var socket = server._sockets[i];
            var local = bound[i];
            server._loops.Add(Task.Run(() => server.ServeAsync(socket, local)));
        }

        return server;
    }

    private async Task ServeAsync(Socket socket, IPEndPoint local)
    {
        var buffer = new byte[ReceiveBufferSize];
        var reply = new byte[StunMessage.MaxBindingResponseSize];
        EndPoint any = local.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        var token = _stopping.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                SocketReceiveFromResult received;
                try
                {
                    received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    // ICMP errors surface here on some platforms; they concern one peer, not the socket.
                    StunLog.ReceiveFailed(_logger, local, e);
                    continue;
                }

                var remote = (IPEndPoint)received.RemoteEndPoint;
                if (!StunMessage.TryParseBindingRequest(buffer.AsSpan(0, received.ReceivedBytes), out var transactionId))
                {
                    Interlocked.Increment(ref _ignored);
                    continue;
                }

                var length = StunMessage.WriteBindingResponse(reply, transactionId, remote);
                Interlocked.Increment(ref _requests);
                try
                {
                    await socket.SendToAsync(reply.AsMemory(0, length), SocketFlags.None, remote, token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    StunLog.SendFailed(_logger, remote, e);
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            StunLog.LoopFailed(_logger, local, e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        for (var i = 0; i < _sockets.Count; i++)
        {
            _sockets[i].Dispose();
            StunLog.Stopped(_logger, LocalEndPoints[i]);
        }

        _stopping.Dispose();
    }
}

/// <summary>The STUN server could not listen on one of its endpoints (say, the port is taken).</summary>
public sealed class StunListenException(IPEndPoint endPoint, SocketException inner)
    : IOException($"STUN cannot listen on udp {endPoint}: {inner.Message}", inner)
{
    public IPEndPoint EndPoint { get; } = endPoint;

    public SocketError Error => inner.SocketErrorCode;
}
