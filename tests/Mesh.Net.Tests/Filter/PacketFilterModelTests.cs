using System.Net;
using CsCheck;
using Mesh.Net.Filter;
using static Mesh.Net.Tests.Filter.FilterPackets;

namespace Mesh.Net.Tests.Filter;

/// <summary>
/// The compiled filter against a linear scan of the rules, written as plainly as possible from
/// the documented semantics, for random rule sets and random first packets of a flow (bare SYN,
/// UDP, SCTP, echo requests, a portless protocol) with no flows recorded.
/// </summary>
public sealed class PacketFilterModelTests
{
    private const string SelfV4 = "10.9.0.1";
    private const string SelfV6 = "fd00:9::1";

    private static readonly IPNetwork[] Local = [IPNetwork.Parse(SelfV4 + "/32"), IPNetwork.Parse(SelfV6 + "/128")];
    private static readonly int[] ProtocolPool = [1, 6, 17, 58, 47, 132];
    private static readonly int[] PortPool = [0, 1, 2, 3, 5, 8, 22, 65534, 65535];

    // Small pools so that random rules and packets overlap often: sources 10.0.0.0/28 and fd00::/124,
    // destinations our address plus 10.1.0.0/29 and fd00:1::/125 (routes some rules name).
    private static readonly Gen<int> Octet = Gen.Int[0, 15];

    private static Gen<string> AddressSpec(bool destination) =>
        Gen.Select(Gen.Bool, Octet, Octet, Gen.Int[0, 5]).Select((v6, a, b, form) =>
        {
            if (destination)
            {
                a &= 7;
                b &= 7;
            }

            string Host(int n) => destination
                ? (v6 ? $"fd00:1::{n:x}" : $"10.1.0.{n}")
                : (v6 ? $"fd00::{n:x}" : $"10.0.0.{n}");
            int bits = v6 ? 128 : 32;
            return form switch
            {
                0 => "*",
                1 or 2 => Host(a),
                3 => $"{Host(a)}/{bits - (b % 4)}",
                4 => $"{Host(Math.Min(a, b))}-{Host(Math.Max(a, b))}",
                _ => destination ? (v6 ? SelfV6 : SelfV4) : Host(a),
            };
        });

    private static readonly Gen<FilterDestination> Destination =
        Gen.Select(AddressSpec(destination: true), Gen.Int[0, PortPool.Length - 1], Gen.Int[0, PortPool.Length - 1], Gen.Int[0, 4])
            .Select((ip, i, j, shape) => shape == 0
                ? FilterDestination.AllPorts(ip)
                : new FilterDestination(ip, PortPool[Math.Min(i, j)], PortPool[Math.Max(i, j)]));

    private static readonly Gen<FilterRuleSpec> RuleGen =
        Gen.Select(
            AddressSpec(destination: false).Array[1, 4],
            Destination.Array[1, 3],
            Gen.Frequency((2, Gen.Const((int[]?)null)), (3, Gen.Int[0, ProtocolPool.Length - 1].Array[1, 3].Select(ix => (int[]?)ix.Select(k => ProtocolPool[k]).ToArray()))))
        .Select((src, dst, proto) => new FilterRuleSpec(src, dst, proto));

    private static readonly Gen<(bool V6, int Src, int Dst, int Proto, int Port)> PacketGen =
        Gen.Select(Gen.Bool, Octet, Gen.Int[0, 9], Gen.Int[0, 5], Gen.Int[0, PortPool.Length - 1])
            .Select((v6, s, d, p, port) => (v6, s, d, p, PortPool[port]));

