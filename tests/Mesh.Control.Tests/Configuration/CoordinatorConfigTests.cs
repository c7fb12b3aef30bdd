using Mesh.Control.Configuration;

namespace Mesh.Control.Tests.Configuration;

public class CoordinatorConfigTests
{
    [Fact]
    public void EmptyFile_GivesEmbeddedDefaults()
    {
        var config = CoordinatorConfig.Load("", "config.yaml");
        Assert.Equal("127.0.0.1:8080", config.ListenAddr);
        Assert.Equal("127.0.0.1:9090", config.MetricsListenAddr);
        Assert.Equal("100.64.0.0/10", config.PrefixV4.ToString());
        Assert.Equal("fd7a:115c:a1e0::/48", config.PrefixV6.ToString());
        Assert.Equal("mesh.internal", config.Dns.BaseDomain);
        Assert.True(config.Dns.MagicDns);
        Assert.Equal("./mesh-data/mesh.db", config.Database.Sqlite.Path);
        Assert.Equal("0.0.0.0:3478", config.Derp.Server.StunListenAddr);
        Assert.Null(config.Derp.Server.StunAlternatePort);
        Assert.Equal(3479, config.Derp.Server.ResolvedStunAlternatePort);
        Assert.EndsWith("mesh-data/mesh.sock", config.AdminSocketPath);
        Assert.Equal(TimeSpan.FromDays(180), config.NodeKeyExpiryTime);
    }

    [Fact]
    public void HeadscaleShapedFile_IsRead()
    {
        var config = CoordinatorConfig.Load("""
            server_url: https://mesh.example.test:443
            listen_addr: 0.0.0.0:8080
            metrics_listen_addr: 127.0.0.1:9091
            prefixes:
              v4: 100.96.0.0/12
              v6: fd7a:115c:a1e0:1::/64
            derp:
              server: {enabled: true, region_id: 900, region_code: home, stun_listen_addr: 0.0.0.0:3479}
              urls: []
            dns:
              magic_dns: true
              base_domain: corp.mesh
              nameservers: {global: [1.1.1.1, 8.8.8.8]}
              extra_records:
                - {name: grafana.corp.mesh, type: A, value: 100.96.0.10}
            database: {type: sqlite, sqlite: {path: /var/lib/mesh/mesh.db}}
            policy: {path: /etc/mesh/policy.hujson}
            node_key_expiry: "0"
            """, "config.yaml");
        Assert.Equal("https://mesh.example.test:443", config.ServerUrl);
        Assert.Equal(900, config.Derp.Server.RegionId);
        Assert.Equal(["1.1.1.1", "8.8.8.8"], config.Dns.Nameservers.Global);
        Assert.Equal("grafana.corp.mesh", Assert.Single(config.Dns.ExtraRecords).Name);
        Assert.Equal("/var/lib/mesh/mesh.sock", config.AdminSocketPath);
        Assert.Null(config.NodeKeyExpiryTime);
    }

    [Theory]
    [InlineData("listen_adr: 1.2.3.4:80", "listen_adr")]
    [InlineData("listen_addr: localhost", "listen_addr \"localhost\"")]
    [InlineData("prefixes: {v4: 100.64.0.0/33}", "prefixes.v4")]
    [InlineData("prefixes: {v6: 100.64.0.0/10}", "prefixes.v6")]
    [InlineData("dns: {nameservers: {global: [one.one]}}", "dns.nameservers.global \"one.one\"")]
    [InlineData("database: {type: postgres}", "only sqlite")]
    [InlineData("node_key_expiry: soon", "node_key_expiry \"soon\"")]
    [InlineData("server_url: ftp://x", "server_url")]
    [InlineData("tls_cert_path: /x.pem", "set both")]
    [InlineData("derp: {server: {stun_alternate_port: 70000}}", "derp.server.stun_alternate_port 70000: expected a UDP port")]
    [InlineData("derp: {server: {stun_alternate_port: -1}}", "derp.server.stun_alternate_port -1: expected a UDP port")]
    [InlineData("derp: {server: {stun_listen_addr: 0.0.0.0:4000, stun_alternate_port: 4000}}", "derp.server.stun_alternate_port 4000: the same port as derp.server.stun_listen_addr")]
    [InlineData("derp: {server: {stun_listen_addr: 0.0.0.0:65535}}", "derp.server.stun_alternate_port: unset, and derp.server.stun_listen_addr's port 65535 has no next port")]
    [InlineData("derp: {server: {stun_alternate_port: next}}", "'next'")]
    [InlineData("derp: {urls: [relays.example.com/map.json]}", "derp.urls \"relays.example.com/map.json\": expected an http, https or file URL of a relay map")]
    [InlineData("derp: {urls: [\"ftp://relays.example.com/map.json\"]}", "derp.urls \"ftp://relays.example.com/map.json\": expected an http, https or file URL")]
    public void BadValue_NamesTheKey(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => CoordinatorConfig.Load(yaml, "c.yaml"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("c.yaml:", e.Message);
    }

    [Theory]
    [InlineData("stun_listen_addr: 0.0.0.0:3478", 3479)]
    [InlineData("stun_listen_addr: \"[::]:5000\"", 5001)]
    [InlineData("{stun_listen_addr: 0.0.0.0:3478, stun_alternate_port: 4000}", 4000)]
    [InlineData("{stun_listen_addr: 0.0.0.0:3478, stun_alternate_port: 0}", null)]
    [InlineData("{stun_listen_addr: 0.0.0.0:65535, stun_alternate_port: 0}", null)]
    [InlineData("stun_listen_addr: 127.0.0.1:0", 0)]
    public void StunAlternatePort_DefaultsToTheNextPort_AndZeroTurnsItOff(string server, int? expected)
    {
        var yaml = server.StartsWith('{') ? $"derp: {{server: {server}}}" : $"derp: {{server: {{{server}}}}}";
        Assert.Equal(expected, CoordinatorConfig.Load(yaml, "c.yaml").Derp.Server.ResolvedStunAlternatePort);
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("24h", 86400)]
    [InlineData("7d", 604800)]
    [InlineData("1h30m", 5400)]
    [InlineData("0", 0)]
    public void Durations_GoStyle(string text, int seconds) => Assert.Equal(TimeSpan.FromSeconds(seconds), Durations.Parse(text));
}
