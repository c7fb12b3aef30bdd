using System.Net;
using Mesh.Sidecar.Config;

namespace Mesh.Sidecar.Tests.Config;

public sealed class WgQuickConfigTests
{
    private static readonly byte[] PrivateKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] PeerA = Enumerable.Range(40, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] PeerB = Enumerable.Range(90, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Psk = Enumerable.Range(150, 32).Select(i => (byte)i).ToArray();
    private static readonly string Priv64 = Convert.ToBase64String(PrivateKey);
    private static readonly string PeerA64 = Convert.ToBase64String(PeerA);
    private static readonly string PeerB64 = Convert.ToBase64String(PeerB);
    private static readonly string Psk64 = Convert.ToBase64String(Psk);

    [Fact]
    public void Parse_FullFile_V4V6MultiplePeersPsk()
    {
        var text = $"""
            # mesh node
            [Interface]
            PrivateKey = {Priv64}
            Address = 10.0.0.1/24, fd00::1/64
            Address = 100.64.0.1
            address = fd7a::1
            ListenPort = 51820
            MTU = 1420
            FwMark = 0x51

            [Peer]   # first
            PublicKey = {PeerA64}
            PresharedKey = {Psk64}
            AllowedIPs = 10.0.0.2/32, 192.168.1.77/24
            AllowedIPs = fd00::2/128
            Endpoint = 198.18.0.2:51820
            PersistentKeepalive = 25

            [peer]
            publickey={PeerB64}
            allowedips=0.0.0.0/0,::/0
            endpoint=[fd00::9]:4000
            persistentkeepalive=off
            """;

        var config = WgQuickConfig.Parse(text, "wg0.conf");

        Assert.Equal(PrivateKey, config.Interface.PrivateKey);
        Assert.Equal(2, config.Interface.Line);
        Assert.Equal(
            [
                new InterfaceAddress(IPAddress.Parse("10.0.0.1"), 24),
                new InterfaceAddress(IPAddress.Parse("fd00::1"), 64),
                new InterfaceAddress(IPAddress.Parse("100.64.0.1"), 32),
                new InterfaceAddress(IPAddress.Parse("fd7a::1"), 128),
            ],
            config.Interface.Addresses);
        Assert.Equal(IPNetwork.Parse("10.0.0.0/24"), config.Interface.Addresses[0].Network);
        Assert.Equal("10.0.0.1/24", config.Interface.Addresses[0].ToString());
        Assert.Equal(51820, config.Interface.ListenPort);
        Assert.Equal(1420, config.Interface.Mtu);
        Assert.Equal(0x51u, config.Interface.FwMark);
        Assert.Equal(2, config.Peers.Count);

        var a = config.Peers[0];
        Assert.Equal(PeerA, a.PublicKey);
        Assert.Equal(Psk, a.PresharedKey);
        Assert.Equal([IPNetwork.Parse("10.0.0.2/32"), IPNetwork.Parse("192.168.1.0/24"), IPNetwork.Parse("fd00::2/128")], a.AllowedIps);
        Assert.Equal("198.18.0.2:51820", a.Endpoint);
        Assert.Equal(25, a.PersistentKeepalive);
        Assert.Equal(11, a.Line);

        var b = config.Peers[1];
        Assert.Equal(PeerB, b.PublicKey);
        Assert.Null(b.PresharedKey);
        Assert.Equal([IPNetwork.Parse("0.0.0.0/0"), IPNetwork.Parse("::/0")], b.AllowedIps);
        Assert.Equal("[fd00::9]:4000", b.Endpoint);
        Assert.Null(b.PersistentKeepalive);
        Assert.Equal(19, b.Line);
        Assert.Empty(config.Warnings);
    }

    [Fact]
    public void Parse_MinimalFile_DefaultsAreNull()
    {
        var config = WgQuickConfig.Parse($"[Interface]\r\nPrivateKey = {Priv64}\r\n", "min.conf");

        Assert.Empty(config.Interface.Addresses);
        Assert.Null(config.Interface.ListenPort);
        Assert.Null(config.Interface.Mtu);
        Assert.Null(config.Interface.FwMark);
        Assert.Empty(config.Peers);
    }

    [Fact]
    public void Parse_PeerWithoutOptionalKeys_Accepted()
    {
        var config = WgQuickConfig.Parse($"[Interface]\nPrivateKey={Priv64}\nFwMark=off\n[Peer]\nPublicKey={PeerA64}\nAllowedIPs=\nPersistentKeepalive=0\n", "x.conf");

        var peer = Assert.Single(config.Peers);
        Assert.Empty(peer.AllowedIps);
        Assert.Null(peer.Endpoint);
        Assert.Null(peer.PersistentKeepalive);
        Assert.Null(config.Interface.FwMark);
    }

    [Theory]
    [InlineData("vpn.example.com:51820")]
    [InlineData("my_host:1")]
    [InlineData("[::1]:65535")]
    public void Parse_EndpointShapes_Accepted(string endpoint)
    {
        var config = WgQuickConfig.Parse($"[Interface]\nPrivateKey={Priv64}\n[Peer]\nPublicKey={PeerA64}\nEndpoint={endpoint}\n", "x.conf");

        Assert.Equal(endpoint, config.Peers[0].Endpoint);
    }

    [Fact]
    public void Parse_WgQuickOnlyKeys_WarnWithLine()
    {
        var text = $"""
            [Interface]
            PrivateKey = {Priv64}
            DNS = 1.1.1.1
            Table = off
            PreUp = true
            PostUp = iptables -A FORWARD -i %i -j ACCEPT
            PreDown = true
            postdown = true
            SaveConfig = true
            """;

        var config = WgQuickConfig.Parse(text, "wg0.conf");

        Assert.Equal(7, config.Warnings.Count);
        Assert.Equal("wg0.conf:3: DNS is not supported by mesh-sidecar wg and is ignored", config.Warnings[0]);
        Assert.StartsWith("wg0.conf:8: PostDown ", config.Warnings[5], StringComparison.Ordinal);
        Assert.StartsWith("wg0.conf:9: SaveConfig ", config.Warnings[6], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("AllowedIPs = 10.0.0.0/33", 7, "AllowedIPs \"10.0.0.0/33\": prefix length 33 is out of range for IPv4 (0-32)")]
    [InlineData("AllowedIPs = 10.0.0.0/8, fd00::/129", 7, "AllowedIPs \"fd00::/129\": prefix length 129 is out of range for IPv6 (0-128)")]
    [InlineData("AllowedIPs = 10.0.0/8", 7, "AllowedIPs \"10.0.0/8\": \"10.0.0\" is not an IP address")]
    [InlineData("AllowedIPs = 10.0.0.0/x", 7, "prefix length \"x\" is not a number")]
    [InlineData("Endpoint = 198.18.0.2", 7, "Endpoint \"198.18.0.2\" has no port; write host:port, e.g. 198.18.0.2:51820")]
    [InlineData("Endpoint = 198.18.0.2:0", 7, "Endpoint port 0 is out of range (1-65535)")]
    [InlineData("Endpoint = 198.18.0.2:65536", 7, "Endpoint port 65536 is out of range (1-65535)")]
    [InlineData("Endpoint = fd00::1:51820", 7, "put an IPv6 address in brackets, e.g. [fd00::1]:51820")]
    [InlineData("Endpoint = [fd00::1]", 7, "write an IPv6 endpoint as [address]:port")]
    [InlineData("Endpoint = bad host:1", 7, "is neither an IPv4 address nor a host name")]
    [InlineData("PersistentKeepalive = 70000", 7, "PersistentKeepalive 70000 is out of range (0-65535)")]
    [InlineData("PersistentKeepalive = soon", 7, "PersistentKeepalive \"soon\" is not a number")]
    [InlineData("PresharedKey = c2hvcnQ=", 7, "PresharedKey is not a valid key: a key is 44 characters of base64 encoding 32 bytes; generate one with \"wg genpsk\"")]
    [InlineData("Colour = blue", 7, "unknown key \"Colour\" in [Peer]")]
    [InlineData("ListenPort = 1", 7, "ListenPort belongs in the [Interface] section")]
    [InlineData("DNS = 1.1.1.1", 7, "DNS belongs in the [Interface] section")]
    [InlineData("Endpoint = 198.18.0.1:1\nEndpoint = 198.18.0.1:2", 8, "Endpoint is given twice in this section; keep only one")]
    [InlineData("just some words", 7, "line is neither a section header nor \"Key = Value\"")]
    [InlineData("[Peers]", 7, "unknown section \"[Peers]\"; write [Interface] or [Peer]")]
    [InlineData("[Peer", 7, "has no closing ']'")]
    [InlineData("[Interface]", 7, "second [Interface] section (the first is at line 1)")]
    public void Parse_BadPeerLine_NamesLine(string line, int lineNumber, string expected)
    {
        var text = $"[Interface]\nPrivateKey = {Priv64}\nAddress = 10.0.0.1/24\n\n[Peer]\nPublicKey = {PeerA64}\n{line}\n";

        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse(text, "wg0.conf"));

        Assert.StartsWith($"wg0.conf:{lineNumber}: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(lineNumber, ex.Line);
        Assert.Equal("wg0.conf", ex.FileName);
    }

    [Fact]
    public void Parse_ExampleFromBrief_ExactMessage()
    {
        var text = $"[Interface]\nPrivateKey = {Priv64}\n\n[Peer]\nPublicKey = {PeerA64}\n# routes\nAllowedIPs = 10.0.0.0/33\n";

        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse(text, "wg0.conf"));

        Assert.Equal("wg0.conf:7: AllowedIPs \"10.0.0.0/33\": prefix length 33 is out of range for IPv4 (0-32)", ex.Message);
    }

    [Theory]
    [InlineData("PrivateKey = notakey", 2, "PrivateKey is not a valid key")]
    [InlineData("Address = 10.0.0.1/40", 3, "Address \"10.0.0.1/40\": prefix length 40 is out of range for IPv4 (0-32)")]
    [InlineData("Address = 10.0.0.256/24", 3, "\"10.0.0.256\" is not an IP address")]
    [InlineData("ListenPort = 65536", 3, "ListenPort 65536 is out of range (0-65535)")]
    [InlineData("ListenPort = -1", 3, "ListenPort \"-1\" is not a number")]
    [InlineData("MTU = 100", 3, "MTU 100 is out of range (576-65535)")]
    [InlineData("FwMark = 0xzz", 3, "FwMark \"0xzz\" is not a number")]
    [InlineData("FwMark = 4294967296", 3, "FwMark \"4294967296\" is not a number")]
    [InlineData("PublicKey = x", 3, "PublicKey belongs in a [Peer] section")]
    [InlineData("Foo = bar", 3, "unknown key \"Foo\" in [Interface]; known keys are PrivateKey, Address, ListenPort, MTU, FwMark")]
    [InlineData("ListenPort = 1\nListenPort = 2", 4, "ListenPort is given twice")]
    [InlineData("= 5", 3, "line starts with '='")]
    public void Parse_BadInterfaceLine_NamesLine(string line, int lineNumber, string expected)
    {
        var text = $"[Interface]\n{(line.StartsWith("PrivateKey", StringComparison.Ordinal) ? line : $"PrivateKey = {Priv64}\n{line}")}\n";

        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse(text, "wg0.conf"));

        Assert.StartsWith($"wg0.conf:{lineNumber}: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MissingPrivateKey_NamesInterfaceLine()
    {
        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse("# hi\n\n[Interface]\nAddress = 10.0.0.1/24\n", "a.conf"));

        Assert.Equal("a.conf:3: [Interface] has no PrivateKey; add \"PrivateKey = <output of wg genkey>\"", ex.Message);
    }

    [Fact]
    public void Parse_MissingPublicKey_NamesPeerLine()
    {
        var text = $"[Interface]\nPrivateKey = {Priv64}\n[Peer]\nPublicKey = {PeerA64}\n[Peer]\nAllowedIPs = 10.0.0.0/8\n";

        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse(text, "a.conf"));

        Assert.Equal("a.conf:5: [Peer] has no PublicKey; add \"PublicKey = <the peer's wg pubkey>\"", ex.Message);
    }

    [Fact]
    public void Parse_DuplicatePeerKey_NamesSecondKeyAndFirstPeer()
    {
        var text = $"[Interface]\nPrivateKey = {Priv64}\n[Peer]\nPublicKey = {PeerA64}\n[Peer]\nPublicKey = {PeerB64}\n[Peer]\nPublicKey = {PeerA64}\n";

        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse(text, "a.conf"));

        Assert.StartsWith("a.conf:8: PublicKey is the same as the [Peer] at line 3", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only a comment\n")]
    public void Parse_NoInterface_Throws(string text)
    {
        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse(text, "e.conf"));

        Assert.StartsWith("e.conf:1: no [Interface] section", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_KeyOutsideSection_Throws()
    {
        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse($"PrivateKey = {Priv64}\n[Interface]\n", "e.conf"));

        Assert.Equal("e.conf:1: PrivateKey is outside any section; put [Interface] or [Peer] above it", ex.Message);
    }

    [Theory]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!AA=")]
    public void Parse_KeyOfWrongLength_ThrowsWithoutQuotingIt(string key)
    {
        var ex = Assert.Throws<WgQuickConfigException>(() => WgQuickConfig.Parse($"[Interface]\nPrivateKey = {key}\n", "k.conf"));

        Assert.StartsWith("k.conf:2: PrivateKey is not a valid key", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(key, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RandomText_OnlyEverThrowsConfigException()
    {
        var random = new Random(42);
        string[] pieces = ["[Interface]", "[Peer]", $"PrivateKey = {Priv64}", $"PublicKey = {PeerA64}", "AllowedIPs = ", "Address = ", "Endpoint = ", "=", "#", ",", "/", ":", "[", "]", "1", "fd00::", "10.0.0.1", "\n", "\n", " "];
        for (var i = 0; i < 3000; i++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 40)).Select(_ => pieces[random.Next(pieces.Length)]));
            try
            {
                WgQuickConfig.Parse(text, "r.conf");
            }
            catch (WgQuickConfigException ex)
            {
                Assert.StartsWith("r.conf:", ex.Message, StringComparison.Ordinal);
            }
        }
    }
}
