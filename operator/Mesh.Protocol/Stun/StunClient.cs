using System.Net;
using System.Net.Sockets;

namespace Mesh.Protocol.Stun;

/// <summary>
/// Asks a STUN server which address a socket is seen from. This owns the socket's receive side
/// while it runs; the node agent, whose WireGuard socket also carries STUN, instead writes the
/// request with <see cref="StunMessage.WriteBindingRequest"/> and hands the datagrams that pass
/// <see cref="StunMessage.IsStunPacket"/> to <see cref="StunMessage.TryParseBindingResponse"/>.
/// </summary>
public static class StunClient
{
    /// <summary>First retransmission interval; it doubles after each one (RFC 8489 §6.2.1 suggests 500 ms for the Internet).</summary>
    public static readonly TimeSpan InitialRetransmit = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Sends a Binding Request from <paramref name="socket"/> (a bound UDP socket) to
    /// <paramref name="server"/>, retransmitting until a response with the same transaction id
    /// arrives, and returns the mapped address. Datagrams that are not that response are ignored.
    /// Throws <see cref="TimeoutException"/> when <paramref name="timeout"/> passes first.
    /// </summary>
    public static async Task<IPEndPoint> QueryAsync(Socket socket, EndPoint server, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(server);
        var transactionId = StunTransactionId.NewId();
        var request = new byte[StunMessage.BindingRequestSize];
        StunMessage.WriteBindingRequest(request, transactionId);
        var buffer = new byte[1500];
        var any = socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var retransmit = InitialRetransmit;
        try
        {
            while (true)
            {
                await socket.SendToAsync(request, SocketFlags.None, server, deadline.Token).ConfigureAwait(false);
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
                attempt.CancelAfter(retransmit);
                retransmit *= 2;
                try
                {
                    while (true)
                    {
                        var result = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, attempt.Token).ConfigureAwait(false);
                        if (StunMessage.TryParseBindingResponse(buffer.AsSpan(0, result.ReceivedBytes), out var id, out var mapped) && id == transactionId)
                        {
                            return mapped;
                        }
                    }
                }
                catch (OperationCanceledException) when (!deadline.IsCancellationRequested)
                {
                    // This attempt timed out: retransmit.
                }
                catch (SocketException) when (!deadline.IsCancellationRequested)
                {
                    // An ICMP error reported on the socket (Windows): retransmit.
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no STUN response from {server} within {timeout.TotalMilliseconds:0} ms");
        }
    }
}
