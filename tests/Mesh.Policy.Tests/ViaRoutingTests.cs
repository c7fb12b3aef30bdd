namespace Mesh.Policy.Tests;

/// <summary>
/// Route steering by <c>via</c> grants (<see cref="ICompiledPolicy.ViaRoutesFor"/>): which approved routes a node must
/// reach through routers with the via tags, and which routers those are. The rules follow Tailscale's recorded
/// netmaps (Headscale's testdata/grant_results): via-grant-v37 (two routers of one prefix, each group steered to its
/// own), v47/v48 (the router's approved route is what moves, not the grant's destination), v43 (a grant without via
/// covering the route leaves it to the global primary).
/// </summary>
public sealed class ViaRoutingTests
{
    /// <summary>Three routers of 10.33.0.0/16 (two eu, one us), one of 10.44.0.0/16, two exit nodes, three clients.</summary>
    private static readonly PolicyTopology Topology = new(
        [new PolicyUser(1, "eve", "eve@example.com"), new PolicyUser(2, "ursula", "ursula@example.com"), new PolicyUser(3, "paul", "paul@example.com")],
        [
            new PolicyNode("router-us", null, ["tag:router-us"], "100.64.0.1", "fd7a:115c:a1e0::1", ["10.33.0.0/16"], ["10.33.0.0/16"]),
            new PolicyNode("router-eu", null, ["tag:router-eu"], "100.64.0.2", "fd7a:115c:a1e0::2", ["10.33.0.0/16"], ["10.33.0.0/16"]),
            new PolicyNode("router-eu2", null, ["tag:router-eu"], "100.64.0.3", "fd7a:115c:a1e0::3", ["10.33.0.0/16"], ["10.33.0.0/16"]),
            new PolicyNode("router-44", null, ["tag:router-eu"], "100.64.0.4", "fd7a:115c:a1e0::4", ["10.44.0.0/16"], ["10.44.0.0/16"]),
            new PolicyNode("exit-eu", null, ["tag:exit-eu"], "100.64.0.5", "fd7a:115c:a1e0::5", ["0.0.0.0/0", "::/0"], ["0.0.0.0/0", "::/0"]),
            new PolicyNode("exit-us", null, ["tag:exit-us"], "100.64.0.6", "fd7a:115c:a1e0::6", ["0.0.0.0/0", "::/0"], ["0.0.0.0/0", "::/0"]),
            new PolicyNode("eu-laptop", "eve", [], "100.64.0.10", "fd7a:115c:a1e0::10", [], []),
            new PolicyNode("us-laptop", "ursula", [], "100.64.0.11", "fd7a:115c:a1e0::11", [], []),
            new PolicyNode("plain-laptop", "paul", [], "100.64.0.12", "fd7a:115c:a1e0::12", [], []),
        ]);

    private const string Defs = """
        "groups": {"group:eu": ["eve@example.com"], "group:us": ["ursula@example.com"]},
        "tagOwners": {"tag:router-eu": ["eve@example.com"], "tag:router-us": ["eve@example.com"], "tag:exit-eu": ["eve@example.com"], "tag:exit-us": ["eve@example.com"]},
        """;

    private const string EuUsPlain = """
        [{"src": ["group:eu"], "dst": ["10.33.0.0/16"], "ip": ["*"], "via": ["tag:router-eu"]},
         {"src": ["group:us"], "dst": ["10.33.0.0/16"], "ip": ["*"], "via": ["tag:router-us"]},
         {"src": ["paul@example.com"], "dst": ["10.33.0.0/16"], "ip": ["*"]}]
        """;

    private static ICompiledPolicy Compile(string grants) =>
        PolicyEngine.Compile("{" + Defs + "\"grants\": " + grants + "}", Topology);

    private static string Describe(ViaRoutes via) =>
        string.Join("; ", via.Subnets.Select(s => $"{s.Prefix} -> {string.Join(",", s.Routers)}"))
        + (via.ExitNodes is { } exits ? $"; exit -> {string.Join(",", exits)}" : "");

    [Fact]
    public void TwoGroupsTwoTags_EachSteeredToItsOwnRouters_PlainGrantNot()
    {
        var p = Compile(EuUsPlain);

        Assert.Equal("10.33.0.0/16 -> router-eu,router-eu2", Describe(p.ViaRoutesFor("eu-laptop")));
        Assert.Equal("10.33.0.0/16 -> router-us", Describe(p.ViaRoutesFor("us-laptop")));
        Assert.Same(ViaRoutes.None, p.ViaRoutesFor("plain-laptop"));
        Assert.Same(ViaRoutes.None, p.ViaRoutesFor("router-eu"));
        Assert.Same(ViaRoutes.None, p.ViaRoutesFor("no-such-node"));
    }

    [Theory]
    [InlineData("10.33.5.0/24")] // via-grant-v48: narrower than the route
    [InlineData("10.0.0.0/8")] // via-grant-v47: wider than the route
    [InlineData("10.33.0.0/16")]
    public void Destination_TheRoutersApprovedRouteIsWhatIsSteered(string dst)
    {
        var p = Compile($$$"""[{"src": ["group:eu"], "dst": ["{{{dst}}}"], "ip": ["tcp:443"], "via": ["tag:router-eu"]}]""");

        var expected = dst == "10.0.0.0/8"
            ? "10.33.0.0/16 -> router-eu,router-eu2; 10.44.0.0/16 -> router-44"
            : "10.33.0.0/16 -> router-eu,router-eu2";
        Assert.Equal(expected, Describe(p.ViaRoutesFor("eu-laptop")));
    }

