namespace Mesh.Sidecar.Agent;

/// <summary>The settings of `mesh-sidecar up` (every flag also reads from a MESH_* variable).</summary>
internal sealed class AgentOptions
{
    public required Uri LoginServer { get; init; }
    public string? AuthKey { get; init; }
    public required string Hostname { get; init; }
    public IReadOnlyList<string> AdvertiseRoutes { get; init; } = [];
    public bool AdvertiseExitNode { get; init; }
    public bool AcceptRoutes { get; init; }
    public string Tun { get; init; } = "mesh0";
    public string StateDirectory { get; init; } = "/var/lib/mesh";
    public int Port { get; init; } = 41641;
    public string Socket { get; init; } = LocalApiClient.DefaultSocket;
    public int Mtu { get; init; } = 1280;
}
