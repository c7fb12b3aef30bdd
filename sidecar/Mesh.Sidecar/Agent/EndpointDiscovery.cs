using System.Collections.Concurrent;
using System.Net;
using Mesh.Net.Device;
using Mesh.Protocol.Stun;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// Finds this node's public endpoint the way peers will see it: a STUN Binding request sent from
/// the WireGuard socket itself (through <see cref="WireGuardDevice.SendRaw"/>); the agent hands it the
/// socket's non-WireGuard datagrams (<see cref="TryHandle"/>). Behind a NAT the answer is the NAT's mapping of
/// the WireGuard port, which the agent reports to the coordinator next to its local endpoints.
/// </summary>
internal sealed class EndpointDiscovery
{
    private readonly WireGuardDevice _device;
    private readonly ConcurrentDictionary<StunTransactionId, TaskCompletionSource<IPEndPoint>> _pending = new();

    public EndpointDiscovery(WireGuardDevice device) => _device = device;

    /// <summary>The mapped address of the WireGuard socket as <paramref name="server"/> sees it; null when it did not answer.</summary>
    public async Task<(IPEndPoint? Mapped, TimeSpan Latency)> QueryAsync(IPEndPoint server, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var id = StunTransactionId.NewId();
        var answer = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        try
        {
            var request = new byte[64];
            var length = StunMessage.WriteBindingRequest(request, id);
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var deadline = DateTime.UtcNow + timeout;
            var wait = TimeSpan.FromMilliseconds(300);
            while (DateTime.UtcNow < deadline)
            {
                _device.SendRaw(request.AsSpan(0, length), server);
                var done = await Task.WhenAny(answer.Task, Task.Delay(wait, cancellationToken)).ConfigureAwait(false);
                if (done == answer.Task)
                {
                    return (await answer.Task.ConfigureAwait(false), System.Diagnostics.Stopwatch.GetElapsedTime(started));
                }

                wait *= 2;
            }

            return (null, timeout);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>A STUN answer to one of this node's queries: true when the datagram was STUN.</summary>
    public bool TryHandle(ReadOnlySpan<byte> datagram)
    {
        if (!StunMessage.IsStunPacket(datagram))
        {
            return false;
        }

        if (StunMessage.TryParseBindingResponse(datagram, out var id, out var mapped) && _pending.TryGetValue(id, out var answer))
        {
            answer.TrySetResult(mapped);
        }

        return true;
    }

    /// <summary>
    /// Every STUN endpoint the relay map names, resolved, in map order: each relay node's STUN
    /// endpoint, then its alternate port (the same server on another port), if any.
    /// </summary>
    public static IReadOnlyList<IPEndPoint> StunServersOf(Mesh.Protocol.Control.RelayMap? map) =>
        [.. (map?.Regions ?? []).SelectMany(r => r.Nodes).SelectMany(n => new[] { n.StunEndpoint, n.StunAlternateEndpoint }).Select(Resolve).OfType<IPEndPoint>().Distinct()];

    /// <summary>"host:port" or "ip:port", resolved; null when absent or unresolvable.</summary>
    private static IPEndPoint? Resolve(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        if (IPEndPoint.TryParse(text, out var endpoint))
        {
            return endpoint;
        }

        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port))
        {
            return null;
        }

        try
        {
            var address = System.Net.Dns.GetHostAddresses(text[..colon]).FirstOrDefault();
            return address is null ? null : new IPEndPoint(address, port);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
    }
}
