using Mesh.Protocol.Control;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// The agent's current network map: the first (full) map of a stream, with every later delta
/// applied. A full map replaces everything; a delta's absent parts mean "unchanged".
/// </summary>
internal sealed class NetmapView
{
    private readonly Dictionary<long, MapNode> _peers = [];

    public MapNode? Self { get; private set; }
    public IReadOnlyList<FilterRule> PacketFilter { get; private set; } = [];
    public DnsConfig? Dns { get; private set; }
    public RelayMap? RelayMap { get; private set; }
    public string? Domain { get; private set; }
    public IReadOnlyCollection<MapNode> Peers => _peers.Values;
    public bool HasMap => Self is not null;

    /// <summary>Applies one message of the stream; false for a keep-alive (nothing changed).</summary>
    public bool Apply(MapResponse map)
    {
        if (map.KeepAlive && map.Self is null && map.Peers is null && map.PeersChanged is null && map.PeersRemoved is null && map.PacketFilter is null)
        {
            return false;
        }

        if (map.Peers is not null)
        {
            _peers.Clear();
            foreach (var peer in map.Peers)
            {
                _peers[peer.Id] = peer;
            }
        }

        foreach (var peer in map.PeersChanged ?? [])
        {
            _peers[peer.Id] = peer;
        }

        foreach (var id in map.PeersRemoved ?? [])
        {
            _peers.Remove(id);
        }

        Self = map.Self ?? Self;
        PacketFilter = map.PacketFilter ?? PacketFilter;
        Dns = map.Dns ?? Dns;
        RelayMap = map.RelayMap ?? RelayMap;
        Domain = map.Domain ?? Domain;
        return true;
    }
}
