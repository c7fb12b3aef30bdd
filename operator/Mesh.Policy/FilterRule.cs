using System.Text.Json.Serialization;

namespace Mesh.Policy;

/// <summary>
/// One packet-filter rule in the shape Tailscale clients receive (tailcfg.FilterRule): traffic from any of
/// <see cref="SrcIPs"/> to any of <see cref="DstPorts"/> using one of <see cref="IPProto"/> is accepted.
/// <see cref="SrcIPs"/> entries are addresses, CIDRs, ranges (<c>a-b</c>) or <c>*</c>.
/// A null <see cref="IPProto"/> means the default set: TCP, UDP, ICMP and ICMPv6.
/// </summary>
public sealed record FilterRule(
    [property: JsonPropertyName("SrcIPs")] IReadOnlyList<string> SrcIPs,
    [property: JsonPropertyName("DstPorts")] IReadOnlyList<NetPortRange> DstPorts,
    [property: JsonPropertyName("IPProto"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<int>? IPProto);

/// <summary>A destination: an address, a CIDR or <c>*</c>, and a port range.</summary>
public sealed record NetPortRange(
    [property: JsonPropertyName("IP")] string IP,
    [property: JsonPropertyName("Ports")] PortRange Ports);

/// <summary>An inclusive port range; 0-65535 is "any port".</summary>
public readonly record struct PortRange(
    [property: JsonPropertyName("First")] int First,
    [property: JsonPropertyName("Last")] int Last)
{
    public static PortRange Any => new(0, 65535);

    public bool Contains(int port) => port >= First && port <= Last;
}
