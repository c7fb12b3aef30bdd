using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Mesh.Net.Filter;

namespace Mesh.Benchmarks;

/// <summary>
/// The packet filter's per-packet work (Mesh.Net.Filter): a bare TCP SYN checked against 1,000
/// rules of 20 sources each (allowed, or dropped after also missing the flow table), an inbound UDP reply found in a flow table
/// of 32k flows, and recording an outbound UDP packet. Each invocation runs <see cref="Batch"/>
/// pre-made packets, so the reported time is per packet.
/// </summary>
[MemoryDiagnoser]
public class FilterBenchmarks
{
    public const int Batch = 1024;
    private const int Rules = 1000;
    private const int Hosts = 4000;
    private const int Flows = 32_768;

    private PacketFilter _filter = null!;
    private byte[][] _allowedSyns = null!;
    private byte[][] _droppedSyns = null!;
    private byte[][] _replies = null!;
    private byte[][] _sends = null!;
    private const long Now = 1;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(20261126);
        var rules = new List<FilterRuleSpec>(Rules);
        for (int r = 0; r < Rules; r++)
        {
            var sources = new string[20];
            for (int s = 0; s < sources.Length; s++)
            {
                sources[s] = Host(random.Next(Hosts));
            }

            rules.Add(new FilterRuleSpec(sources, [new FilterDestination("*", 1000 + r, 1000 + r)]));
        }

        _filter = PacketFilter.Compile(rules, [System.Net.IPAddress.Parse("100.64.0.1")], new FlowTable(65536));
        _allowedSyns = new byte[Batch][];
        _droppedSyns = new byte[Batch][];
        for (int i = 0; i < Batch; i++)
        {
            int r = random.Next(Rules);
            _allowedSyns[i] = Packet(6, rules[r].SrcIPs[random.Next(20)], 40000, "100.64.0.1", 1000 + r);
            _droppedSyns[i] = Packet(6, Host(random.Next(Hosts)), 40000, "100.64.0.1", 999);
        }

        for (int f = 0; f < Flows; f++)
        {
            _filter.Outbound(Packet(17, "100.64.0.1", 10000 + (f % 50000), Host(f % Hosts), 53), 0);
        }

        _replies = new byte[Batch][];
        _sends = new byte[Batch][];
        for (int i = 0; i < Batch; i++)
        {
            int f = random.Next(Flows);
            _replies[i] = Packet(17, Host(f % Hosts), 53, "100.64.0.1", 10000 + (f % 50000));
            _sends[i] = Packet(17, "100.64.0.1", 10000 + (f % 50000), Host(f % Hosts), 53);
        }
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int InboundSynAllowed()
    {
        int accepted = 0;
        foreach (var packet in _allowedSyns)
        {
            accepted += _filter.Inbound(packet, Now).IsAccepted ? 1 : 0;
        }

        return accepted;
    }

    /// <summary>No rule opens port 999: the rules miss, then the flow table is asked.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public int InboundSynDropped()
    {
        int accepted = 0;
        foreach (var packet in _droppedSyns)
        {
            accepted += _filter.Inbound(packet, Now).IsAccepted ? 1 : 0;
        }

        return accepted;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int InboundUdpReply()
    {
        int accepted = 0;
        foreach (var packet in _replies)
        {
            accepted += _filter.Inbound(packet, Now).IsAccepted ? 1 : 0;
        }

        return accepted;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public void OutboundUdp()
    {
        foreach (var packet in _sends)
        {
            _filter.Outbound(packet, Now);
        }
    }

    private static string Host(int i) => $"100.65.{i / 250}.{i % 250}";

    private static byte[] Packet(byte protocol, string source, int sourcePort, string destination, int destinationPort)
    {
        var packet = new byte[40];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        packet[8] = 64;
        packet[9] = protocol;
        System.Net.IPAddress.Parse(source).TryWriteBytes(packet.AsSpan(12), out _);
        System.Net.IPAddress.Parse(destination).TryWriteBytes(packet.AsSpan(16), out _);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(20), (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(22), (ushort)destinationPort);
        if (protocol == 6)
        {
            packet[32] = 5 << 4;
            packet[33] = 0x02;
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(24), 20);
        }

        return packet;
    }
}
