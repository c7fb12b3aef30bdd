namespace Mesh.Policy.Tests;

public sealed class PolicyEngineTests
{
    [Fact]
    public void FilterFor_UserToTag_OnlyTaggedNodeGetsRule()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["thor@example.org"], "dst": ["tag:server:22"]}]""");
        Assert.Equal(
            ["100.64.0.3,fd7a:115c:a1e0::3 -> 100.64.0.4:22-22", "100.64.0.3,fd7a:115c:a1e0::3 -> fd7a:115c:a1e0::4:22-22"],
            Topo.Lines(p, "server"));
        Assert.Null(p.FilterFor("desk"));
        Assert.Null(p.FilterFor("no-such-node"));
    }

    [Fact]
    public void FilterFor_GroupAndMember_ExcludeTaggedSources()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["autogroup:member"], "dst": ["group:admins:80"]}]""");
        var lines = Topo.Lines(p, "laptop");
        Assert.All(lines, l => Assert.DoesNotContain("100.64.0.4", l.Split(" -> ")[0], StringComparison.Ordinal));
        // Adjacent addresses print as one range, which clients accept in SrcIPs.
        Assert.Contains("100.64.0.1-100.64.0.3,fd7a:115c:a1e0::1-fd7a:115c:a1e0::3 -> 100.64.0.1:80-80", lines);
        Assert.Null(p.FilterFor("desk"));
    }

    [Fact]
    public void FilterFor_WildcardSource_IsMeshRangesPlusApprovedRoutes()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["*"], "dst": ["*:*"]}]""");
        var rule = Assert.Single(p.FilterFor("desk")!);
        Assert.Equal(["10.33.0.0/16", "100.64.0.0-100.115.91.255", "100.115.94.0-100.127.255.255", "fd7a:115c:a1e0::/48"], rule.SrcIPs);
        Assert.Equal("*", Assert.Single(rule.DstPorts).IP);
        Assert.Null(rule.IPProto);
    }

    [Fact]
    public void FilterFor_SubnetDestination_GoesToRouterOnly()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["group:devs"], "dst": ["10.33.1.0/24:22", "lan:443"]}]""");
        Assert.Equal(2, Topo.Lines(p, "router").Count);
        Assert.Null(p.FilterFor("server"));
    }

    [Fact]
    public void FilterFor_PublicDestination_GoesToExitNode()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["group:devs"], "dst": ["8.8.8.0/24:53"], "proto": "udp"}]""");
        Assert.EndsWith("-> 8.8.8.0/24:53-53/17", Assert.Single(Topo.Lines(p, "exit")), StringComparison.Ordinal);
        Assert.Null(p.FilterFor("router"));
    }

    [Fact]
    public void FilterFor_AutogroupInternet_NoFilterButExitNodeVisible()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["thor@example.org"], "dst": ["autogroup:internet:*"]}]""");
        Assert.Null(p.FilterFor("exit"));
        Assert.True(p.CanSee("desk", "exit"));
        Assert.False(p.CanSee("desk", "server"));
    }

    [Fact]
    public void FilterFor_AutogroupSelf_OwnDevicesOnly()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["*"], "dst": ["autogroup:self:22"]}]""");
        var lines = Topo.Lines(p, "laptop");
        Assert.Equal(4, lines.Count); // laptop and phone, v4 and v6
        Assert.All(lines, l => Assert.StartsWith("100.64.0.1-100.64.0.2,fd7a:115c:a1e0::1-fd7a:115c:a1e0::2 ->", l, StringComparison.Ordinal));
        Assert.Null(p.FilterFor("server"));
        Assert.True(p.CanSee("laptop", "phone"));
        Assert.False(p.CanSee("laptop", "desk"));
    }

    [Fact]
    public void FilterFor_HostAlias_OnlyThatAddress()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["odin@example.com"], "dst": ["web:80,443"]}]""");
        Assert.Equal(2, Topo.Lines(p, "server").Count);
        Assert.All(Topo.Lines(p, "server"), l => Assert.Contains("-> 100.64.0.4:", l, StringComparison.Ordinal));
    }

    [Fact]
    public void FilterFor_NoAclsAndNoGrants_AllowsAll()
    {
        var p = PolicyEngine.Compile("{}", Topo.Small);
        var rule = Assert.Single(p.FilterFor("desk")!);
        Assert.Equal(["*"], rule.SrcIPs);
        Assert.Equal(5, p.PeersOf("desk").Count);
    }

    [Fact]
    public void FilterFor_EmptyAcls_AcceptsNothing()
    {
        var p = Topo.Compile("[]");
        Assert.Null(p.FilterFor("desk"));
        Assert.Empty(p.PeersOf("desk"));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}]}""")]
    public void PeersOf_EveryoneSeesEveryone_EveryOtherNodeInTopologyOrder_ByIndexAndByEnumeration(string policy)
    {
        var p = PolicyEngine.Compile(policy, Topo.Small);
        var names = Topo.Small.Nodes.Select(n => n.Name).ToList();
        foreach (var name in names)
        {
            var expected = names.Where(n => n != name).ToList();
            var peers = p.PeersOf(name);

            Assert.Equal(expected.Count, peers.Count);
            Assert.Equal(expected, peers);
            Assert.Equal(expected, Enumerable.Range(0, peers.Count).Select(i => peers[i]));
            Assert.Throws<ArgumentOutOfRangeException>(() => peers[peers.Count]);
            Assert.Throws<ArgumentOutOfRangeException>(() => peers[-1]);
            Assert.Same(peers, p.PeersOf(name));
        }
    }

    [Fact]
    public void PeersOf_OneWayRule_BothSidesSeeEachOther()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["tag:server"], "dst": ["thor@example.org:*"]}]""");
        Assert.Equal(["desk"], p.PeersOf("server"));
        Assert.Equal(["server"], p.PeersOf("desk"));
        Assert.Empty(p.PeersOf("laptop"));
    }

    [Fact]
    public void PeersOf_SubnetDestination_IncludesRouter()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["odin@example.com"], "dst": ["10.33.5.5:22"]}]""");
        Assert.Equal(["router"], p.PeersOf("laptop"));
        Assert.Equal(["laptop", "phone"], p.PeersOf("router"));
    }

    [Fact]
    public void AutoApprovedRoutes_TagAndExitApprovers_Approve()
    {
        var topo = new PolicyTopology(Topo.Small.Users,
        [
            new PolicyNode("r1", null, ["tag:router"], "100.64.1.1", null, ["10.33.1.0/24", "192.168.0.0/24"], []),
            new PolicyNode("x1", null, ["tag:exit"], "100.64.1.2", null, ["0.0.0.0/0", "::/0"], []),
            new PolicyNode("u1", "odin", [], "100.64.1.3", null, ["0.0.0.0/0"], []),
        ]);
        var p = PolicyEngine.Compile("{" + Topo.Defs + """
            "autoApprovers": {"routes": {"10.33.0.0/16": ["tag:router"], "0.0.0.0/0": ["tag:exit"]}, "exitNode": ["tag:exit"]},
            "acls": []}
            """, topo);
        // A route inside an approved prefix is approved; exit routes need "exitNode", not "routes".
        Assert.Equal(["10.33.1.0/24"], p.AutoApprovedRoutes("r1"));
        Assert.Equal(["0.0.0.0/0", "::/0"], p.AutoApprovedRoutes("x1"));
        Assert.Empty(p.AutoApprovedRoutes("u1"));
    }

    [Fact]
    public void Tests_PassingBlock_Compiles()
    {
        var p = Topo.Compile("""[{"action": "accept", "src": ["group:devs"], "dst": ["tag:server:22"], "proto": "tcp"}]""",
            "\"tests\": [" + """{"src": "thor@example.org", "proto": "tcp", "accept": ["tag:server:22", "web:22"], "deny": ["tag:server:80", "100.64.0.1:22"]}""" + "],");
        Assert.True(p.RunTests().Passed);
    }

    [Theory]
    [InlineData("""{"src": "thor@example.org", "accept": ["tag:server:80"]}""", "expected accept")]
    [InlineData("""{"src": "thor@example.org", "deny": ["tag:server:22"]}""", "expected deny")]
    [InlineData("""{"src": "ghost@example.com", "accept": ["tag:server:22"]}""", "user \"ghost@example.com\" does not exist")]
    [InlineData("""{"src": "thor@example.org", "accept": ["tag:server:22,80"]}""", "exactly one port")]
    [InlineData("""{"src": "thor@example.org", "accept": ["100.64.0.4/32:22"]}""", "not a CIDR")]
    [InlineData("""{"src": "thor@example.org", "accept": ["lan:22"]}""", "single host")]
    [InlineData("""{"src": "thor@example.org", "accept": ["autogroup:self:22"]}""", "cannot be used in tests")]
    [InlineData("""{"src": "thor@example.org", "proto": "udp", "accept": ["tag:server:22"]}""", "expected accept")]
    [InlineData("""{"accept": ["tag:server:22"]}""", "\"src\" is required")]
    [InlineData("""{"src": "thor@example.org"}""", "needs \"accept\" or \"deny\"")]
    public void Tests_FailingOrMalformed_RefusePolicy(string test, string expected)
    {
        var e = Topo.Refused("""[{"action": "accept", "src": ["group:devs"], "dst": ["tag:server:22"], "proto": "tcp"}]""",
            "\"tests\": [" + test + "],");
        Assert.StartsWith("test(s) failed", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyJson_CompileToJson_PrintsCorpusShape()
    {
        const string topology = """
            {"users": [{"id": 1, "name": "odin", "email": "odin@example.com"}],
             "nodes": {"a": {"hostname": "a", "user": "odin", "tags": [], "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1", "routable_ips": [], "approved_routes": []},
                       "b": {"hostname": "b", "tags": ["tag:s"], "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2", "routable_ips": [], "approved_routes": []}}}
            """;
        const string policy = """{"tagOwners": {"tag:s": ["odin@example.com"]}, "acls": [{"action": "accept", "src": ["odin@example.com"], "dst": ["tag:s:22"], "proto": "tcp"}]}""";
        var json = PolicyJson.CompileToJson(policy, topology);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, doc.RootElement.GetProperty("a").ValueKind);
        var rule = doc.RootElement.GetProperty("b")[0];
        Assert.Equal("100.64.0.1", rule.GetProperty("SrcIPs")[0].GetString());
        Assert.Equal(22, rule.GetProperty("DstPorts")[0].GetProperty("Ports").GetProperty("First").GetInt32());
        Assert.Equal(6, rule.GetProperty("IPProto")[0].GetInt32());
    }

    [Fact]
    public void PolicyJson_BadTopology_RefusedWithMessage()
    {
        var e = Assert.Throws<PolicyException>(() => PolicyJson.CompileToJson("{}", """{"nodes": {"a": {"ipv4": "not-an-ip"}}}"""));
        Assert.Contains("\"not-an-ip\" is not an IP address", e.Message, StringComparison.Ordinal);
    }
}
