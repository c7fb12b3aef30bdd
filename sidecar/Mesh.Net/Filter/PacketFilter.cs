using System.Net;

namespace Mesh.Net.Filter;

/// <summary>
/// The stateful packet filter every node runs on decrypted traffic (DESIGN.md, security model):
/// inbound packets from the tunnel pass when the coordinator's rules allow them or when they
/// answer a flow this node sent. It is pure: no sockets, no clock (time comes in as ticks), no
/// threads; the agent calls <see cref="Outbound"/> on every packet it sends into the tunnel and
/// <see cref="Inbound"/> on every packet it decrypts, and drops what Inbound drops.
/// Not here: the rules' policy language (the coordinator compiles that), and counting or logging
/// drops (the agent counts <see cref="FilterVerdict.Reason"/>).
/// </summary>
/// <remarks>
/// <para>Semantics, modelled on Tailscale's filter so a policy behaves the same on both:</para>
/// <list type="bullet">
/// <item>The destination must be one of the local prefixes given to <see cref="Compile"/> or lie
/// in a destination a rule names explicitly (a subnet router's routes); else <see cref="FilterReason.NotForUs"/>.
/// Replies to recorded flows skip this check: their match is exact.</item>
/// <item>TCP: only a bare SYN (SYN without ACK) is checked, against the rules or as the reverse of
/// a SYN this node sent (simultaneous open). Every other segment, SYN+ACK included, passes: no
/// connection opens without an accepted SYN, so this costs no state per connection.</item>
/// <item>UDP, SCTP: the rules (destination port), else the reverse of a recently sent flow.</item>
/// <item>ICMP/ICMPv6: echo requests and other informational messages need a rule for the source,
/// the destination address and the protocol, whatever its ports; an echo reply needs an echo
/// request this node sent (same addresses, same identifier); an error (unreachable, time exceeded,
/// parameter problem, packet too big) must quote a packet this node sent that belongs to a flow it
/// opened, or that the rules would allow the other way, or any TCP segment (which TCP would accept
/// anyway).</item>
/// <item>Other protocols: a rule listing the protocol in IPProto whose destination is open on
/// every port, as they have no ports to compare.</item>
/// <item>Fragments: the first fragment carries the transport header and is filtered like a whole
/// packet (a first fragment too short for its transport header is malformed). Later fragments
/// have no ports and pass if the destination is ours: without an accepted first fragment the
/// receiver can never reassemble them. A TCP fragment at offset 8 bytes is dropped, as it could
/// overwrite the flags of the first (RFC 1858 §3.2).</item>
/// <item>IPv6 extension headers (hop-by-hop, routing, fragment, destination options, AH) are walked
/// to the transport header.</item>
/// </list>
/// <para>
/// A compiled filter is immutable and thread-safe; all state lives in its <see cref="FlowTable"/>,
/// which <see cref="WithRules"/> hands to the next compiled filter when a new netmap arrives.
/// Neither call allocates.
/// </para>
/// </remarks>
public sealed class PacketFilter
{
    private static readonly byte[] DefaultProtocols = [PacketHeaders.Tcp, PacketHeaders.Udp, PacketHeaders.Icmp, PacketHeaders.IcmpV6];

    private readonly RuleMatcher _matcher;
    private readonly AddressSet? _local;

    private PacketFilter(RuleMatcher matcher, AddressSet? local, FlowTable flows, int ruleCount)
    {
        _matcher = matcher;
        _local = local;
        Flows = flows;
        RuleCount = ruleCount;
    }

    /// <summary>The flows this node sent; shared with filters made by <see cref="WithRules"/>.</summary>
    public FlowTable Flows { get; }

    public int RuleCount { get; }

