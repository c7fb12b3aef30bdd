using Mesh.Net.Linux;
using Mesh.WireGuard;

namespace Mesh.Net.Device;

/// <summary>
/// The device's side of a peer: its current endpoint. Endpoints are swapped as whole immutable
/// boxes so the data path reads them without a lock and never sees a torn value; a new box is made
/// only when the endpoint actually changes (configuration or roaming).
/// </summary>
internal sealed class DevicePeer
{
    private EndpointBox? _endpoint;

    public DevicePeer(Peer peer) => Peer = peer;

    public Peer Peer { get; }

    public bool HasEndpoint => Volatile.Read(ref _endpoint) is not null;

    public bool TryGetEndpoint(out UdpEndpoint endpoint)
    {
        var box = Volatile.Read(ref _endpoint);
        endpoint = box?.Endpoint ?? default;
        return box is { ViaRelay: false };
    }

    /// <summary>True while packets to this peer go through the relay.</summary>
    public bool ViaRelay => Volatile.Read(ref _endpoint) is { ViaRelay: true };

    /// <summary>The direct endpoint last used or learned, even while the relay carries the traffic.</summary>
    public bool TryGetDirectEndpoint(out UdpEndpoint endpoint)
    {
        var box = Volatile.Read(ref _endpoint);
        endpoint = box?.Endpoint ?? default;
        return box is not null && endpoint.Port != 0;
    }

    public void SetEndpoint(in UdpEndpoint endpoint) => Volatile.Write(ref _endpoint, new EndpointBox(endpoint, false));

    /// <summary>Sends through the relay from now on (keeping the direct endpoint for probes).</summary>
    public void UseRelay()
    {
        var box = Volatile.Read(ref _endpoint);
        if (box is not { ViaRelay: true })
        {
            Volatile.Write(ref _endpoint, new EndpointBox(box?.Endpoint ?? default, true));
        }
    }

    /// <summary>An authenticated packet arrived through the relay: answer the same way (roaming, relay edition).</summary>
    public bool RoamToRelay()
    {
        var box = Volatile.Read(ref _endpoint);
        if (box is { ViaRelay: true })
        {
            return false;
        }

        Volatile.Write(ref _endpoint, new EndpointBox(box?.Endpoint ?? default, true));
        return true;
    }

    /// <summary>Roaming (whitepaper §2.1): the endpoint follows the latest authenticated packet. True when it moved.</summary>
    public bool Roam(in UdpEndpoint source)
    {
        var box = Volatile.Read(ref _endpoint);
        if (box is { ViaRelay: false } && box.Endpoint == source)
        {
            return false;
        }

        Volatile.Write(ref _endpoint, new EndpointBox(source, false));
        return true;
    }

    private sealed record EndpointBox(UdpEndpoint Endpoint, bool ViaRelay);
}