    [Fact]
    public void PlainGrantCoveringTheWholeRoute_GlobalPrimaryServesIt()
    {
        // via-grant-v43: the same source also has a grant without via for the route: any router will do.
        var p = Compile("""
            [{"src": ["group:eu"], "dst": ["10.33.0.0/16", "10.44.0.0/16"], "ip": ["*"], "via": ["tag:router-eu"]},
             {"src": ["eve@example.com"], "dst": ["10.0.0.0/8"], "ip": ["tcp:22"]}]
            """);

        Assert.Same(ViaRoutes.None, p.ViaRoutesFor("eu-laptop"));
    }

    [Fact]
    public void PlainGrantCoveringPartOfTheRoute_StillSteered()
    {
        // The global primary would drop what only the via grant allows; the via router accepts both grants.
        var p = Compile("""
            [{"src": ["group:eu"], "dst": ["10.33.0.0/16"], "ip": ["*"], "via": ["tag:router-eu"]},
             {"src": ["group:eu"], "dst": ["10.33.1.0/24"], "ip": ["*"]}]
            """);

        Assert.Equal("10.33.0.0/16 -> router-eu,router-eu2", Describe(p.ViaRoutesFor("eu-laptop")));
        Assert.Contains("100.64.0.10,fd7a:115c:a1e0::10 -> 10.33.1.0/24:0-65535", Topo.Lines(p, "router-us"));
    }

    [Fact]
    public void NoRouterWithTheViaTagHasTheRoute_SteeredToNobody()
    {
        var p = Compile("""[{"src": ["group:us"], "dst": ["10.44.0.0/16"], "ip": ["*"], "via": ["tag:router-us"]}]""");

        var route = Assert.Single(p.ViaRoutesFor("us-laptop").Subnets);
        Assert.Equal("10.44.0.0/16", route.Prefix);
        Assert.Empty(route.Routers);
    }

    [Fact]
    public void TwoViaGrantsForOneRoute_CandidatesAreTheUnionOfTheirTags()
    {
        var p = Compile("""
            [{"src": ["group:eu"], "dst": ["10.33.0.0/16"], "ip": ["tcp:80"], "via": ["tag:router-eu"]},
             {"src": ["eve@example.com"], "dst": ["10.33.0.0/24"], "ip": ["tcp:443"], "via": ["tag:router-us"]}]
            """);

        Assert.Equal("10.33.0.0/16 -> router-us,router-eu,router-eu2", Describe(p.ViaRoutesFor("eu-laptop")));
    }

    [Fact]
    public void InternetVia_OnlyTheTaggedExitNodes_UnlessAPlainGrantReachesTheInternet()
    {
        var p = Compile("""
            [{"src": ["group:eu"], "dst": ["autogroup:internet"], "ip": ["*"], "via": ["tag:exit-eu"]},
             {"src": ["group:us"], "dst": ["autogroup:internet"], "ip": ["*"], "via": ["tag:exit-us"]},
             {"src": ["group:us"], "dst": ["autogroup:internet"], "ip": ["*"]}]
            """);

        var eu = p.ViaRoutesFor("eu-laptop");
        Assert.Empty(eu.Subnets);
        Assert.Equal(["exit-eu"], eu.ExitNodes);
        Assert.Same(ViaRoutes.None, p.ViaRoutesFor("us-laptop"));
        Assert.Same(ViaRoutes.None, p.ViaRoutesFor("plain-laptop"));
    }

    [Fact]
    public void ViaServedRoutes_TheViaRoutersRoutesThatAViaGrantReaches()
    {
        var p = Compile(EuUsPlain);

        Assert.Equal(["10.33.0.0/16"], p.ViaServedRoutes("router-eu"));
        Assert.Equal(["10.33.0.0/16"], p.ViaServedRoutes("router-eu2"));
        Assert.Equal(["10.33.0.0/16"], p.ViaServedRoutes("router-us"));
        Assert.Empty(p.ViaServedRoutes("router-44")); // tag:router-eu, but no via grant reaches 10.44.0.0/16
        Assert.Empty(p.ViaServedRoutes("eu-laptop"));
    }

    [Fact]
    public void PolicyWithoutVia_NothingSteered()
    {
        var p = Compile("""[{"src": ["*"], "dst": ["*"], "ip": ["*"]}]""");

        Assert.All(Topology.Nodes, n => Assert.Same(ViaRoutes.None, p.ViaRoutesFor(n.Name)));
        Assert.All(Topology.Nodes, n => Assert.Empty(p.ViaServedRoutes(n.Name)));
        var open = PolicyEngine.Compile("{}", Topology);
        Assert.Same(ViaRoutes.None, open.ViaRoutesFor("eu-laptop"));
    }

    [Fact]
    public void ViaRoutesFor_IsMadeOncePerNodeAndShared()
    {
        var p = Compile(EuUsPlain);

        Assert.Same(p.ViaRoutesFor("eu-laptop"), p.ViaRoutesFor("eu-laptop"));
        Assert.Same(p.ViaServedRoutes("router-eu"), p.ViaServedRoutes("router-eu"));
    }
}
