using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using M = Mesh.Net.Linux.NetlinkMessage;

namespace Mesh.Net.Linux;

/// <summary>One route of a routing table, as a route dump reports it.</summary>
/// <param name="Destination">The destination prefix's address (0.0.0.0 or :: for a default route).</param>
/// <param name="PrefixLength">The destination prefix's length (0 for a default route).</param>
/// <param name="Gateway">The next hop, or null for a directly connected (on-link) route.</param>
/// <param name="OutputInterface">The outgoing interface's index (the first next hop's, for a multipath route).</param>
/// <param name="Metric">The route's priority; lower wins among routes of equal prefix.</param>
/// <param name="Table">The routing table (254 is main).</param>
/// <param name="Type">RTN_UNICAST (1), RTN_LOCAL (2), RTN_BLACKHOLE (6), …</param>
public sealed record RouteEntry(IPAddress Destination, int PrefixLength, IPAddress? Gateway, int OutputInterface, int Metric, int Table, byte Type)
{
    public bool IsUnicast => Type == 1;

    public bool Contains(IPAddress address) =>
        address.AddressFamily == Destination.AddressFamily && new IPNetwork(Destination, PrefixLength).Contains(address);
}

/// <summary>Route dumps and routes through a gateway: what bypassing a tunnel for a few hosts needs.</summary>
public sealed unsafe partial class RtNetlink
{
    private const ushort NLM_F_DUMP = 0x300;
    private const ushort RTM_NEWROUTE = 24;
    private const ushort RTA_GATEWAY = 5;
    private const ushort RTA_MULTIPATH = 9;
    private const ushort RTA_TABLE = 15;

    /// <summary>The main table's routes of one family (IPv4 or IPv6).</summary>
    public IReadOnlyList<RouteEntry> GetRoutes(AddressFamily family)
    {
        byte af = family switch
        {
            AddressFamily.InterNetwork => Native.AF_INET,
            AddressFamily.InterNetworkV6 => Native.AF_INET6,
            _ => throw new ArgumentException("IPv4 or IPv6", nameof(family)),
        };
        var routes = new List<RouteEntry>();
        int errno;
        lock (_lock)
        {
            var m = new M(_request, M.RTM_GETROUTE, (ushort)(M.NLM_F_REQUEST | NLM_F_DUMP), ++_seq);
            m.RtMsg(af, 0, 0, 0, 0, 0);
            errno = ExchangeLocked(m.Finish(), message =>
            {
                if (ParseRoute(message) is { Table: M.RT_TABLE_MAIN } route)
                {
                    routes.Add(route);
                }
            });
        }

        ThrowIfFailed(errno, () => $"listing the {(af == Native.AF_INET ? "IPv4" : "IPv6")} routes");
        return routes;
    }

    /// <summary>
    /// The main-table route a packet to <paramref name="address"/> would take, computed from a dump
    /// (longest prefix, then lowest metric) and leaving out every route through the interfaces in
    /// <paramref name="excludedInterfaces"/>; null when nothing matches. Policy rules and other
    /// tables are not considered.
    /// </summary>
    public static RouteEntry? BestMatch(IEnumerable<RouteEntry> routes, IPAddress address, params int[] excludedInterfaces) =>
        routes.Where(r => r.IsUnicast && !excludedInterfaces.Contains(r.OutputInterface) && r.Contains(address))
            .OrderByDescending(r => r.PrefixLength)
            .ThenBy(r => r.Metric)
            .FirstOrDefault();

    /// <summary>
    /// Adds or replaces the main-table route to the prefix through <paramref name="gateway"/> on
    /// the interface (on-link, scope link, when the gateway is null).
    /// </summary>
    public void AddGatewayRoute(int ifindex, IPAddress destination, int prefixLength, IPAddress? gateway, int metric = 0) =>
        ChangeGatewayRoute(add: true, ifindex, destination, prefixLength, gateway, metric);

    /// <summary>Deletes that route (ESRCH if there is none).</summary>
    public void DeleteGatewayRoute(int ifindex, IPAddress destination, int prefixLength, IPAddress? gateway, int metric = 0) =>
        ChangeGatewayRoute(add: false, ifindex, destination, prefixLength, gateway, metric);

