using System.Text.Json;
using Mesh.Control.NodeApi;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Mesh.WireGuard;

namespace Mesh.Control.Tests.NodeApi;

/// <summary>
/// The coordinator writes map responses with shared peer entries, in pieces; the node parses them
/// with the source-generated serializer. The model is that serializer's own output: every shape of
/// message must come out byte for byte the same, however it is read.
/// </summary>
public sealed class MapResponsePlaintextTests
{
    public static TheoryData<string> Shapes => [.. Messages().Keys];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Bytes_EqualTheSerializers(string shape)
    {
        var map = Messages()[shape];
        var expected = JsonSerializer.SerializeToUtf8Bytes(map, ControlJsonContext.Default.MapResponse);

        using var plaintext = MapResponsePlaintext.Create(map);

        Assert.Equal(expected.Length, plaintext.Length);
        Assert.Equal(System.Text.Encoding.UTF8.GetString(expected), System.Text.Encoding.UTF8.GetString(ReadAll(plaintext, 64 * 1024)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(1000)]
    public void Bytes_ReadInAnyPieceSize_AreTheSame(int piece)
    {
        var map = Messages()["full map"];
        var expected = JsonSerializer.SerializeToUtf8Bytes(map, ControlJsonContext.Default.MapResponse);

        using var plaintext = MapResponsePlaintext.Create(map);

        Assert.Equal(expected, ReadAll(plaintext, piece));
    }

    [Fact]
    public void PeerEntry_SerializedOncePerInstance_SharedByEveryMapHoldingIt()
    {
        var peer = Node(7, "shared");
        var first = MapResponsePlaintext.JsonOf(peer);

        Assert.Same(first, MapResponsePlaintext.JsonOf(peer));
        Assert.NotSame(first, MapResponsePlaintext.JsonOf(peer with { Online = true }));
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(peer, ControlJsonContext.Default.MapNode), first);
    }

    [Fact]
    public void Parsed_AsTheNodeParsesIt_GivesTheSameMap()
    {
        var map = Messages()["full map"];
        using var plaintext = MapResponsePlaintext.Create(map);

        var parsed = JsonSerializer.Deserialize(ReadAll(plaintext, 4096), ControlJsonContext.Default.MapResponse)!;

        Assert.Equal(map.Peers!.Select(p => p.Name), parsed.Peers!.Select(p => p.Name));
        Assert.Equal(map.Self!.Fqdn, parsed.Self!.Fqdn);
        Assert.Equal(map.PacketFilter![0].DstPorts[0].Ports.Last, parsed.PacketFilter![0].DstPorts[0].Ports.Last);
    }

    private static byte[] ReadAll(MapResponsePlaintext plaintext, int piece)
    {
        var output = new MemoryStream();
        var buffer = new byte[piece];
        int n;
        while ((n = plaintext.Read(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }

    private static Dictionary<string, MapResponse> Messages()
    {
        var peers = Enumerable.Range(1, 40).Select(i => Node(i, i == 3 ? "café-ü" : $"peer-{i}")).ToList();
        var filter = new List<FilterRule>
        {
            new() { SrcIPs = ["100.64.0.1/32", "*"], DstPorts = [new NetPortRange { IP = "*", Ports = new PortRange { First = 22, Last = 22 } }], IPProto = [6, 17] },
            new() { SrcIPs = ["100.64.0.2/32"], DstPorts = [new NetPortRange { IP = "100.64.0.9/32", Ports = new PortRange { First = 0, Last = 65535 } }] },
        };
        var dns = new DnsConfig { MagicDns = true, BaseDomain = "mesh.internal", Nameservers = ["1.1.1.1"], SearchDomains = ["mesh.internal"], ExtraRecords = [new DnsRecord("x.mesh.internal", "A", "100.64.0.50")] };
        var relay = new RelayMap { Regions = [new RelayRegion { RegionId = 999, RegionCode = "mesh", Nodes = [new RelayNode { Name = "999a", Url = "http://127.0.0.1:8080/derp", StunEndpoint = "127.0.0.1:3478" }] }] };
        return new Dictionary<string, MapResponse>
        {
            ["full map"] = new() { Seq = 1, Self = Node(100, "self"), Peers = peers, PacketFilter = filter, Dns = dns, RelayMap = relay, Domain = "mesh.internal" },
            ["full map, no peers"] = new() { Seq = 1, Self = Node(100, "self"), Peers = [], PacketFilter = [], Dns = dns, RelayMap = new RelayMap(), Domain = "mesh.internal" },
            ["full map, one peer"] = new() { Seq = 2, Self = Node(100, "self"), Peers = [peers[0]], PacketFilter = filter },
            ["delta"] = new() { Seq = 9, PeersChanged = peers[..5], PeersRemoved = [3, 4, 99] },
            ["delta with self and filter"] = new() { Seq = 10, Self = Node(100, "self") with { Expired = true }, PeersChanged = [peers[2]], PacketFilter = filter, Dns = dns },
            ["removals only"] = new() { Seq = 11, PeersRemoved = [1] },
            ["both peer lists"] = new() { Seq = 12, Peers = peers[..3], PeersChanged = peers[3..6] },
            ["keep-alive"] = new() { KeepAlive = true },
            ["empty"] = new(),
        };
    }

    private static MapNode Node(int id, string name) => new()
    {
        Id = id,
        Name = name,
        Fqdn = $"{name}.mesh.internal.",
        User = id % 2 == 0 ? "alice" : null,
        Tags = id % 2 == 0 ? [] : ["tag:server"],
        NodeKey = new NodeKey(Key(id, 1)),
        MachineKey = new MachineKey(Key(id, 2)),
        DiscoKey = id % 3 == 0 ? null : new DiscoKey(Key(id, 3)),
        Addresses = [$"100.64.0.{id}/32", $"fd7a:115c:a1e0::{id:x}/128"],
        AllowedIps = [$"100.64.0.{id}/32", $"fd7a:115c:a1e0::{id:x}/128", "10.0.0.0/24"],
        Endpoints = [$"198.18.0.{id}:41641", "[2001:db8::1]:41641"],
        HomeRelay = id % 2 == 0 ? 999 : null,
        Online = id % 2 == 0,
        LastSeen = DateTimeOffset.Parse("2025-01-02T03:04:05Z", System.Globalization.CultureInfo.InvariantCulture).AddSeconds(id),
        KeyExpiry = id % 4 == 0 ? null : DateTimeOffset.Parse("2026-01-02T03:04:05+02:00", System.Globalization.CultureInfo.InvariantCulture),
        PrimaryRoutes = id == 5 ? ["10.0.0.0/24"] : [],
        ExitNode = id == 6,
    };

    private static NoisePublicKey Key(int id, int kind)
    {
        var bytes = new byte[NoisePublicKey.Size];
        BitConverter.TryWriteBytes(bytes, id);
        bytes[30] = (byte)kind;
        bytes[31] = 0x5a;
        return new NoisePublicKey(bytes);
    }
}
