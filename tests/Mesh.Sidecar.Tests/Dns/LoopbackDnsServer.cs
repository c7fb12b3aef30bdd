using System.Net;
using System.Net.Sockets;
using Mesh.Sidecar.Dns;

namespace Mesh.Sidecar.Tests.Dns;

/// <summary>
/// Starts a <see cref="MagicDnsServer"/> on a random 127.0.0.x address and a port free for both UDP
/// and TCP there, retrying when another test takes the port between the probe and the bind.
/// </summary>
internal static class LoopbackDnsServer
{
    private const int Attempts = 20;

    public static MagicDnsServer Start(MagicDnsRecords records, out IPEndPoint endpoint, IReadOnlyList<IPEndPoint>? fallback = null, TimeSpan? upstreamTimeout = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            endpoint = new IPEndPoint(new IPAddress([127, 0, 0, (byte)Random.Shared.Next(2, 255)]), FreePort());
            var server = new MagicDnsServer(
                new MagicDnsServerOptions
                {
                    Endpoints = [endpoint],
                    FallbackNameservers = fallback ?? [],
                    UpstreamTimeout = upstreamTimeout ?? TimeSpan.FromMilliseconds(500),
                },
                records);
            try
            {
                server.Start();
                return server;
            }
            catch (SocketException) when (attempt < Attempts)
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
    }

    /// <summary>A port the kernel just handed out for TCP on 127.0.0.1; the caller binds it on its own address.</summary>
    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