    private void ChangeGatewayRoute(bool add, int ifindex, IPAddress destination, int prefixLength, IPAddress? gateway, int metric)
    {
        ArgumentNullException.ThrowIfNull(destination);
        byte family = Family(destination, prefixLength);
        if (gateway is not null && gateway.AddressFamily != destination.AddressFamily)
        {
            throw new ArgumentException($"gateway {gateway} is not of the destination's family", nameof(gateway));
        }

        int errno;
        lock (_lock)
        {
            ushort flags = add
                ? (ushort)(M.NLM_F_REQUEST | M.NLM_F_ACK | M.NLM_F_CREATE | M.NLM_F_REPLACE)
                : (ushort)(M.NLM_F_REQUEST | M.NLM_F_ACK);
            var m = new M(_request, add ? M.RTM_NEWROUTE : M.RTM_DELROUTE, flags, ++_seq);
            byte scope = !add ? M.RT_SCOPE_NOWHERE
                : gateway is not null || family == Native.AF_INET6 ? M.RT_SCOPE_UNIVERSE : M.RT_SCOPE_LINK;
            m.RtMsg(family, (byte)prefixLength, M.RT_TABLE_MAIN, M.RTPROT_STATIC, scope, M.RTN_UNICAST);
            m.AttributeAddress(M.RTA_DST, Network(destination, prefixLength));
            m.AttributeU32(M.RTA_OIF, (uint)ifindex);
            if (gateway is not null)
            {
                m.AttributeAddress(RTA_GATEWAY, gateway);
            }

            if (metric != 0)
            {
                m.AttributeU32(M.RTA_PRIORITY, (uint)metric);
            }

            errno = TransactLocked(m.Finish());
        }

        string via = gateway is null ? "" : $" via {gateway}";
        ThrowIfFailed(errno, () => $"{(add ? "adding" : "deleting")} route {Cidr(Network(destination, prefixLength), prefixLength)}{via} dev {Describe(ifindex)}");
    }

    private static RouteEntry? ParseRoute(ReadOnlySpan<byte> message)
    {
        if (message.Length < M.HeaderLength + M.RtMsgLength
            || BinaryPrimitives.ReadUInt16LittleEndian(message[M.HeaderTypeOffset..]) != RTM_NEWROUTE)
        {
            return null;
        }

        var rt = message[M.HeaderLength..];
        byte family = rt[M.RtFamilyOffset];
        if (family is not (Native.AF_INET or Native.AF_INET6))
        {
            return null;
        }

        int prefixLength = rt[M.RtDstLenOffset];
        int table = rt[M.RtTableOffset];
        byte type = rt[M.RtTypeOffset];
        var attributes = message[(M.HeaderLength + M.RtMsgLength)..];
        var destination = family == Native.AF_INET ? IPAddress.Any : IPAddress.IPv6Any;
        if (M.TryFindAttribute(attributes, M.RTA_DST, out var dst))
        {
            destination = new IPAddress(dst);
        }

        IPAddress? gateway = M.TryFindAttribute(attributes, RTA_GATEWAY, out var gw) ? new IPAddress(gw) : null;
        int oif = M.TryFindAttribute(attributes, M.RTA_OIF, out var o) && o.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(o) : 0;
        int metric = M.TryFindAttribute(attributes, M.RTA_PRIORITY, out var p) && p.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(p) : 0;
        if (M.TryFindAttribute(attributes, RTA_TABLE, out var t) && t.Length >= 4)
        {
            table = BinaryPrimitives.ReadInt32LittleEndian(t);
        }

        // A multipath route: struct rtnexthop { u16 len; u8 flags; u8 hops; i32 ifindex; } then its
        // attributes. The first next hop stands for the route.
        if (oif == 0 && M.TryFindAttribute(attributes, RTA_MULTIPATH, out var multipath) && multipath.Length >= 8)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(multipath);
            oif = BinaryPrimitives.ReadInt32LittleEndian(multipath[4..]);
            if (length > 8 && length <= multipath.Length && M.TryFindAttribute(multipath[8..length], RTA_GATEWAY, out var hop))
            {
                gateway = new IPAddress(hop);
            }
        }

        return new RouteEntry(destination, prefixLength, gateway, oif, metric, table, type);
    }
}
