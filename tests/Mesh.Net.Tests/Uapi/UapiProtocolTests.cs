using System.Net;
using Mesh.Net.Uapi;

namespace Mesh.Net.Tests.Uapi;

public sealed class UapiProtocolTests
{
    private static readonly byte[] KeyA = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] KeyB = Enumerable.Range(0xe0, 32).Select(i => (byte)i).ToArray();
    private static readonly string HexA = Convert.ToHexStringLower(KeyA);
    private static readonly string HexB = Convert.ToHexStringLower(KeyB);
    private static readonly string Zero = new('0', 64);

    [Fact]
    public void ParseSet_EveryKey_ParsesAllFields()
    {
        var request = UapiProtocol.ParseSet(
            $"private_key={HexA}\nlisten_port=51820\nfwmark=4294967295\nreplace_peers=true\n"
            + $"public_key={HexB}\nupdate_only=true\npreshared_key={HexA}\nendpoint=[fd00::1]:65535\n"
            + "persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.1.2.3/24\n"
            + "allowed_ip=fd7a::2/128\nallowed_ip=-192.168.0.0/16\nprotocol_version=1\n"
            + $"public_key={HexA}\nremove=true\n\n");

        Assert.Equal(KeyA, request.PrivateKey);
        Assert.Equal(51820, request.ListenPort);
        Assert.Equal(uint.MaxValue, request.FwMark);
        Assert.True(request.ReplacePeers);
        Assert.Equal(2, request.Peers.Count);
        var peer = request.Peers[0];
        Assert.Equal(KeyB, peer.PublicKey);
        Assert.True(peer.UpdateOnly);
        Assert.False(peer.Remove);
        Assert.Equal(KeyA, peer.PresharedKey);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("fd00::1"), 65535), peer.Endpoint);
        Assert.Equal(25, peer.PersistentKeepaliveInterval);
        Assert.True(peer.ReplaceAllowedIps);
        Assert.Equal([IPNetwork.Parse("10.1.2.0/24"), IPNetwork.Parse("fd7a::2/128")], peer.AllowedIps);
        Assert.Equal([IPNetwork.Parse("192.168.0.0/16")], peer.RemovedAllowedIps);
        Assert.Equal(1, peer.ProtocolVersion);
        Assert.True(request.Peers[1].Remove);
        Assert.Equal(KeyA, request.Peers[1].PublicKey);
    }

    [Fact]
    public void ParseSet_EmptyBody_ChangesNothing()
    {
        var request = UapiProtocol.ParseSet("\n");

        Assert.Null(request.PrivateKey);
        Assert.Null(request.ListenPort);
        Assert.Null(request.FwMark);
        Assert.False(request.ReplacePeers);
        Assert.Empty(request.Peers);
    }

    [Fact]
    public void ParseSet_UpperCaseHexAndZeroKeys_Accepted()
    {
        var request = UapiProtocol.ParseSet($"private_key={Zero}\npublic_key={HexB.ToUpperInvariant()}\npreshared_key={Zero}\n");

        Assert.True(UapiProtocol.IsZeroKey(request.PrivateKey));
        Assert.Equal(KeyB, request.Peers[0].PublicKey);
        Assert.True(UapiProtocol.IsZeroKey(request.Peers[0].PresharedKey));
    }

    [Theory]
    [InlineData("198.18.0.2:51820", "198.18.0.2", 51820)]
    [InlineData("0.0.0.0:0", "0.0.0.0", 0)]
    [InlineData("[::1]:1", "::1", 1)]
    [InlineData("[::ffff:1.2.3.4]:9", "::ffff:1.2.3.4", 9)]
    public void ParseSet_ValidEndpoint_Parsed(string text, string address, int port)
    {
        var request = UapiProtocol.ParseSet($"public_key={HexA}\nendpoint={text}\n");

        Assert.Equal(new IPEndPoint(IPAddress.Parse(address), port), request.Peers[0].Endpoint);
    }

    [Theory]
    [InlineData("private_key=abc", UapiErrno.Invalid)]
    [InlineData("private_key=zz02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", UapiErrno.Invalid)]
    [InlineData("listen_port=65536", UapiErrno.Invalid)]
    [InlineData("listen_port=-1", UapiErrno.Invalid)]
    [InlineData("listen_port=+1", UapiErrno.Invalid)]
    [InlineData("listen_port=", UapiErrno.Invalid)]
    [InlineData("listen_port= 1", UapiErrno.Invalid)]
    [InlineData("fwmark=4294967296", UapiErrno.Invalid)]
    [InlineData("replace_peers=false", UapiErrno.Invalid)]
    [InlineData("replace_peers=TRUE", UapiErrno.Invalid)]
    [InlineData("endpoint=1.2.3.4:5", UapiErrno.Invalid)]
    [InlineData("no_such_key=1", UapiErrno.Invalid)]
    [InlineData("this line has no equals sign", UapiErrno.Protocol)]
    [InlineData("=", UapiErrno.Invalid)]
    public void ParseSet_BadDeviceLine_ThrowsWireguardGoErrno(string line, int errno)
    {
        var ex = Assert.Throws<UapiException>(() => UapiProtocol.ParseSet(line + "\n\n"));

        Assert.Equal(errno, ex.Errno);
        Assert.StartsWith("line 1:", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("endpoint=1.2.3.4")]
    [InlineData("endpoint=1.2.3.4:65536")]
    [InlineData("endpoint=01.2.3.4:1")]
    [InlineData("endpoint=1.2.3:1")]
    [InlineData("endpoint=256.1.1.1:1")]
    [InlineData("endpoint=fd00::1:51820")]
    [InlineData("endpoint=[1.2.3.4]:1")]
    [InlineData("endpoint=[fd00::1]")]
    [InlineData("endpoint=host.example:51820")]
    [InlineData("allowed_ip=10.0.0.0/33")]
    [InlineData("allowed_ip=fd00::/129")]
    [InlineData("allowed_ip=10.0.0.0")]
    [InlineData("allowed_ip=10.0.0.0/08")]
    [InlineData("allowed_ip=10.0.0.0/")]
    [InlineData("allowed_ip=fe80::1%1/64")]
    [InlineData("allowed_ip=--10.0.0.0/8")]
    [InlineData("persistent_keepalive_interval=65536")]
    [InlineData("protocol_version=2")]
    [InlineData("remove=yes")]
    [InlineData("update_only=1")]
    [InlineData("replace_allowed_ips=false")]
    [InlineData("preshared_key=00")]
    [InlineData("listen_port=1")]
    [InlineData("private_key=0000000000000000000000000000000000000000000000000000000000000000")]
    public void ParseSet_BadPeerLine_ThrowsEinval(string line)
    {
        var ex = Assert.Throws<UapiException>(() => UapiProtocol.ParseSet($"public_key={HexA}\n{line}\n"));

        Assert.Equal(UapiErrno.Invalid, ex.Errno);
        Assert.StartsWith("line 2:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseSet_ErrorAfterValidLines_ReportsFirstErrorOnly()
    {
        var ex = Assert.Throws<UapiException>(() => UapiProtocol.ParseSet(
            $"listen_port=1\npublic_key={HexA}\nbogus\nallowed_ip=nope\n"));

        Assert.Equal(UapiErrno.Protocol, ex.Errno);
        Assert.StartsWith("line 3:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseSet_BadKey_MessageNeverQuotesTheKey()
    {
        var almost = HexA[..63] + "g";

        var ex = Assert.Throws<UapiException>(() => UapiProtocol.ParseSet($"private_key={almost}\n"));
        var noEquals = Assert.Throws<UapiException>(() => UapiProtocol.ParseSet($"private_key {HexA}\n"));

        Assert.DoesNotContain(HexA[..16], ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(HexA[..16], noEquals.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ParseSet_StopsAtBlankLine()
    {
        var request = UapiProtocol.ParseSet("listen_port=7\n\nlisten_port=not-parsed\n");

        Assert.Equal(7, request.ListenPort);
    }

    [Fact]
    public void FormatGet_FullState_MatchesWireguardGoOrder()
    {
        var state = new UapiDeviceState
        {
            PrivateKey = KeyA,
            ListenPort = 51820,
            FwMark = 51,
            Peers =
            [
                new UapiPeerState
                {
                    PublicKey = KeyB,
                    PresharedKey = KeyA,
                    Endpoint = new IPEndPoint(IPAddress.Parse("fd00::2"), 4000),
                    PersistentKeepaliveInterval = 25,
                    LastHandshakeTimeSec = 1700000000,
                    LastHandshakeTimeNsec = 123,
                    RxBytes = 10,
                    TxBytes = 20,
                    AllowedIps = [IPNetwork.Parse("100.64.0.2/32"), IPNetwork.Parse("fd7a::/48")],
                },
                new UapiPeerState { PublicKey = KeyA },
            ],
        };

        var text = UapiProtocol.FormatGet(state);

        Assert.Equal(
            $"private_key={HexA}\nlisten_port=51820\nfwmark=51\n"
            + $"public_key={HexB}\npreshared_key={HexA}\nprotocol_version=1\nendpoint=[fd00::2]:4000\n"
            + "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123\ntx_bytes=20\nrx_bytes=10\n"
            + "persistent_keepalive_interval=25\nallowed_ip=100.64.0.2/32\nallowed_ip=fd7a::/48\n"
            + $"public_key={HexA}\npreshared_key={Zero}\nprotocol_version=1\n"
            + "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
            + "persistent_keepalive_interval=0\n"
            + "errno=0\n\n",
            text);
    }

    [Fact]
    public void FormatGet_EmptyDevice_OmitsDefaults()
    {
        Assert.Equal("errno=0\n\n", UapiProtocol.FormatGet(new UapiDeviceState()));
        Assert.Equal("errno=0\n\n", UapiProtocol.FormatGet(new UapiDeviceState { PrivateKey = new byte[32] }));
    }

    [Fact]
    public void FormatGet_WrongKeyLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => UapiProtocol.FormatGet(new UapiDeviceState { PrivateKey = new byte[31] }));
    }

    [Theory]
    [InlineData(0, "errno=0\n\n")]
    [InlineData(22, "errno=-22\n\n")]
    [InlineData(-98, "errno=-98\n\n")]
    public void FormatErrno_NegatesLikeWireguardGo(int errno, string expected)
    {
        Assert.Equal(expected, UapiProtocol.FormatErrno(errno));
    }

    [Fact]
    public void ParseSet_FormattedState_RoundTrips()
    {
        // What get prints for a peer is also a valid set body (minus the read-only counters).
        var state = new UapiDeviceState
        {
            PrivateKey = KeyA,
            ListenPort = 1,
            Peers = [new UapiPeerState { PublicKey = KeyB, Endpoint = new IPEndPoint(IPAddress.Loopback, 9), AllowedIps = [IPNetwork.Parse("0.0.0.0/0"), IPNetwork.Parse("::/0")] }],
        };
        var body = string.Join('\n', UapiProtocol.FormatGet(state).Split('\n')
            .Where(l => !l.StartsWith("last_", StringComparison.Ordinal) && !l.Contains("_bytes", StringComparison.Ordinal) && !l.StartsWith("errno", StringComparison.Ordinal)));

        var request = UapiProtocol.ParseSet(body);

        Assert.Equal(KeyA, request.PrivateKey);
        Assert.Equal(state.Peers[0].Endpoint, request.Peers[0].Endpoint);
        Assert.Equal(state.Peers[0].AllowedIps, request.Peers[0].AllowedIps);
    }

    [Fact]
    public void ParseSet_RandomLines_NeverThrowsAnythingButUapiException()
    {
        var random = new Random(20240607);
        string[] keys = ["private_key", "listen_port", "fwmark", "public_key", "endpoint", "allowed_ip", "remove", "x", ""];
        const string Alphabet = "0123456789abcdefABCDEF:./[]-=% \tx\u00e9\0";
        for (var i = 0; i < 5000; i++)
        {
            var lines = new List<string>();
            for (var n = random.Next(1, 6); n > 0; n--)
            {
                var value = new string(Enumerable.Range(0, random.Next(0, 70)).Select(_ => Alphabet[random.Next(Alphabet.Length)]).ToArray());
                lines.Add(random.Next(3) == 0 ? value : keys[random.Next(keys.Length)] + "=" + value);
            }

            try
            {
                UapiProtocol.ParseSet(string.Join('\n', lines));
            }
            catch (UapiException)
            {
            }
        }
    }
}
