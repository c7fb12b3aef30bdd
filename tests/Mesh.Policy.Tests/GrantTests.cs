namespace Mesh.Policy.Tests;

/// <summary>
/// The <c>grants</c> rules Tailscale's control plane enforces: what it refuses (with its wording, which the messages
/// carry so a Tailscale or Headscale user recognises them, plus what to write instead), autogroup:danger-all,
/// <c>user:*@domain</c>, and routing through <c>via</c> routers.
/// </summary>
public sealed class GrantTests
{
    private static ICompiledPolicy Compile(string grants, PolicyTopology? topology = null) =>
        PolicyEngine.Compile("{" + Topo.Defs + "\"grants\": " + grants + "}", topology ?? Topo.Small);

    private static PolicyException Refused(string grants) =>
        Assert.Throws<PolicyException>(() => Compile(grants));

    [Theory]
    [InlineData("""[{"src": ["*"], "dst": ["*"], "app": {"https://example.com/cap/x": [{}]}}]""", "capability name must have the form {domain}/{path}")]
    [InlineData("""[{"src": ["*"], "dst": ["*"], "app": {"nodomain": [{}]}}]""", "capability name must have the form {domain}/{path}")]
    [InlineData("""[{"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/ingress": [{}]}}]""", "capability name must not be in the tailscale.com domain")]
    [InlineData("""[{"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/drive-sharer": [{}]}}]""", "capability name must not be in the tailscale.com domain")]
    [InlineData("""[{"src": ["*"], "dst": ["*"], "app": {"example.com/cap/x": {}}}]""", "grants[0].app \"example.com/cap/x\": must be a list")]
    [InlineData("""[{"src": ["*"], "dst": ["*"]}]""", "grants[0]: ip and app can not both be empty")]
    [InlineData("""[{"src": ["*"], "dst": ["*"], "ip": [], "app": {}}]""", "grants[0]: ip and app can not both be empty")]
    [InlineData("""[{"src": ["*"], "dst": ["autogroup:self"], "ip": ["*"]}]""", "grants[0].src[0] \"*\": autogroup:self can only be used with users, groups, or supported autogroups (a grant to autogroup:self cannot have \"*\" as a source: use autogroup:member)")]
    [InlineData("""[{"src": ["autogroup:member", "tag:server"], "dst": ["autogroup:self"], "ip": ["22"]}]""", "grants[0].src[1] \"tag:server\": autogroup:self can only be used with users, groups, or supported autogroups")]
    [InlineData("""[{"src": ["*"], "dst": ["tag:server"], "ip": ["icmp"]}]""", "grants[0].ip[0] \"icmp\": port range \"icmp\": invalid first integer")]
    [InlineData("""[{"src": ["*"], "dst": ["tag:server"], "ip": ["icmp"]}]""", "write \"icmp:*\"")]
    [InlineData("""[{"src": ["*"], "dst": ["tag:server"], "ip": ["tcp:0"]}]""", "port range \"0\": first port must be >0, or use '*' for wildcard")]
    [InlineData("""[{"src": ["*"], "dst": ["tag:server"], "ip": ["0-80"]}]""", "port range \"0-80\": first port must be >0")]
    [InlineData("""[{"src": ["*"], "dst": ["tag:server"], "ip": [":22"]}]""", "missing protocol")]
    [InlineData("""[{"src": ["*"], "dst": ["0.0.0.0/0"], "ip": ["*"]}]""", "grants[0].dst[0]: dst \"0.0.0.0/0\": to allow all IP addresses, use \"*\" or \"autogroup:internet\"")]
    [InlineData("""[{"src": ["*"], "dst": ["::/0"], "ip": ["*"], "via": ["tag:exit"]}]""", "dst \"::/0\": to allow all IP addresses, use \"*\" or \"autogroup:internet\"")]
    [InlineData("""[{"src": ["*"], "dst": ["autogroup:internet"], "app": {"example.com/cap/x": [{}]}}]""", "grants[0]: cannot use app grants with autogroup:internet")]
    [InlineData("""[{"src": ["*"], "dst": ["autogroup:danger-all"], "ip": ["*"]}]""", "cannot use autogroup:danger-all as a dst")]
    [InlineData("""[{"src": ["*"], "dst": ["lan"], "ip": ["*"], "via": ["autogroup:tagged"]}]""", "grants[0].via[0] \"autogroup:tagged\": via can only be a tag")]
    [InlineData("""[{"src": ["*"], "dst": ["lan"], "ip": ["*"], "via": ["tag:nope"]}]""", "grants[0].via[0]: tag \"tag:nope\" not found")]
    [InlineData("""[{"src": ["user:odin"], "dst": ["*"], "ip": ["*"]}]""", "\"user:odin\" is not a user: write user:alice@example.com")]
    public void Validate_WhatTailscaleRefuses_RefusedInItsWords(string grants, string expected)
    {
        var e = Refused(grants);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tailscale.com/cap/drive")]
    [InlineData("tailscale.com/cap/kubernetes")]
    [InlineData("tailscale.com/cap/relay")]
    [InlineData("tailscale.com/cap/webui")]
    [InlineData("example.com/cap/a/b/c")]
    [InlineData("my-company.internal/cap/access")]
    public void Validate_GrantableCapability_Accepted(string name)
    {
        var p = Compile($$$"""[{"src": ["*"], "dst": ["tag:server"], "app": {"{{{name}}}": [{}]}}]""");
        Assert.Null(p.FilterFor("server"));
    }

    [Fact]
    public void Validate_WildcardWithSelf_AcceptedInAclsRefusedInGrants()
    {
        var acl = Topo.Compile("""[{"action": "accept", "src": ["*"], "dst": ["autogroup:self:*"]}]""");
        Assert.NotNull(acl.FilterFor("laptop"));
        Refused("""[{"src": ["*"], "dst": ["autogroup:self"], "ip": ["*"]}]""");
    }

    [Fact]
    public void Validate_PortZeroInAcl_Refused()
    {
        var e = Topo.Refused("""[{"action": "accept", "src": ["*"], "dst": ["tag:server:0"]}]""");
        Assert.Contains("first port must be >0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DangerAll_Source_FilterSaysStar()
    {
        var p = Compile("""[{"src": ["autogroup:danger-all"], "dst": ["tag:server"], "ip": ["tcp:22"]}]""");
        Assert.Equal(["* -> 100.64.0.4:22-22/6", "* -> fd7a:115c:a1e0::4:22-22/6"], Topo.Lines(p, "server"));
        Assert.Contains("server", p.PeersOf("desk"));
    }

    [Fact]
    public void DangerAll_InAclSource_Accepted()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["autogroup:danger-all"], "dst": ["web:80"]}]""");
        Assert.Equal(["* -> 100.64.0.4:80-80"], Topo.Lines(p, "server"));
    }

    [Fact]
    public void UserDomainWildcard_SelectsUsersOfThatDomainOnly()
    {
        var p = Compile("""[{"src": ["user:*@example.com"], "dst": ["tag:server"], "ip": ["tcp:22"]}]""");
        var src = p.FilterFor("server")!.Single().SrcIPs;
        Assert.Equal(["100.64.0.1-100.64.0.2", "fd7a:115c:a1e0::1-fd7a:115c:a1e0::2"], src);
    }

    [Fact]
    public void UserPrefix_SameAsBareEmail()
    {
        var a = Compile("""[{"src": ["user:thor@example.org"], "dst": ["tag:server"], "ip": ["22"]}]""");
        var b = Compile("""[{"src": ["thor@example.org"], "dst": ["tag:server"], "ip": ["22"]}]""");
        Assert.Equal(Topo.Lines(b, "server"), Topo.Lines(a, "server"));
        Assert.Equal(["100.64.0.3", "fd7a:115c:a1e0::3"], a.FilterFor("server")![0].SrcIPs);
    }

    /// <summary>Two routers for 10.33.0.0/16, one tagged for via; a client; a via-tagged router for another subnet.</summary>
    private static readonly PolicyTopology ViaTopology = new(
        [new PolicyUser(1, "odin", "odin@example.com")],
        [
            new PolicyNode("client", "odin", [], "100.64.0.1", "fd7a:115c:a1e0::1", [], []),
            new PolicyNode("router", null, ["tag:router"], "100.64.0.5", "fd7a:115c:a1e0::5", ["10.33.0.0/16"], ["10.33.0.0/16"]),
            new PolicyNode("other", null, ["tag:server"], "100.64.0.7", "fd7a:115c:a1e0::7", ["10.33.0.0/16"], ["10.33.0.0/16"]),
            new PolicyNode("far", null, ["tag:router"], "100.64.0.8", "fd7a:115c:a1e0::8", ["172.16.0.0/16"], ["172.16.0.0/16"]),
        ]);

    [Theory]
    [InlineData("10.0.0.0/8")]
    [InlineData("10.33.5.0/24")]
    [InlineData("10.33.0.0/16")]
    public void Via_RouterWhoseRouteOverlapsDestination_AcceptsDestinationAsWritten(string dst)
    {
        var p = Compile($$$"""[{"src": ["odin@example.com"], "dst": ["{{{dst}}}"], "ip": ["tcp:443"], "via": ["tag:router"]}]""", ViaTopology);
        Assert.Equal([$"100.64.0.1,fd7a:115c:a1e0::1 -> {dst}:443-443/6"], Topo.Lines(p, "router"));
        Assert.Null(p.FilterFor("other"));
        Assert.Null(p.FilterFor("far"));
        Assert.Null(p.FilterFor("client"));
    }

    [Fact]
    public void Via_Peers_SourcesSeeOnlyTheRoutersThatCarryTheDestination()
    {
        var p = Compile("""[{"src": ["odin@example.com"], "dst": ["10.33.0.0/16"], "ip": ["*"], "via": ["tag:router"]}]""", ViaTopology);
        Assert.Equal(["router"], p.PeersOf("client"));
        Assert.Equal(["client"], p.PeersOf("router"));
        Assert.Empty(p.PeersOf("other"));
        Assert.True(p.CanSee("client", "router"));
        Assert.False(p.CanSee("client", "other"));
        Assert.False(p.CanSee("client", "far"));
    }

    [Fact]
    public void Via_NoRouterCarriesDestination_NobodyGetsRule()
    {
        var p = Compile("""[{"src": ["odin@example.com"], "dst": ["192.168.0.0/16"], "ip": ["*"], "via": ["tag:router"]}]""", ViaTopology);
        Assert.All(ViaTopology.Nodes, n => Assert.Null(p.FilterFor(n.Name)));
        Assert.Empty(p.PeersOf("client"));
    }
}
