namespace Mesh.Policy.Tests;

/// <summary>A small topology shared by the unit tests: two users, a tagged server, a subnet router, an exit node.</summary>
internal static class Topo
{
    public static PolicyTopology Small { get; } = new(
        [new PolicyUser(1, "odin", "odin@example.com"), new PolicyUser(2, "thor", "thor@example.org")],
        [
            new PolicyNode("laptop", "odin", [], "100.64.0.1", "fd7a:115c:a1e0::1", [], []),
            new PolicyNode("phone", "odin", [], "100.64.0.2", "fd7a:115c:a1e0::2", [], []),
            new PolicyNode("desk", "thor", [], "100.64.0.3", "fd7a:115c:a1e0::3", [], []),
            new PolicyNode("server", null, ["tag:server"], "100.64.0.4", "fd7a:115c:a1e0::4", [], []),
            new PolicyNode("router", null, ["tag:router"], "100.64.0.5", "fd7a:115c:a1e0::5", ["10.33.0.0/16"], ["10.33.0.0/16"]),
            new PolicyNode("exit", null, ["tag:exit"], "100.64.0.6", "fd7a:115c:a1e0::6", ["0.0.0.0/0", "::/0"], ["0.0.0.0/0", "::/0"]),
        ]);

    public const string Defs = """
        "groups": {"group:admins": ["odin@example.com"], "group:devs": ["thor@example.org", "odin@example.com"]},
        "hosts": {"web": "100.64.0.4", "lan": "10.33.0.0/16"},
        "tagOwners": {"tag:server": ["group:admins"], "tag:router": ["odin@example.com"], "tag:exit": ["odin@example.com"]},
        """;

    public static ICompiledPolicy Compile(string acls, string extra = "") =>
        PolicyEngine.Compile("{" + Defs + extra + "\"acls\": " + acls + "}", Small);

    public static PolicyException Refused(string acls, string extra = "") =>
        Assert.Throws<PolicyException>(() => Compile(acls, extra));

    /// <summary>The node's filter as "src -> ip:first-last/protos" lines, for readable asserts.</summary>
    public static List<string> Lines(ICompiledPolicy p, string node) =>
        p.FilterFor(node)?.SelectMany(r => r.DstPorts.Select(d =>
            $"{string.Join(",", r.SrcIPs)} -> {d.IP}:{d.Ports.First}-{d.Ports.Last}" + (r.IPProto is null ? "" : "/" + string.Join(",", r.IPProto)))).ToList() ?? [];
}
