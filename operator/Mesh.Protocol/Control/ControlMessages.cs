using System.Text.Json.Serialization;

namespace Mesh.Protocol.Control;

/// <summary>The HTTP paths of the node-facing API of the coordinator.</summary>
public static class ControlPaths
{
    /// <summary>GET: the coordinator's control public key (<see cref="ServerKeyResponse"/>), which clients pin.</summary>
    public const string Key = "/key";

    /// <summary>POST: a control-channel handshake initiation (148 bytes) → response (92 bytes).</summary>
    public const string Handshake = "/machine/handshake";

    /// <summary>POST: sealed <see cref="RegisterRequest"/> → sealed <see cref="RegisterResponse"/>.</summary>
    public const string Register = "/machine/register";

    /// <summary>POST: sealed <see cref="MapRequest"/> → one sealed <see cref="MapResponse"/>, or a stream of framed ones.</summary>
    public const string Map = "/machine/map";

    public const string Health = "/healthz";
}

public sealed record ServerKeyResponse(MachineKey PublicKey);

/// <summary>Registers (or re-registers) the node of the authenticated machine.</summary>
public sealed record RegisterRequest
{
    public required NodeKey NodeKey { get; init; }

    /// <summary>The node key being replaced when the node rotates its key.</summary>
    public NodeKey? OldNodeKey { get; init; }

    /// <summary>A pre-auth key; needed unless this machine is already registered and not expired.</summary>
    public string? AuthKey { get; init; }

    public required string Hostname { get; init; }

    public string? Os { get; init; }

    /// <summary>
    /// Tags the node asks for (advertise-tags): granted when the node's user owns every one under the policy's
    /// <c>tagOwners</c>, or, with a tagged auth key, when they are the key's tags; otherwise the registration is refused.
    /// Empty asks for nothing (a tagged node stays tagged).
    /// </summary>
    public IReadOnlyList<string> RequestTags { get; init; } = [];

    /// <summary>Ends the node's registration (logout); the other fields are then ignored.</summary>
    public bool Logout { get; init; }
}

public sealed record RegisterResponse
{
    public long NodeId { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public bool Authorized { get; init; }

    /// <summary>Why the registration was refused, when <see cref="Authorized"/> is false.</summary>
    public string? Error { get; init; }

    public IReadOnlyList<string> Addresses { get; init; } = [];
    public string? Name { get; init; }
    public DateTimeOffset? NodeKeyExpiry { get; init; }
}

/// <summary>What a node reports about itself, sent with every map request.</summary>
public sealed record Hostinfo
{
    public string? Hostname { get; init; }
    public string? Os { get; init; }

    /// <summary>Subnet routes the node offers (advertise-routes), as CIDR prefixes.</summary>
    public IReadOnlyList<string> RoutableIps { get; init; } = [];

    /// <summary>The node offers to be an exit node (advertises 0.0.0.0/0 and ::/0).</summary>
    public bool AdvertiseExitNode { get; init; }

    /// <summary>
    /// Tags the node asks for (advertise-tags); when they differ from the node's tags the coordinator re-evaluates them
    /// against <c>tagOwners</c> and re-tags the node, or refuses the request. Empty asks for nothing.
    /// </summary>
    public IReadOnlyList<string> RequestTags { get; init; } = [];
}

/// <summary>Asks for the node's network map; with <see cref="Stream"/>, keeps the response open and receives every change.</summary>
public sealed record MapRequest
{
    public required NodeKey NodeKey { get; init; }
    public DiscoKey? DiscoKey { get; init; }

    /// <summary>The node's candidate UDP endpoints ("ip:port", "[v6]:port"), local and public.</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = [];

    /// <summary>The relay region the node uses as home, if any.</summary>
    public int? HomeRelay { get; init; }

    public Hostinfo? Hostinfo { get; init; }
    public bool Stream { get; init; }

    /// <summary>Only updates the node's endpoints/hostinfo; no map is returned.</summary>
    public bool ReadOnly { get; init; }

    public int Version { get; init; } = 1;
}

/// <summary>
/// A network map, or a change to the last one sent on the same stream: a full response carries
/// <see cref="Peers"/>; a delta carries <see cref="PeersChanged"/>/<see cref="PeersRemoved"/>, and
/// omits (null) any part that did not change. A keep-alive carries only <see cref="KeepAlive"/>.
/// </summary>
public sealed record MapResponse
{
    public long Seq { get; init; }
    public bool KeepAlive { get; init; }
    public MapNode? Self { get; init; }
    public IReadOnlyList<MapNode>? Peers { get; init; }
    public IReadOnlyList<MapNode>? PeersChanged { get; init; }
    public IReadOnlyList<long>? PeersRemoved { get; init; }

