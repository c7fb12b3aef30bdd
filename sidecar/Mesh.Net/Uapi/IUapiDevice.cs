namespace Mesh.Net.Uapi;

/// <summary>
/// The device behind a <see cref="UapiServer"/>: what <c>wg show</c> reads and what <c>wg set</c>
/// changes. Implemented by the node agent's WireGuard device; the UAPI layer only translates text.
/// </summary>
/// <remarks>
/// Threading: the server never calls <see cref="GetState"/> and <see cref="Apply"/> concurrently
/// (one lock, like wireguard-go's <c>ipcMutex</c>), but calls them from thread-pool threads, so the
/// device must synchronise with its own packet path. Both calls are synchronous and should be quick:
/// a slow device stalls every UAPI client.
/// </remarks>
public interface IUapiDevice
{
    /// <summary>A snapshot for <c>get=1</c>. The server does not keep it past the reply.</summary>
    UapiDeviceState GetState();

    /// <summary>
    /// Applies a fully parsed and validated <c>set=1</c> request, in the order of its fields (device
    /// fields, then <see cref="UapiSetRequest.ReplacePeers"/>, then each peer in request order).
    /// Throw <see cref="UapiException"/> to refuse with a specific errno (for example
    /// <see cref="UapiErrno.AddressInUse"/> when the listen port cannot be bound); any other exception
    /// is answered with <see cref="UapiErrno.Unknown"/> and logged.
    /// </summary>
    void Apply(UapiSetRequest request);
}
