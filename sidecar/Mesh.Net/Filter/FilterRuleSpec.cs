namespace Mesh.Net.Filter;

/// <summary>
/// One allow rule as the coordinator sends it (the FilterRule shape of the control protocol),
/// restated here so that Mesh.Net does not depend on the protocol project; the agent maps one to
/// the other.
/// </summary>
/// <param name="SrcIPs">
/// Who may send: addresses (<c>100.64.0.1</c>), CIDRs (<c>10.0.0.0/8</c>, host bits ignored),
/// inclusive ranges (<c>100.64.0.1-100.64.0.9</c>), or <c>*</c> for every IPv4 and IPv6 address.
/// </param>
/// <param name="DstPorts">Where to: an address, CIDR, range or <c>*</c>, and an inclusive port range.</param>
/// <param name="IPProto">
/// IP protocol numbers; null or empty means TCP (6), UDP (17), ICMP (1) and ICMPv6 (58).
/// </param>
public sealed record FilterRuleSpec(
    IReadOnlyList<string> SrcIPs,
    IReadOnlyList<FilterDestination> DstPorts,
    IReadOnlyList<int>? IPProto = null);

/// <summary>One destination of a <see cref="FilterRuleSpec"/>: an address set and ports First..Last.</summary>
public readonly record struct FilterDestination(string Ip, int First, int Last)
{
    /// <summary>Every port (0-65535) of <paramref name="ip"/>.</summary>
    public static FilterDestination AllPorts(string ip) => new(ip, 0, ushort.MaxValue);
}
