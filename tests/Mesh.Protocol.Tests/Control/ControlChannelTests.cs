using System.Text;
using System.Text.Json;
using Mesh.Protocol.Control;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Tests.Control;

public class ControlChannelTests
{
    private static byte[] NewKey()
    {
        var key = new byte[32];
        X25519.GeneratePrivateKey(key);
        return key;
    }

    private static (ControlServer Server, ControlClientHandshake Client, byte[] MachinePrivate) Pair()
    {
        var server = new ControlServer(NewKey());
        var machine = NewKey();
        return (server, new ControlClientHandshake(machine, server.PublicKey), machine);
    }

    [Fact]
    public void Handshake_AuthenticatesMachineKey_AndSealsBothWays()
    {
        var (server, client, _) = Pair();
        Assert.True(server.TryAccept(client.CreateInitiation(), out var response, out var serverSession, out var error), error);
        var clientSession = client.Complete(response);

        Assert.Equal(client.MachineKey, serverSession!.Peer);
        Assert.Equal(server.PublicKey, clientSession.Peer);

        var request = clientSession.Seal("{\"hello\":1}"u8, ControlPaths.Register);
        Assert.True(server.TryGetSession(request, out var found));
        Assert.Same(serverSession, found);
        Assert.Equal("{\"hello\":1}", Encoding.UTF8.GetString(found.Open(request, ControlPaths.Register)!));

        var reply = serverSession.Seal("ok"u8, ControlPaths.Register);
        Assert.Equal("ok", Encoding.UTF8.GetString(clientSession.Open(reply, ControlPaths.Register)!));
    }

    [Fact]
    public void SealedRequest_OpenedForAnotherPath_Refused()
    {
        var (server, client, _) = Pair();
        server.TryAccept(client.CreateInitiation(), out var response, out var serverSession, out _);
        var clientSession = client.Complete(response);
        var request = clientSession.Seal("x"u8, ControlPaths.Register);
        Assert.Null(serverSession!.Open(request, ControlPaths.Map));
    }

    [Fact]
    public void SealedRequest_ReplayedOrTampered_Refused()
    {
        var (server, client, _) = Pair();
        server.TryAccept(client.CreateInitiation(), out var response, out var serverSession, out _);
        var clientSession = client.Complete(response);
        var request = clientSession.Seal("payload"u8, ControlPaths.Map);

        Assert.NotNull(serverSession!.Open(request, ControlPaths.Map));
        Assert.Null(serverSession.Open(request, ControlPaths.Map));

        var next = clientSession.Seal("payload"u8, ControlPaths.Map);
        for (var i = 0; i < next.Length; i++)
        {
            var tampered = (byte[])next.Clone();
            tampered[i] ^= 0x01;
            Assert.Null(serverSession.Open(tampered, ControlPaths.Map));
        }

        Assert.NotNull(serverSession.Open(next, ControlPaths.Map));
    }

    [Fact]
    public void Initiation_ForAnotherCoordinatorKey_Refused()
    {
        var server = new ControlServer(NewKey());
        var other = new ControlServer(NewKey());
        var client = new ControlClientHandshake(NewKey(), other.PublicKey);
        Assert.False(server.TryAccept(client.CreateInitiation(), out _, out _, out var error));
        Assert.Contains("mac1", error);
    }

    [Fact]
    public void Initiation_Replayed_Refused()
    {
        var (server, client, _) = Pair();
        var initiation = client.CreateInitiation();
        Assert.True(server.TryAccept(initiation, out _, out _, out _));
        Assert.False(server.TryAccept(initiation, out _, out _, out var error));
        Assert.Contains("replay", error);
    }

    [Fact]
    public void Response_FromImpostorWithoutCoordinatorKey_Refused()
    {
        var real = new ControlServer(NewKey());
        var impostor = new ControlServer(NewKey());
        var client = new ControlClientHandshake(NewKey(), real.PublicKey);
        var initiation = client.CreateInitiation();
        // The impostor cannot even read the initiation; a response it makes for its own client does not fit.
        Assert.False(impostor.TryAccept(initiation, out _, out _, out _));
        var other = new ControlClientHandshake(NewKey(), impostor.PublicKey);
        impostor.TryAccept(other.CreateInitiation(), out var foreignResponse, out _, out _);
        Assert.Throws<ControlProtocolException>(() => client.Complete(foreignResponse));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(147)]
    [InlineData(149)]
    public void Initiation_WrongSize_Refused(int size)
    {
        var server = new ControlServer(NewKey());
        Assert.False(server.TryAccept(new byte[size], out _, out _, out _));
    }

    [Fact]
    public void Sweep_ForgetsIdleSessions()
    {
        var clock = new ManualClock();
        var server = new ControlServer(NewKey(), clock);
        var client = new ControlClientHandshake(NewKey(), server.PublicKey, clock);
        server.TryAccept(client.CreateInitiation(), out var response, out _, out _);
        var session = client.Complete(response);
        var request = session.Seal("x"u8, ControlPaths.Map);

        clock.Advance(ControlServer.IdleTimeout + TimeSpan.FromSeconds(1));
        server.Sweep();

        Assert.Equal(0, server.SessionCount);
        Assert.False(server.TryGetSession(request, out _));
    }

    [Fact]
    public void Keys_RoundTripThroughJson_AndRefuseWrongKind()
    {
        var machine = new MachineKey(new Mesh.WireGuard.NoisePublicKey(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        var text = machine.ToString();
        Assert.StartsWith("mkey:000102", text);
        Assert.Equal(machine, MachineKey.Parse(text));
        Assert.False(NodeKey.TryParse(text, out _, out var error));
        Assert.Contains("nodekey:", error);
        Assert.False(NodeKey.TryParse("nodekey:zz", out _, out error));
        Assert.Contains("64 hex digits", error);

        var json = JsonSerializer.Serialize(new ServerKeyResponse(machine), ControlJsonContext.Default.ServerKeyResponse);
        Assert.Equal($"{{\"publicKey\":\"{text}\"}}", json);
        Assert.Equal(machine, JsonSerializer.Deserialize(json, ControlJsonContext.Default.ServerKeyResponse)!.PublicKey);
    }

    [Fact]
    public void MapResponse_FilterRules_UseTailscaleFieldNames()
    {
        var map = new MapResponse
        {
            PacketFilter = [new FilterRule { SrcIPs = ["100.64.0.1/32"], DstPorts = [new NetPortRange { IP = "*", Ports = new PortRange { First = 22, Last = 22 } }] }],
        };
        var json = JsonSerializer.Serialize(map, ControlJsonContext.Default.MapResponse);
        Assert.Contains("\"SrcIPs\":[\"100.64.0.1/32\"]", json);
        Assert.Contains("\"DstPorts\":[{\"IP\":\"*\",\"Ports\":{\"First\":22,\"Last\":22}}]", json);
        Assert.DoesNotContain("IPProto", json);
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
        private long _ticks = TimeSpan.TicksPerHour;

        public override DateTimeOffset GetUtcNow() => _now;

        public override long GetTimestamp() => _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public void Advance(TimeSpan by)
        {
            _now += by;
            _ticks += by.Ticks;
        }
    }
}
