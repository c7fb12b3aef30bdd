namespace Mesh.Policy;

/// <summary>Address ranges with a fixed meaning in the mesh, as Tailscale defines them.</summary>
internal static class WellKnownRanges
{
    /// <summary>
    /// What "*" means as a source: the mesh's CGNAT range 100.64.0.0/10 without 100.115.92.0/23 (reserved by
    /// Tailscale for ChromeOS VMs), and the mesh ULA fd7a:115c:a1e0::/48.
    /// </summary>
    public static IpSet MeshAddresses { get; } = Prefix("100.64.0.0/10").Except(Prefix("100.115.92.0/23")).Union(Prefix("fd7a:115c:a1e0::/48"));

    /// <summary>
    /// The public internet for autogroup:internet and exit nodes: all of IPv4 and 2000::/3, less private
    /// (RFC 1918, fc00::/7), link-local and the mesh's own ranges.
    /// </summary>
    public static IpSet Internet { get; } = Prefix("0.0.0.0/0").Union(Prefix("2000::/3"))
        .Except(IpSet.Union(new[]
        {
            "fc00::/7", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd7a:115c:a1e0::/48", "100.64.0.0/10",
            "fe80::/10", "169.254.0.0/16",
        }.Select(Prefix)));

    public static IpSet Prefix(string text) =>
        IpText.TryParsePrefix(text, out var set, out _) ? set : throw new ArgumentException(text, nameof(text));
}