    /// <summary>Rules for decrypted inbound packets; an empty list accepts nothing.</summary>
    public IReadOnlyList<FilterRule>? PacketFilter { get; init; }

    public DnsConfig? Dns { get; init; }
    public RelayMap? RelayMap { get; init; }
    public string? Domain { get; init; }
}

public sealed record MapNode
{
    public long Id { get; init; }

    /// <summary>The node's MagicDNS label (unique in the mesh).</summary>
    public required string Name { get; init; }

    public required string Fqdn { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public required NodeKey NodeKey { get; init; }
    public MachineKey? MachineKey { get; init; }
    public DiscoKey? DiscoKey { get; init; }

    /// <summary>The node's own mesh addresses as host prefixes (100.64.0.1/32, fd7a:…/128).</summary>
    public IReadOnlyList<string> Addresses { get; init; } = [];

    /// <summary>What the node may send from: its addresses plus approved subnet routes and, for exit nodes, the default routes.</summary>
    public IReadOnlyList<string> AllowedIps { get; init; } = [];

    public IReadOnlyList<string> Endpoints { get; init; } = [];
    public int? HomeRelay { get; init; }
    public bool Online { get; init; }
    public DateTimeOffset? LastSeen { get; init; }
    public DateTimeOffset? KeyExpiry { get; init; }
    public bool Expired { get; init; }

    /// <summary>Approved subnet routes this node serves.</summary>
    public IReadOnlyList<string> PrimaryRoutes { get; init; } = [];

    /// <summary>Approved as an exit node.</summary>
    public bool ExitNode { get; init; }
}

/// <summary>One packet-filter rule, in Tailscale's FilterRule shape.</summary>
public sealed record FilterRule
{
    [JsonPropertyName("SrcIPs")]
    public IReadOnlyList<string> SrcIPs { get; init; } = [];

    [JsonPropertyName("DstPorts")]
    public IReadOnlyList<NetPortRange> DstPorts { get; init; } = [];

    /// <summary>IP protocol numbers; empty means TCP, UDP, ICMP and ICMPv6.</summary>
    [JsonPropertyName("IPProto")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? IPProto { get; init; }
}

public sealed record NetPortRange
{
    [JsonPropertyName("IP")]
    public required string IP { get; init; }

    [JsonPropertyName("Ports")]
    public required PortRange Ports { get; init; }
}

public sealed record PortRange
{
    [JsonPropertyName("First")]
    public int First { get; init; }

    [JsonPropertyName("Last")]
    public int Last { get; init; }
}

public sealed record DnsConfig
{
    public bool MagicDns { get; init; }
    public string? BaseDomain { get; init; }
    public IReadOnlyList<string> Nameservers { get; init; } = [];
    public IReadOnlyList<string> SearchDomains { get; init; } = [];
    public IReadOnlyList<DnsRecord> ExtraRecords { get; init; } = [];
}

public sealed record DnsRecord(string Name, string Type, string Value);

public sealed record RelayMap
{
    public IReadOnlyList<RelayRegion> Regions { get; init; } = [];
}

public sealed record RelayRegion
{
    public int RegionId { get; init; }
    public required string RegionCode { get; init; }
    public string? Name { get; init; }
    public IReadOnlyList<RelayNode> Nodes { get; init; } = [];
}

public sealed record RelayNode
{
    public required string Name { get; init; }

    /// <summary>The relay's URL (e.g. http://coordinator:8080/derp).</summary>
    public required string Url { get; init; }

    /// <summary>The STUN server next to it ("host:3478"), if any.</summary>
    public string? StunEndpoint { get; init; }

    /// <summary>
    /// The same STUN server on a second port ("host:3479"; RFC 5780's alternate port), if any. Nodes
    /// learn their public endpoint from <see cref="StunEndpoint"/>; they ask this one too only to
    /// compare the two mappings (a NAT that maps per destination port gives two different ones).
    /// </summary>
    public string? StunAlternateEndpoint { get; init; }
}

/// <summary>An error from the node API, in the body of a 4xx reply (plain JSON, or sealed once the session exists).</summary>
public sealed record ControlError(string Error);

/// <summary>Source-generated JSON for every control message, so the AOT-compiled agent needs no reflection.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ServerKeyResponse))]
[JsonSerializable(typeof(RegisterRequest))]
[JsonSerializable(typeof(RegisterResponse))]
[JsonSerializable(typeof(MapRequest))]
[JsonSerializable(typeof(Hostinfo))]
[JsonSerializable(typeof(MapResponse))]
[JsonSerializable(typeof(ControlError))]
public sealed partial class ControlJsonContext : JsonSerializerContext;
