using System.Diagnostics;
using System.Net;
using Mesh.Net.Device;
using Mesh.Net.Filter;
using Mesh.Protocol.Control;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// The node's inbound filter as the device sees it: the netmap's packet filter compiled into a
/// <see cref="PacketFilter"/> (stateful: replies to connections this node opened pass), swapped
/// atomically on every map, with drops counted by reason.
/// </summary>
internal sealed class AgentFilter : IPacketFilterHook
{
    private readonly long[] _drops = new long[FilterVerdict.ReasonCount];
    private PacketFilter _filter;

    private AgentFilter(PacketFilter filter) => _filter = filter;

    /// <summary>A filter that accepts nothing but replies, until the first map arrives.</summary>
    public static AgentFilter Closed() => new(PacketFilter.Compile([], (IEnumerable<IPNetwork>?)null));

    /// <summary>
    /// Installs the rules of a map. Local prefixes are the node's own addresses and the routes it
    /// serves (subnet routes it is primary for; the default routes when it is an approved exit node).
    /// </summary>
    public void Update(IReadOnlyList<FilterRule> rules, MapNode self)
    {
        var specs = rules.Select(r => new FilterRuleSpec(
            r.SrcIPs,
            [.. r.DstPorts.Select(d => new FilterDestination(d.IP, d.Ports.First, d.Ports.Last))],
            r.IPProto is { Count: > 0 } protocols ? protocols : null)).ToList();
        var local = new List<IPNetwork>();
        local.AddRange(self.Addresses.Select(IPNetwork.Parse));
        local.AddRange(self.PrimaryRoutes.Select(IPNetwork.Parse));
        if (self.ExitNode)
        {
            local.Add(IPNetwork.Parse("0.0.0.0/0"));
            local.Add(IPNetwork.Parse("::/0"));
        }

        Volatile.Write(ref _filter, Volatile.Read(ref _filter).WithRules(specs, local));
    }

    public bool Inbound(ReadOnlySpan<byte> packet)
    {
        var verdict = Volatile.Read(ref _filter).Inbound(packet, Now);
        if (!verdict.IsAccepted)
        {
            Interlocked.Increment(ref _drops[(int)verdict.Reason]);
        }

        return verdict.IsAccepted;
    }

    public void Outbound(ReadOnlySpan<byte> packet) => Volatile.Read(ref _filter).Outbound(packet, Now);

    /// <summary>Dropped packets so far, by reason.</summary>
    public IReadOnlyDictionary<string, long> Drops()
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < _drops.Length; i++)
        {
            var n = Interlocked.Read(ref _drops[i]);
            if (n > 0)
            {
                result[((FilterReason)i).ToString()] = n;
            }
        }

        return result;
    }

    private static long Now => TimeSpan.FromSeconds(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency).Ticks;
}
