using System.Net.Sockets;
using System.Text;
using Mesh.Net.Uapi;

namespace Mesh.Net.Tests.Uapi;

public sealed class UapiServerTests
{
    private static readonly string HexA = Convert.ToHexStringLower(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
    private static readonly string HexB = Convert.ToHexStringLower(Enumerable.Range(100, 32).Select(i => (byte)i).ToArray());

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Start_CreatesOwnerOnlySocketAndDispose_RemovesIt()
    {
        string path;
        await using (var host = UapiTestHost.Start())
        {
            path = host.Server.SocketPath;
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        Assert.False(Path.Exists(path));
    }

    [Fact]
    public async Task Start_SocketInUse_Throws()
    {
        await using var host = UapiTestHost.Start();
        await using var second = new UapiServer(host.Server.SocketPath, new FakeUapiDevice());

        Assert.Throws<IOException>(second.Start);
        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
    }

    [Fact]
    public async Task Start_StaleSocketFile_Replaced()
    {
        var path = UapiServer.DefaultSocketPath("uapstale" + Environment.ProcessId % 10000);
        File.Delete(path);
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            // .NET unlinks a bound socket's file on dispose; renaming it first leaves a socket file
            // nobody listens on, as a crashed process would.
            stale.Bind(new UnixDomainSocketEndPoint(path + ".tmp"));
            File.Move(path + ".tmp", path);
        }

        Assert.True(Path.Exists(path));
        await using var server = new UapiServer(path, new FakeUapiDevice());
        server.Start();
    }

    [Theory]
    [InlineData("")]
    [InlineData("waytoolongname0123")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void DefaultSocketPath_BadName_Throws(string name)
    {
        Assert.ThrowsAny<ArgumentException>(() => UapiServer.DefaultSocketPath(name));
    }

    [Fact]
    public async Task SetThenGet_OneConnection_SeveralRequestsInSequence()
    {
        await using var host = UapiTestHost.Start();

        var reply = await host.ExchangeAsync(
            $"set=1\nprivate_key={HexA}\nlisten_port=51820\npublic_key={HexB}\nallowed_ip=100.64.0.2/32\n\nget=1\n\nget=1\n\n", replies: 3);

        var expectedGet = $"private_key={HexA}\nlisten_port=51820\npublic_key={HexB}\npreshared_key={new string('0', 64)}\n"
            + "protocol_version=1\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
            + "persistent_keepalive_interval=0\nallowed_ip=100.64.0.2/32\nerrno=0\n\n";
        Assert.Equal("errno=0\n\n" + expectedGet + expectedGet, reply);
    }

    [Fact]
    public async Task Set_InvalidValue_RepliesEinvalAndAppliesNothing()
    {
        await using var host = UapiTestHost.Start();

        var reply = await host.ExchangeAsync($"set=1\nlisten_port=1\npublic_key={HexB}\nallowed_ip=10.0.0.0/99\n\nget=1\n\n", replies: 2);

        Assert.Equal("errno=-22\n\nerrno=0\n\n", reply);
        Assert.Empty(host.Device.Requests);
    }

    [Fact]
    public async Task Set_LineWithoutEquals_RepliesEprotoAndConnectionStaysUsable()
    {
        await using var host = UapiTestHost.Start();

        var reply = await host.ExchangeAsync("set=1\ngarbage\n\nset=1\nlisten_port=9\n\n", replies: 2);

        Assert.Equal("errno=-71\n\nerrno=0\n\n", reply);
        Assert.Equal(9, host.Device.LastRequest.ListenPort);
    }

    [Fact]
    public async Task Set_DeviceRefuses_RepliesDeviceErrno()
    {
        await using var host = UapiTestHost.Start();
        host.Device.FailApplyWith = new UapiException(UapiErrno.AddressInUse, "port taken");

        Assert.Equal("errno=-98\n\n", await host.ExchangeAsync("set=1\nlisten_port=1\n\n"));
    }

    [Fact]
    public async Task Set_DeviceThrowsUnexpectedly_RepliesEnoanoAndKeepsServing()
    {
        await using var host = UapiTestHost.Start();
        host.Device.FailApplyWith = new InvalidOperationException("boom");

        Assert.Equal("errno=-55\n\n", await host.ExchangeAsync("set=1\nlisten_port=1\n\n"));
        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
    }

    [Fact]
    public async Task Set_TruncatedBeforeBlankLine_NotApplied()
    {
        await using var host = UapiTestHost.Start();

        var reply = await host.ExchangeAsync($"set=1\nlisten_port=1\npublic_key={HexB}\nallowed_ip=10.0.0.0/8\nallowed_ip=10.", shutdownWrite: true);

        Assert.Equal(string.Empty, reply);
        Assert.Empty(host.Device.Requests);
        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
    }

    [Fact]
    public async Task Get_TrailingCharacter_RepliesEinval()
    {
        await using var host = UapiTestHost.Start();

        Assert.Equal("errno=-22\n\nerrno=0\n\n", await host.ExchangeAsync("get=1\nx\nget=1\n\n", replies: 2));
    }

    [Theory]
    [InlineData("hello\n")]
    [InlineData("get=2\n\n")]
    [InlineData("set=1\r\n\r\n")]
    [InlineData("GET=1\n\n")]
    public async Task UnknownOperation_ClosesConnectionWithoutReply(string request)
    {
        await using var host = UapiTestHost.Start();

        Assert.Equal(string.Empty, await host.ExchangeAsync(request));
        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
    }

    [Fact]
    public async Task HugeLine_RepliesEioAndCloses()
    {
        await using var host = UapiTestHost.Start(new UapiServerOptions { MaxLineLength = 256 });

        var reply = await host.ExchangeAsync("set=1\nlisten_port=" + new string('1', 100_000) + "\n\n");

        Assert.Equal("errno=-5\n\n", reply);
        Assert.Equal("errno=-5\n\n", await host.ExchangeAsync(new string('g', 10_000)));
        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
    }

    [Fact]
    public async Task HugeRequest_RepliesEmsgsizeAndAppliesNothing()
    {
        await using var host = UapiTestHost.Start(new UapiServerOptions { MaxRequestBytes = 4096 });
        var body = new StringBuilder($"set=1\npublic_key={HexB}\n");
        for (var i = 0; i < 1000; i++)
        {
            body.Append("allowed_ip=10.0.").Append(i / 256).Append('.').Append(i % 256).Append("/32\n");
        }

        Assert.Equal("errno=-90\n\n", await host.ExchangeAsync(body.Append('\n').ToString()));
        Assert.Empty(host.Device.Requests);
    }

    [Fact]
    public async Task RandomBytes_ServerSurvivesAndKeepsAnswering()
    {
        await using var host = UapiTestHost.Start();
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var bytes = new byte[random.Next(1, 3000)];
            random.NextBytes(bytes);
            if (i % 2 == 0)
            {
                var prefix = Encoding.ASCII.GetBytes(i % 4 == 0 ? "set=1\n" : "get=1\n");
                bytes = [.. prefix, .. bytes];
            }

            await host.ExchangeAsync(bytes, shutdownWrite: true);
        }

        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
    }

    [Fact]
    public async Task ClientDisconnectsMidReply_ServerKeepsServing()
    {
        await using var host = UapiTestHost.Start();
        for (var i = 0; i < 200; i++)
        {
            host.Device.AddPeer([.. Enumerable.Repeat((byte)i, 32)], p => p.AllowedIps.Add(System.Net.IPNetwork.Parse($"10.{i}.0.0/16")));
        }

        for (var i = 0; i < 20; i++)
        {
            using var socket = await host.ConnectAsync();
            await socket.SendAsync(Encoding.ASCII.GetBytes("get=1\n\n"), SocketFlags.None, TestContext.Current.CancellationToken);
            socket.Close(0);
        }

        var reply = await host.ExchangeAsync("get=1\n\n");
        Assert.EndsWith("errno=0\n\n", reply, StringComparison.Ordinal);
        Assert.Equal(200, reply.Split('\n').Count(l => l.StartsWith("public_key=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ManyConcurrentClients_AllServed()
    {
        await using var host = UapiTestHost.Start();

        var tasks = Enumerable.Range(0, 40).Select(i => i % 2 == 0
            ? host.ExchangeAsync($"set=1\npublic_key={i:x64}\nallowed_ip=10.0.0.{i}/32\n\n")
            : host.ExchangeAsync("get=1\n\n"));
        var replies = await Task.WhenAll(tasks);

        Assert.All(replies, r => Assert.EndsWith("errno=0\n\n", r, StringComparison.Ordinal));
        Assert.Equal(20, host.Device.Requests.Count);
        Assert.Equal(20, host.Device.GetState().Peers.Count);
    }

    [Fact]
    public async Task OpenIdleConnections_DoNotBlockOthersOrDispose()
    {
        var host = UapiTestHost.Start();
        var idle = new List<Socket>();
        for (var i = 0; i < 5; i++)
        {
            var s = await host.ConnectAsync();
            await s.SendAsync(Encoding.ASCII.GetBytes("set=1\nlisten_port=1\n"), SocketFlags.None, TestContext.Current.CancellationToken);
            idle.Add(s);
        }

        Assert.Equal("errno=0\n\n", await host.ExchangeAsync("get=1\n\n"));
        var dispose = host.DisposeAsync().AsTask();
        Assert.Same(dispose, await Task.WhenAny(dispose, Task.Delay(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken)));
        Assert.Empty(host.Device.Requests);
        idle.ForEach(s => s.Dispose());
    }

    [Fact]
    public async Task Logs_NeverContainKeyMaterial()
    {
        await using var host = UapiTestHost.Start();

        await host.ExchangeAsync($"set=1\nprivate_key={HexA}\npublic_key={HexB}\npreshared_key={HexA}\n\n");
        await host.ExchangeAsync($"set=1\nprivate_key={HexA[..60]}zzzz\n\n");
        await host.ExchangeAsync($"set=1\nprivate_key {HexA}\n\n");
        await host.ExchangeAsync("get=1\n\n");
        await host.ExchangeAsync($"{HexA}\n");

        Assert.NotEmpty(host.Logger.Messages);
        foreach (var message in host.Logger.Messages)
        {
            Assert.DoesNotContain(HexA[..20], message, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(HexB[..20], message, StringComparison.OrdinalIgnoreCase);
        }
    }
}
