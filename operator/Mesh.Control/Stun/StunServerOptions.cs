using System.Net;

namespace Mesh.Control.Stun;

/// <summary>Where the coordinator's STUN server listens (config: <c>derp.server.stun_listen_addr</c> and <c>derp.server.stun_alternate_port</c>).</summary>
public sealed class StunServerOptions
{
    public const int DefaultPort = 3478;

    /// <summary>
    /// One UDP socket per endpoint. Default: 0.0.0.0:3478. Add [::]:3478 to answer over IPv6 too;
    /// an IPv6 socket is bound IPv6-only so the two never compete for IPv4. Port 0 picks an
    /// ephemeral port (tests); <see cref="StunServer.LocalEndPoints"/> says which.
    /// </summary>
    public IList<IPEndPoint> Endpoints { get; } = [];

    internal IReadOnlyList<IPEndPoint> EffectiveEndpoints =>
        Endpoints.Count > 0 ? [.. Endpoints] : [new IPEndPoint(IPAddress.Any, DefaultPort)];
}
