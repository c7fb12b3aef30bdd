namespace Mesh.Policy.Tests;

public sealed class PolicyParserTests
{
    [Fact]
    public void Parse_HuJsonCommentsAndTrailingCommas_Accepted()
    {
        const string policy = """
            // a comment
            {
              /* block comment */
              "tagOwners": {"tag:server": ["odin@example.com",],},
              "acls": [
                {"action": "accept", "src": ["*"], "dst": ["tag:server:22"],}, // trailing
              ],
            }
            """;
        var p = PolicyEngine.Compile(policy, Topo.Small);
        Assert.Single(p.FilterFor("server")!);
    }

    [Fact]
    public void Parse_NotJson_RefusedWithHuJsonMessage()
    {
        var e = Assert.Throws<PolicyException>(() => PolicyEngine.Check("{ \"acls\": [ }"));
        Assert.Contains("HuJSON", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["foo:80"]}]""", "acls[0].dst[0] \"foo:80\": host \"foo\" is not defined in \"hosts\"")]
    [InlineData("""[{"action": "accept", "src": ["group:nope"], "dst": ["*:*"]}]""", "acls[0].src[0] \"group:nope\": group \"group:nope\" is not defined")]
    [InlineData("""[{"action": "accept", "src": ["tag:nope"], "dst": ["*:*"]}]""", "tag \"tag:nope\" is not defined in \"tagOwners\"")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["tag:nope:22"]}]""", "acls[0].dst[0]")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["10.0.0.0/33:22"]}]""", "not a valid selector")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["web:99999"]}]""", "port range \"99999\": invalid first integer")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["web:ssh"]}]""", "port range \"ssh\": invalid first integer")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["web:90-80"]}]""", "first port is after last port")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["autogroup:bogus:80"]}]""", "unknown autogroup \"autogroup:bogus\"")]
    [InlineData("""[{"action": "accept", "src": ["autogroup:self"], "dst": ["*:*"]}]""", "only valid as a destination")]
    [InlineData("""[{"action": "accept", "src": ["autogroup:internet"], "dst": ["*:*"]}]""", "only valid as a destination")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["autogroup:self"]}]""", "port range \"self\": invalid first integer")]
    [InlineData("""[{"action": "deny", "src": ["*"], "dst": ["*:*"]}]""", "acls[0]: action=\"deny\" is not supported")]
    [InlineData("""[{"action": "accept", "src": ["tag:server"], "dst": ["autogroup:self:*"]}]""", "autogroup:self can only be used with users, groups")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["*:*"], "proto": "bogus"}]""", "acls[0].proto: unknown protocol \"bogus\"")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["web:22"], "proto": "icmp"}]""", "has no ports")]
    [InlineData("""[{"action": "accept", "src": ["*"], "dst": ["*:*"], "proto": "06"}]""", "unknown protocol \"06\"")]
    public void Validate_InvalidAcl_NamesProblemAndPlace(string acls, string expected)
    {
        var e = Topo.Refused(acls);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"groups": {"group:a": ["group:b"]}}""", "groups cannot contain other groups")]
    [InlineData("""{"groups": {"admins": ["odin@example.com"]}}""", "must start with \"group:\"")]
    [InlineData("""{"hosts": {"web": "300.1.1.1"}}""", "hosts[\"web\"]: \"300.1.1.1\" is not an IP address or CIDR")]
    [InlineData("""{"tagOwners": {"tag:a": ["group:none"]}}""", "group \"group:none\" is not defined")]
    [InlineData("""{"autoApprovers": {"routes": {"10.0.0.0/40": ["tag:a"]}}}""", "is not a CIDR")]
    [InlineData("""{"bogus": 1}""", "unknown top-level field \"bogus\"")]
    public void Validate_InvalidDefinitions_NamesProblem(string policy, string expected)
    {
        var e = Assert.Throws<PolicyException>(() => PolicyEngine.Check(policy));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_SeveralProblems_AllReported()
    {
        var e = Topo.Refused("""[{"action": "accept", "src": ["group:x"], "dst": ["nohost:22"]}]""");
        Assert.Equal(2, e.Problems.Count);
    }

    [Theory]
    [InlineData("*", 0, 65535)]
    [InlineData("22", 22, 22)]
    [InlineData("8000-8100", 8000, 8100)]
    public void Ports_SingleForms_Parse(string text, int first, int last)
    {
        var ports = PolicyParser.ParsePorts(text, out var problem);
        Assert.Null(problem);
        Assert.Equal([new PortRange(first, last)], ports!);
    }

    [Fact]
    public void Ports_List_ParsesEachEntry()
    {
        var ports = PolicyParser.ParsePorts("22,80-90,443", out _);
        Assert.Equal([new PortRange(22, 22), new PortRange(80, 90), new PortRange(443, 443)], ports!);
    }

    [Theory]
    [InlineData("tcp", 6)]
    [InlineData("UDP", 17)]
    [InlineData("icmp", 1)]
    [InlineData("ipv6-icmp", 58)]
    [InlineData("sctp", 132)]
    [InlineData("47", 47)]
    public void Protocol_NameOrNumber_Parses(string text, int number)
    {
        Assert.True(PolicyParser.TryParseProtocol(text, out var numbers, out _));
        Assert.Equal([number], numbers!);
    }

    [Theory]
    [InlineData("[fd7a:115c:a1e0::4]:80", "fd7a:115c:a1e0::4", "80")]
    [InlineData("fd00::/64:443", "fd00::/64", "443")]
    [InlineData("100.64.0.4:22,80", "100.64.0.4", "22,80")]
    [InlineData("tag:server:*", "tag:server", "*")]
    public void HostPort_Ipv4AndIpv6Forms_Split(string text, string host, string ports)
    {
        Assert.True(PolicyParser.TrySplitHostPort(text, out var h, out var p));
        Assert.Equal((host, ports), (h, p));
    }

    [Theory]
    [InlineData("1.2.3")]
    [InlineData("1")]
    [InlineData("01.2.3.4")]
    [InlineData("1.2.3.4/33")]
    [InlineData("fe80::1%eth0")]
    public void Address_ShorthandOrInvalid_Rejected(string text) =>
        Assert.False(IpText.TryParsePrefix(text, out _, out _));

    [Fact]
    public void Address_Ipv6AllPrefix_DoesNotCoverIpv4()
    {
        Assert.True(IpText.TryParsePrefix("::/0", out var all6, out _));
        Assert.True(IpText.TryParseAddress("100.64.0.1", out var v4));
        Assert.False(all6.Contains(v4));
    }
}