    [Fact]
    public void CompiledFilter_AgreesWithLinearScan()
    {
        Gen.Select(RuleGen.Array[0, 12], PacketGen.Array[40])
            .Sample(
                (rules, packets) =>
                {
                    var filter = PacketFilter.Compile(rules, Local);
                    foreach (var p in packets)
                    {
                        string src = p.V6 ? $"fd00::{p.Src:x}" : $"10.0.0.{p.Src}";
                        string dst = p.Dst switch
                        {
                            >= 8 => p.V6 ? (p.Dst == 8 ? SelfV6 : "fd00:2::1") : (p.Dst == 8 ? SelfV4 : "10.2.0.1"),
                            _ => p.V6 ? $"fd00:1::{p.Dst:x}" : $"10.1.0.{p.Dst}",
                        };
                        var (bytes, protocol) = Build(src, dst, p.Proto, p.Port, p.V6);
                        bool expected = NaiveAccepts(rules, protocol, src, dst, p.Port);
                        var verdict = filter.Inbound(bytes, 0);
                        if (verdict.IsAccepted != expected)
                        {
                            throw new InvalidOperationException(
                                $"{src} -> {dst} proto {protocol} port {p.Port}: filter {verdict}, model {expected}");
                        }
                    }
                },
                iter: 3000);
    }

    private static (byte[] Bytes, int Protocol) Build(string src, string dst, int kind, int port, bool v6) => kind switch
    {
        0 => (TcpPacket(src, 40000, dst, port, Syn), Tcp),
        1 => (UdpPacket(src, 40000, dst, port), Udp),
        2 => (Ip(src, dst, 132, SctpHeader(port)), 132),
        3 => (Echo(src, dst, request: true, identifier: port), v6 ? IcmpV6 : Icmp),
        4 => (Raw(src, dst, Gre), Gre),
        _ => (Echo(src, dst, request: true, identifier: port), v6 ? IcmpV6 : Icmp),
    };

    private static byte[] SctpHeader(int port)
    {
        var sctp = new byte[12];
        sctp[0] = 0x9c;
        sctp[1] = 0x40;
        sctp[2] = (byte)(port >> 8);
        sctp[3] = (byte)port;
        return sctp;
    }

    private static bool NaiveAccepts(FilterRuleSpec[] rules, int protocol, string src, string dst, int port)
    {
        var source = IPAddress.Parse(src);
        var destination = IPAddress.Parse(dst);
        bool forUs = destination.Equals(IPAddress.Parse(SelfV4)) || destination.Equals(IPAddress.Parse(SelfV6));
        foreach (var rule in rules)
        {
            foreach (var d in rule.DstPorts)
            {
                forUs |= d.Ip != "*" && Contains(d.Ip, destination);
            }
        }

        if (!forUs)
        {
            return false;
        }

        foreach (var rule in rules)
        {
            int[] protocols = rule.IPProto is { Count: > 0 } list ? [.. list] : [6, 17, 1, 58];
            if (Array.IndexOf(protocols, protocol) < 0 || !rule.SrcIPs.Any(s => Contains(s, source)))
            {
                continue;
            }

            foreach (var d in rule.DstPorts)
            {
                bool portOk = protocol switch
                {
                    6 or 17 or 132 => d.First <= port && port <= d.Last,
                    1 or 58 => true,
                    _ => d.First == 0 && d.Last == 65535,
                };
                if (portOk && Contains(d.Ip, destination))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Whether an entry ("*", address, CIDR, range) contains an address, bit by bit.</summary>
    private static bool Contains(string entry, IPAddress address)
    {
        if (entry == "*")
        {
            return true;
        }

        byte[] a = address.GetAddressBytes();
        int dash = entry.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            byte[] lo = IPAddress.Parse(entry[..dash]).GetAddressBytes();
            byte[] hi = IPAddress.Parse(entry[(dash + 1)..]).GetAddressBytes();
            return lo.Length == a.Length && Compare(lo, a) <= 0 && Compare(a, hi) <= 0;
        }

        int slash = entry.IndexOf('/', StringComparison.Ordinal);
        byte[] net = IPAddress.Parse(slash >= 0 ? entry[..slash] : entry).GetAddressBytes();
        int bits = slash >= 0 ? int.Parse(entry[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture) : net.Length * 8;
        if (net.Length != a.Length)
        {
            return false;
        }

        for (int i = 0; i < bits; i++)
        {
            int mask = 0x80 >> (i % 8);
            if ((net[i / 8] & mask) != (a[i / 8] & mask))
            {
                return false;
            }
        }

        return true;
    }

    private static int Compare(byte[] x, byte[] y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] != y[i])
            {
                return x[i].CompareTo(y[i]);
            }
        }

        return 0;
    }
}