    /// <summary>
    /// Compiles <paramref name="rules"/>. <paramref name="localPrefixes"/> are this node's own
    /// addresses and the routes it serves (an exit node: the default routes); null skips the
    /// destination check. An empty rule list accepts only replies and established TCP.
    /// </summary>
    /// <exception cref="FilterRuleException">An entry does not parse; the message names the rule and entry.</exception>
    public static PacketFilter Compile(
        IEnumerable<FilterRuleSpec> rules,
        IEnumerable<IPNetwork>? localPrefixes = null,
        FlowTable? flows = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var compiled = new List<CompiledRule>();
        foreach (var rule in rules)
        {
            compiled.Add(CompileRule(compiled.Count, rule));
        }

        AddressSet? local = null;
        if (localPrefixes is not null)
        {
            var ranges = new List<AddressRange>();
            foreach (var prefix in localPrefixes)
            {
                ranges.Add(AddressRange.FromNetwork(prefix));
            }

            local = new AddressSet(ranges);
        }

        return new PacketFilter(RuleMatcher.Build(compiled), local, flows ?? new FlowTable(), compiled.Count);
    }

    /// <summary>The same as <see cref="Compile"/> with host prefixes for <paramref name="localAddresses"/>.</summary>
    public static PacketFilter Compile(IEnumerable<FilterRuleSpec> rules, IEnumerable<IPAddress> localAddresses, FlowTable? flows = null)
    {
        ArgumentNullException.ThrowIfNull(localAddresses);
        var prefixes = new List<IPNetwork>();
        foreach (var address in localAddresses)
        {
            prefixes.Add(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
        }

        return Compile(rules, prefixes, flows);
    }

    /// <summary>A filter for new rules that keeps this one's flows, so replies in flight still pass.</summary>
    public PacketFilter WithRules(IEnumerable<FilterRuleSpec> rules, IEnumerable<IPNetwork>? localPrefixes = null) =>
        Compile(rules, localPrefixes, Flows);

    /// <summary>Records a packet this node sends into the tunnel, so that its replies pass.</summary>
    /// <param name="ipPacket">The whole IPv4 or IPv6 packet; anything unparseable is ignored.</param>
    /// <param name="nowTicks">Monotonic time in <see cref="TimeSpan"/> ticks.</param>
    public void Outbound(ReadOnlySpan<byte> ipPacket, long nowTicks)
    {
        if (PacketHeaders.Parse(ipPacket, quoted: false, out var h) != ParseStatus.Ok)
        {
            return;
        }

        var key = new FlowKey(h.Family, h.Protocol, h.Source, h.Destination, h.SourcePort, h.DestinationPort);
        switch (h.Protocol)
        {
            case PacketHeaders.Tcp:
                // A bare SYN opens the flow; later segments only keep a known flow alive, so
                // connections this node accepted do not fill the table.
                if (h.IsTcpBareSyn)
                {
                    Flows.Record(key, nowTicks);
                }
                else
                {
                    Flows.Contains(key, nowTicks, touch: true);
                }

                return;
            case PacketHeaders.Udp:
            case PacketHeaders.Sctp:
                Flows.Record(key, nowTicks);
                return;
            default:
                if (h.IsIcmp && IsEchoRequest(h.Family, h.IcmpType))
                {
                    Flows.Record(key, nowTicks);
                }

                return;
        }
    }

    /// <summary>Decides whether a decrypted packet from the tunnel may be delivered.</summary>
    /// <param name="ipPacket">The whole IPv4 or IPv6 packet (trailing padding beyond its length is ignored).</param>
    /// <param name="nowTicks">Monotonic time in <see cref="TimeSpan"/> ticks, the clock given to <see cref="Outbound"/>.</param>
    public FilterVerdict Inbound(ReadOnlySpan<byte> ipPacket, long nowTicks)
    {
        var status = PacketHeaders.Parse(ipPacket, quoted: false, out var h);
        if (status == ParseStatus.Malformed)
        {
            return FilterVerdict.Drop(FilterReason.Malformed);
        }

        bool forUs = IsForUs(h.Family, h.Destination);
        if (status == ParseStatus.NonFirstFragment)
        {
            if (!forUs)
            {
                return FilterVerdict.Drop(FilterReason.NotForUs);
            }

            return h.Protocol == PacketHeaders.Tcp && h.FragmentOffset == 1
                ? FilterVerdict.Drop(FilterReason.BadFragment)
                : FilterVerdict.Accept(FilterReason.Fragment);
        }

        switch (h.Protocol)
        {
            case PacketHeaders.Tcp:
                if (!h.IsTcpBareSyn)
                {
                    return forUs ? FilterVerdict.Accept(FilterReason.TcpEstablished) : FilterVerdict.Drop(FilterReason.NotForUs);
                }

                return RulesOrReply(in h, forUs, nowTicks);
            case PacketHeaders.Udp:
            case PacketHeaders.Sctp:
                return RulesOrReply(in h, forUs, nowTicks);
            default:
                return h.IsIcmp ? InboundIcmp(ipPacket, in h, forUs, nowTicks) : RulesOnly(in h, forUs, PortMatch.AllPorts);
        }
    }

    private static bool IsEchoRequest(int family, byte type) =>
        type == (family == AddressRange.V4 ? PacketHeaders.IcmpEchoRequest : PacketHeaders.IcmpV6EchoRequest);

    private static bool IsEchoReply(int family, byte type) =>
        type == (family == AddressRange.V4 ? PacketHeaders.IcmpEchoReply : PacketHeaders.IcmpV6EchoReply);

    /// <summary>The key of the flow this node would have sent for <paramref name="h"/> to be its reply.</summary>
    private static FlowKey ReverseKey(in PacketHeaders h) =>
        new(h.Family, h.Protocol, h.Destination, h.Source, h.DestinationPort, h.SourcePort);

    private bool IsForUs(int family, UInt128 destination) =>
        _local is null || _local.Contains(family, destination) || _matcher.RoutedDestinations.Contains(family, destination);

    private FilterVerdict RulesOrReply(in PacketHeaders h, bool forUs, long nowTicks)
    {
        if (forUs && _matcher.Allows(h.Family, h.Protocol, h.Source, h.Destination, h.DestinationPort, PortMatch.Port))
        {
            return FilterVerdict.Accept(FilterReason.Rule);
        }

        if (Flows.Contains(ReverseKey(in h), nowTicks, touch: true))
        {
            return FilterVerdict.Accept(FilterReason.Reply);
        }

        return FilterVerdict.Drop(forUs ? FilterReason.NoRule : FilterReason.NotForUs);
    }

    private FilterVerdict RulesOnly(in PacketHeaders h, bool forUs, PortMatch mode)
    {
        if (!forUs)
        {
            return FilterVerdict.Drop(FilterReason.NotForUs);
        }

        return _matcher.Allows(h.Family, h.Protocol, h.Source, h.Destination, 0, mode)
            ? FilterVerdict.Accept(FilterReason.Rule)
            : FilterVerdict.Drop(FilterReason.NoRule);
    }

    private FilterVerdict InboundIcmp(ReadOnlySpan<byte> packet, in PacketHeaders h, bool forUs, long nowTicks)
    {
        if (IsEchoReply(h.Family, h.IcmpType))
        {
            // The request this node sent carried (our address, their address, identifier, 0).
            var request = new FlowKey(h.Family, h.Protocol, h.Destination, h.Source, h.SourcePort, 0);
            return Flows.Contains(request, nowTicks, touch: true)
                ? FilterVerdict.Accept(FilterReason.Reply)
                : FilterVerdict.Drop(forUs ? FilterReason.NoRule : FilterReason.NotForUs);
        }

        if (!PacketHeaders.IsIcmpError(h.Family, h.IcmpType))
        {
            return RulesOnly(in h, forUs, PortMatch.AnyPort);
        }

        if (!forUs)
        {
            return FilterVerdict.Drop(FilterReason.NotForUs);
        }

        var quote = packet.Slice(h.TransportOffset + PacketHeaders.IcmpQuoteOffset, h.TransportLength - PacketHeaders.IcmpQuoteOffset);
        if (PacketHeaders.Parse(quote, quoted: true, out var q) != ParseStatus.Ok || q.Family != h.Family)
        {
            return FilterVerdict.Drop(FilterReason.Malformed);
        }

        return IsRelated(in q, nowTicks) ? FilterVerdict.Accept(FilterReason.IcmpRelated) : FilterVerdict.Drop(FilterReason.NoRule);
    }

    /// <summary>Whether the packet <paramref name="q"/> quoted in an ICMP error is one this node could legitimately have sent.</summary>
    private bool IsRelated(in PacketHeaders q, long nowTicks)
    {
        if (q.Protocol == PacketHeaders.Tcp)
        {
            // An error about a TCP segment can do no more than the segments TCP accepts unchecked,
            // as long as the segment it quotes came from here.
            return IsForUs(q.Family, q.Source);
        }

        if (q.IsIcmp)
        {
            if (IsEchoRequest(q.Family, q.IcmpType))
            {
                var request = new FlowKey(q.Family, q.Protocol, q.Source, q.Destination, q.SourcePort, 0);
                return Flows.Contains(request, nowTicks, touch: false);
            }

            // Our echo reply (or other ICMP) bounced: fine if their request to us was allowed.
            return _matcher.Allows(q.Family, q.Protocol, q.Destination, q.Source, 0, PortMatch.AnyPort);
        }

        if (q.HasPorts)
        {
            var sent = new FlowKey(q.Family, q.Protocol, q.Source, q.Destination, q.SourcePort, q.DestinationPort);
            return Flows.Contains(sent, nowTicks, touch: false)
                || _matcher.Allows(q.Family, q.Protocol, q.Destination, q.Source, q.SourcePort, PortMatch.Port);
        }

        return _matcher.Allows(q.Family, q.Protocol, q.Destination, q.Source, 0, PortMatch.AllPorts);
    }

    private static CompiledRule CompileRule(int index, FilterRuleSpec rule)
    {
        if (rule is null)
        {
            throw new FilterRuleException($"rule {index}: is null");
        }

        if (rule.SrcIPs is null || rule.DstPorts is null)
        {
            throw new FilterRuleException($"rule {index}: SrcIPs and DstPorts are required");
        }

        var protocols = new bool[256];
        if (rule.IPProto is null || rule.IPProto.Count == 0)
        {
            foreach (var p in DefaultProtocols)
            {
                protocols[p] = true;
            }
        }
        else
        {
            foreach (int p in rule.IPProto)
            {
                if (p is < 0 or > 255)
                {
                    throw new FilterRuleException($"rule {index}: IPProto entry {p} is not a protocol number (0-255)");
                }

                protocols[p] = true;
            }
        }

        var sources = new List<AddressRange>();
        foreach (var entry in rule.SrcIPs)
        {
            var error = entry is null ? "null entry" : AddressRange.TryParse(entry, sources);
            if (error is not null)
            {
                throw new FilterRuleException($"rule {index}: SrcIPs entry '{entry}': {error}");
            }
        }

        var destinations = new List<CompiledDestination>();
        var ranges = new List<AddressRange>();
        foreach (var entry in rule.DstPorts)
        {
            ranges.Clear();
            var error = entry.Ip is null ? "null address" : AddressRange.TryParse(entry.Ip, ranges);
            if (error is null && (entry.First is < 0 or > ushort.MaxValue || entry.Last is < 0 or > ushort.MaxValue || entry.First > entry.Last))
            {
                error = $"ports {entry.First}-{entry.Last} are not a range within 0-65535";
            }

            if (error is not null)
            {
                throw new FilterRuleException($"rule {index}: DstPorts entry '{entry.Ip}:{entry.First}-{entry.Last}': {error}");
            }

            foreach (var range in ranges)
            {
                destinations.Add(new CompiledDestination(range, entry.First, entry.Last));
            }
        }

        return new CompiledRule(index, protocols, [.. sources], [.. destinations]);
    }
}
