using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Mesh.Policy.Tests.Conformance;

/// <summary>A filter rule reduced to what it means: source addresses, protocols, destination addresses and ports.</summary>
internal sealed record CanonRule(IpSet Src, int[] Protocols, List<(IpSet Dst, PortRange Ports)> Dsts)
{
    private static readonly int[] DefaultProtocols = [1, 6, 17, 58];

    public static CanonRule FromJson(JsonElement rule)
    {
        var src = ParseSet(rule.GetProperty("SrcIPs").EnumerateArray().Select(static e => e.GetString()!));
        var protocols = rule.TryGetProperty("IPProto", out var p) && p.ValueKind == JsonValueKind.Array && p.GetArrayLength() > 0
            ? p.EnumerateArray().Select(static e => e.GetInt32()).ToArray()
            : DefaultProtocols;
        var dsts = new List<(IpSet, PortRange)>();
        if (rule.TryGetProperty("DstPorts", out var dp) && dp.ValueKind == JsonValueKind.Array)
        {
            foreach (var d in dp.EnumerateArray())
            {
                var ports = d.GetProperty("Ports");
                dsts.Add((ParseSet([d.GetProperty("IP").GetString()!]), new PortRange(ports.GetProperty("First").GetInt32(), ports.GetProperty("Last").GetInt32())));
            }
        }

        return new CanonRule(src, protocols, dsts);
    }

    public static CanonRule From(FilterRule rule) => new(
        ParseSet(rule.SrcIPs),
        rule.IPProto is { Count: > 0 } p ? [.. p] : DefaultProtocols,
        [.. rule.DstPorts.Select(static d => (ParseSet([d.IP]), d.Ports))]);

    /// <summary>Addresses, CIDRs, "a-b" ranges and "*".</summary>
    public static IpSet ParseSet(IEnumerable<string> texts)
    {
        var sets = new List<IpSet>();
        foreach (var t in texts)
        {
            if (t == "*")
            {
                sets.Add(IpSet.All);
            }
            else if (t.Contains('-', StringComparison.Ordinal))
            {
                var parts = t.Split('-');
                if (!IpText.TryParseAddress(parts[0], out var a) || !IpText.TryParseAddress(parts[1], out var b))
                {
                    throw new FormatException($"bad range {t}");
                }

                sets.Add(IpSet.Of(new IpRange(a, b)));
            }
            else if (IpText.TryParsePrefix(t, out var s, out _))
            {
                sets.Add(s);
            }
            else
            {
                throw new FormatException($"bad address {t}");
            }
        }

        return IpSet.Union(sets);
    }
}

/// <summary>
/// The canonical form of a node's filter: for every protocol, elementary destination block and elementary port
/// block, the set of sources allowed. Two filters are equal exactly when they allow the same
/// (source, destination, port, protocol) tuples, whatever their order or grouping.
/// </summary>
internal static class FilterCanon
{
    public static SortedDictionary<string, string> Canonicalise(IReadOnlyList<CanonRule> rules, IReadOnlyList<CanonRule> other)
    {
        // Breakpoints from both sides so that both canonicalise over the same cells.
        var dstPoints = new SortedSet<UInt128>();
        var portPoints = new SortedSet<int>();
        foreach (var r in rules.Concat(other))
        {
            foreach (var (dst, ports) in r.Dsts)
            {
                foreach (var range in dst.Ranges)
                {
                    dstPoints.Add(range.First);
                    if (range.Last != UInt128.MaxValue)
                    {
                        dstPoints.Add(range.Last + 1);
                    }
                }

                portPoints.Add(ports.First);
                portPoints.Add(ports.Last + 1);
            }
        }

        var dstCuts = dstPoints.ToArray();
        var portCuts = portPoints.ToArray();
        var cells = new Dictionary<(int Proto, int Dst, int Port), List<IpSet>>();
        foreach (var r in rules)
        {
            foreach (var (dst, ports) in r.Dsts)
            {
                foreach (var range in dst.Ranges)
                {
                    var d0 = Array.BinarySearch(dstCuts, range.First);
                    for (var d = d0; d < dstCuts.Length && dstCuts[d] <= range.Last; d++)
                    {
                        var p0 = Array.BinarySearch(portCuts, ports.First);
                        for (var p = p0; p < portCuts.Length && portCuts[p] <= ports.Last; p++)
                        {
                            foreach (var proto in r.Protocols)
                            {
                                if (!cells.TryGetValue((proto, d, p), out var list))
                                {
                                    cells[(proto, d, p)] = list = [];
                                }

                                list.Add(r.Src);
                            }
                        }
                    }
                }
            }
        }

        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var ((proto, d, p), srcs) in cells)
        {
            var src = IpSet.Union(srcs);
            if (src.IsEmpty)
            {
                continue;
            }

            var dLast = d + 1 < dstCuts.Length ? dstCuts[d + 1] - 1 : UInt128.MaxValue;
            var pLast = p + 1 < portCuts.Length ? portCuts[p + 1] - 1 : 65535;
            var key = string.Create(CultureInfo.InvariantCulture,
                $"proto {proto,3} dst {string.Join(",", IpText.FormatRange(new IpRange(dstCuts[d], dLast)))} ports {portCuts[p]}-{pLast}");
            result[key] = src.ToString();
        }

        return result;
    }

    /// <summary>Null when equal; otherwise a readable description of the first differences.</summary>
    public static string? Diff(IReadOnlyList<CanonRule> expected, IReadOnlyList<CanonRule> actual)
    {
        var e = Canonicalise(expected, actual);
        var a = Canonicalise(actual, expected);
        var sb = new StringBuilder();
        var shown = 0;
        foreach (var key in e.Keys.Union(a.Keys).Order(StringComparer.Ordinal))
        {
            e.TryGetValue(key, out var ev);
            a.TryGetValue(key, out var av);
            if (ev == av)
            {
                continue;
            }

            if (shown++ < 6)
            {
                sb.Append(CultureInfo.InvariantCulture, $"    {key}: expected src [{ev ?? "none"}], got [{av ?? "none"}]\n");
            }
        }

        return shown == 0 ? null : sb.Append(CultureInfo.InvariantCulture, $"    ({shown} cells differ)").ToString();
    }
}
