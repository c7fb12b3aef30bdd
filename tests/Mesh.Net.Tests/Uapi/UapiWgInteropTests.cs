using System.Net;
using Mesh.Net.Uapi;

namespace Mesh.Net.Tests.Uapi;

/// <summary>
/// The real wg(8) from wireguard-tools against a <see cref="UapiServer"/> with a fake device. Only
/// the unix socket is used: the endpoints below are configuration values and nothing is sent to them.
/// </summary>
public sealed class UapiWgInteropTests
{
    private static readonly byte[] PrivateKey = Enumerable.Range(0x40, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] PeerKey = Enumerable.Range(0x10, 32).Select(i => (byte)(i * 3)).ToArray();
    private static readonly byte[] PeerKey2 = Enumerable.Range(0x20, 32).Select(i => (byte)(i * 5)).ToArray();
    private static readonly byte[] Psk = Enumerable.Range(0x70, 32).Select(i => (byte)i).ToArray();

    [Fact]
    public async Task WgShow_DeviceWithPeer_PrintsEverything()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        host.Device.SetIdentity(PrivateKey, 51820);
        host.Device.AddPeer(PeerKey, p =>
        {
            p.Endpoint = new IPEndPoint(IPAddress.Parse("198.18.0.2"), 51820);
            p.AllowedIps.Add(IPNetwork.Parse("100.64.0.2/32"));
            p.AllowedIps.Add(IPNetwork.Parse("fd7a::2/128"));
            p.Keepalive = 25;
            p.Rx = 2048;
            p.Tx = 4096;
        });

        var (code, stdout, stderr) = await Wg.RunAsync(null, "show", host.Name);

        Assert.True(code == 0, stderr);
        var expectedPublic = (await Wg.RunAsync(Convert.ToBase64String(PrivateKey) + "\n", "pubkey")).StdOut.Trim();
        Assert.Contains($"interface: {host.Name}", stdout, StringComparison.Ordinal);
        Assert.Contains($"public key: {expectedPublic}", stdout, StringComparison.Ordinal);
        Assert.Contains("listening port: 51820", stdout, StringComparison.Ordinal);
        Assert.Contains($"peer: {Convert.ToBase64String(PeerKey)}", stdout, StringComparison.Ordinal);
        Assert.Contains("endpoint: 198.18.0.2:51820", stdout, StringComparison.Ordinal);
        Assert.Contains("allowed ips: 100.64.0.2/32, fd7a::2/128", stdout, StringComparison.Ordinal);
        Assert.Contains("transfer: 2.00 KiB received, 4.00 KiB sent", stdout, StringComparison.Ordinal);
        Assert.Contains("persistent keepalive: every 25 seconds", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WgShowDump_MatchesDeviceState()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        host.Device.SetIdentity(PrivateKey, 41641, fwMark: 0x51);
        host.Device.AddPeer(PeerKey, p =>
        {
            p.PresharedKey = Psk;
            p.Endpoint = new IPEndPoint(IPAddress.Parse("fd00::7"), 7);
            p.AllowedIps.Add(IPNetwork.Parse("0.0.0.0/0"));
            p.HandshakeSec = 1_700_000_000;
            p.Rx = 1;
            p.Tx = 2;
        });
        host.Device.AddPeer(PeerKey2);

        var (code, stdout, stderr) = await Wg.RunAsync(null, "show", host.Name, "dump");

        Assert.True(code == 0, stderr);
        var lines = stdout.TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        var self = lines[0].Split('\t');
        Assert.Equal(Convert.ToBase64String(PrivateKey), self[0]);
        Assert.Equal(["41641", "0x51"], self[2..]);
        Assert.Equal(
            [Convert.ToBase64String(PeerKey), Convert.ToBase64String(Psk), "[fd00::7]:7", "0.0.0.0/0", "1700000000", "1", "2", "off"],
            lines[1].Split('\t'));
        Assert.Equal(
            [Convert.ToBase64String(PeerKey2), "(none)", "(none)", "(none)", "0", "0", "0", "off"],
            lines[2].Split('\t'));
    }

    [Fact]
    public async Task WgSetPeer_AllowedIpsEndpointKeepalive_ReachDevice()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        var pub = Convert.ToBase64String(PeerKey);

        var (code, _, stderr) = await Wg.RunAsync(null, "set", host.Name, "peer", pub,
            "allowed-ips", "100.64.0.2/32,fd7a::2/128", "endpoint", "198.18.0.2:51820", "persistent-keepalive", "25");

