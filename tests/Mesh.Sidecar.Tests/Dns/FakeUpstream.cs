using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Sidecar.Tests.Dns;

/// <summary>
/// A tiny DNS responder on a loopback UDP port standing in for the host's resolver: it answers
/// every A query with <see cref="Address"/> (TTL <see cref="Ttl"/>) and AAAA with nothing, and
/// records the names it was asked. <see cref="Silent"/> makes one that receives but never answers.
/// Only ever bound to loopback; nothing here talks to a real resolver.
/// </summary>
internal sealed class FakeUpstream : IAsyncDisposable
{
    public const uint Ttl = 1234;

    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly bool _silent;

    private FakeUpstream(IPAddress bindAddress, IPAddress answer, bool silent)
    {
        Address = answer;
        _silent = silent;
        _socket = new Socket(bindAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(bindAddress, 0));
        Endpoint = (IPEndPoint)_socket.LocalEndPoint!;
        _loop = Task.Run(() => ServeAsync(_stop.Token));
    }

    public IPEndPoint Endpoint { get; }

    public IPAddress Address { get; }

    /// <summary>Every question received, as "name type".</summary>
    public ConcurrentQueue<string> Questions { get; } = new();

    public static FakeUpstream Answering(IPAddress answer, IPAddress? bindAddress = null) => new(bindAddress ?? IPAddress.Loopback, answer, silent: false);

    public static FakeUpstream Silent(IPAddress? bindAddress = null) => new(bindAddress ?? IPAddress.Loopback, IPAddress.None, silent: true);

    /// <summary>A loopback UDP port with nothing listening: queries to it fail at once (ICMP port unreachable).</summary>
    public static IPEndPoint ClosedPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (IPEndPoint)socket.LocalEndPoint!;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _socket.Dispose();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (SocketException)
        {
        }

        _stop.Dispose();
    }

    private async Task ServeAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken);
            var query = buffer.AsSpan(0, received.ReceivedBytes);
            if (DnsWire.EndOfFirstQuestion(query) < 0)
            {
                continue;
            }

            var (name, type) = DnsWire.FirstQuestion(query);
            Questions.Enqueue($"{name} {type}");
            if (_silent)
            {
                continue;
            }

            var reply = type == DnsWire.TypeA ? DnsWire.Answer(query, 0, Ttl, Address) : DnsWire.Answer(query, 0, Ttl);
            await _socket.SendToAsync(reply, SocketFlags.None, received.RemoteEndPoint, cancellationToken);
        }
    }
}
