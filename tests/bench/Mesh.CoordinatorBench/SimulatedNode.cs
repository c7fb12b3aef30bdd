using System.Net;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.CoordinatorBench;

/// <summary>
/// One simulated node: its own machine and node keys and a <see cref="ControlClient"/> (so its own
/// control-channel session), sharing one connection pool with every other node of the run.
/// </summary>
internal sealed class SimulatedNode : IDisposable
{
    public SimulatedNode(string hostname, Uri server, MachineKey serverKey, HttpMessageHandler pool)
    {
        Hostname = hostname;
        var machinePrivate = NewKey();
        var nodePublic = new byte[X25519.KeySize];
        X25519.PublicKey(NewKey(), nodePublic);
        NodeKey = new NodeKey(new NoisePublicKey(nodePublic));
        Client = new ControlClient(server, machinePrivate, serverKey, new SharedPool(pool));
    }

    public string Hostname { get; }
    public NodeKey NodeKey { get; }
    public ControlClient Client { get; }

    public MapRequest StreamRequest(int index) => new()
    {
        NodeKey = NodeKey,
        Endpoints = [$"198.18.{index / 250 % 256}.{index % 250 + 1}:41641"],
        Hostinfo = new Hostinfo { Hostname = Hostname },
    };

    /// <summary>The pool every simulated node sends through: loopback only, no proxy, no limit on connections (a map stream holds one).</summary>
    public static SocketsHttpHandler NewPool() => new()
    {
        UseProxy = false,
        MaxConnectionsPerServer = int.MaxValue,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        AutomaticDecompression = DecompressionMethods.None,
    };

    private static byte[] NewKey()
    {
        var key = new byte[X25519.KeySize];
        X25519.GeneratePrivateKey(key);
        return key;
    }

    public void Dispose() => Client.Dispose();

    /// <summary>Lends the shared pool to one client: disposing the client leaves the pool open.</summary>
    private sealed class SharedPool(HttpMessageHandler pool) : DelegatingHandler(pool)
    {
        protected override void Dispose(bool disposing)
        {
        }
    }
}