        Assert.True(code == 0, stderr);
        var request = Assert.Single(host.Device.Requests);
        Assert.False(request.ReplacePeers);
        Assert.Null(request.PrivateKey);
        var peer = Assert.Single(request.Peers);
        Assert.Equal(PeerKey, peer.PublicKey);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 51820), peer.Endpoint);
        Assert.Equal(25, peer.PersistentKeepaliveInterval);
        Assert.True(peer.ReplaceAllowedIps);
        Assert.Equal([IPNetwork.Parse("100.64.0.2/32"), IPNetwork.Parse("fd7a::2/128")], peer.AllowedIps);

        var show = await Wg.RunAsync(null, "show", host.Name, "allowed-ips");
        Assert.Equal($"{pub}\t100.64.0.2/32 fd7a::2/128\n", show.StdOut);
    }

    [Fact]
    public async Task WgSetConf_File_ReplacesEverything()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        host.Device.AddPeer(PeerKey2);
        var file = Path.Combine(Path.GetTempPath(), host.Name + ".conf");
        await File.WriteAllTextAsync(file, $"""
            [Interface]
            PrivateKey = {Convert.ToBase64String(PrivateKey)}
            ListenPort = 41641
            FwMark = 0x20

            [Peer]
            PublicKey = {Convert.ToBase64String(PeerKey)}
            PresharedKey = {Convert.ToBase64String(Psk)}
            AllowedIPs = 100.64.0.0/10, fd7a:115c:a1e0::/48
            Endpoint = [fd00::9]:51820
            PersistentKeepalive = 15
            """, TestContext.Current.CancellationToken);
        try
        {
            var (code, _, stderr) = await Wg.RunAsync(null, "setconf", host.Name, file);

            Assert.True(code == 0, stderr);
            var request = Assert.Single(host.Device.Requests);
            Assert.Equal(PrivateKey, request.PrivateKey);
            Assert.Equal(41641, request.ListenPort);
            Assert.Equal(0x20u, request.FwMark);
            Assert.True(request.ReplacePeers);
            var peer = Assert.Single(request.Peers);
            Assert.Equal(PeerKey, peer.PublicKey);
            Assert.Equal(Psk, peer.PresharedKey);
            Assert.Equal(15, peer.PersistentKeepaliveInterval);
            Assert.Equal(new IPEndPoint(IPAddress.Parse("fd00::9"), 51820), peer.Endpoint);
            Assert.Equal([IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("fd7a:115c:a1e0::/48")], peer.AllowedIps);
            var state = host.Device.GetState();
            Assert.Equal(PeerKey, Assert.Single(state.Peers).PublicKey);

            var shown = await Wg.RunAsync(null, "showconf", host.Name);
            Assert.Contains("FwMark = 0x20", shown.StdOut, StringComparison.Ordinal);
            Assert.Contains("AllowedIPs = 100.64.0.0/10, fd7a:115c:a1e0::/48", shown.StdOut, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task WgSyncConf_File_GetsThenSetsTheDifference()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        host.Device.SetIdentity(PrivateKey, 1000);
        host.Device.AddPeer(PeerKey2, p => p.AllowedIps.Add(IPNetwork.Parse("10.9.0.0/16")));
        var file = Path.Combine(Path.GetTempPath(), host.Name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {Convert.ToBase64String(PrivateKey)}\nListenPort = 1000\n[Peer]\nPublicKey = {Convert.ToBase64String(PeerKey)}\nAllowedIPs = 100.64.0.9/32\n", TestContext.Current.CancellationToken);
        try
        {
            var (code, _, stderr) = await Wg.RunAsync(null, "syncconf", host.Name, file);

            Assert.True(code == 0, stderr);
            var removed = Assert.Single(host.Device.LastRequest.Peers, p => p.Remove);
            Assert.Equal(PeerKey2, removed.PublicKey);
            var peer = Assert.Single(host.Device.GetState().Peers);
            Assert.Equal(PeerKey, peer.PublicKey);
            Assert.Equal([IPNetwork.Parse("100.64.0.9/32")], peer.AllowedIps);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task WgSetPeerRemove_RemovesPeer()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        host.Device.AddPeer(PeerKey);
        host.Device.AddPeer(PeerKey2);

        var (code, _, stderr) = await Wg.RunAsync(null, "set", host.Name, "peer", Convert.ToBase64String(PeerKey), "remove");

        Assert.True(code == 0, stderr);
        var peer = Assert.Single(host.Device.LastRequest.Peers);
        Assert.True(peer.Remove);
        Assert.Equal(PeerKey, peer.PublicKey);
        var peers = await Wg.RunAsync(null, "show", host.Name, "peers");
        Assert.Equal(Convert.ToBase64String(PeerKey2) + "\n", peers.StdOut);
    }

    [Fact]
    public async Task WgSet_DeviceRefuses_WgReportsTheErrno()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();
        host.Device.FailApplyWith = new UapiException(UapiErrno.AddressInUse, "port 1 is taken");

        var (code, _, stderr) = await Wg.RunAsync(null, "set", host.Name, "listen-port", "1");

        Assert.NotEqual(0, code);
        Assert.Contains("Address already in use", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WgShowAll_ListsOurInterface()
    {
        SkipWithoutWg();
        await using var host = UapiTestHost.Start();

        var (code, stdout, stderr) = await Wg.RunAsync(null, "show", "interfaces");

        Assert.True(code == 0, stderr);
        Assert.Contains(host.Name, stdout.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
    }

    private static void SkipWithoutWg()
    {
        if (Wg.MissingReason() is { } reason)
        {
            Assert.Skip(reason);
        }
    }
}
