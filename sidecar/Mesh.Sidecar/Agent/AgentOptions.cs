namespace Mesh.Sidecar.Agent;

/// <summary>The settings of `mesh-sidecar up` (every flag also reads from a MESH_* variable).</summary>
internal sealed class AgentOptions
{
    public required Uri LoginServer { get; init; }
    public string? AuthKey { get; init; }
    public required string Hostname { get; init; }
    public IReadOnlyList<string> AdvertiseRoutes { get; init; } = [];
    public bool AdvertiseExitNode { get; init; }

    /// <summary>Tags the node asks the coordinator for (advertise-tags); the policy's tagOwners decide.</summary>
    public IReadOnlyList<string> AdvertiseTags { get; init; } = [];
    public bool AcceptRoutes { get; init; }

    /// <summary>A peer (name, FQDN or mesh IP) to send all non-mesh traffic through; it must be an approved exit node.</summary>
    public string? ExitNode { get; init; }
    public string Tun { get; init; } = "mesh0";
    public string StateDirectory { get; init; } = "/var/lib/mesh";
    public int Port { get; init; } = 41641;
    public string Socket { get; init; } = LocalApiClient.DefaultSocket;
    public int Mtu { get; init; } = 1280;

    /// <summary>Health (/healthz) and Prometheus metrics (/metrics) port; 0 turns them off.</summary>
    public int MetricsPort { get; init; } = 9001;

    /// <summary>Serve MagicDNS at 100.100.100.100 and fd7a:115c:a1e0::53 (default on).</summary>
    public bool AcceptDns { get; init; } = true;

    /// <summary>A resolv.conf to point at MagicDNS while up (and restore after); null leaves it alone.</summary>
    public string? ResolvConfPath { get; init; }
}
