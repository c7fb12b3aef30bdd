namespace Mesh.Net.Filter;

/// <summary>What to do with an inbound packet.</summary>
public enum FilterAction : byte
{
    Drop,
    Accept,
}

/// <summary>
/// Why a packet was accepted or dropped, so the agent can count drops by reason. Stable values:
/// they index counters and appear in metrics.
/// </summary>
public enum FilterReason : byte
{
    /// <summary>Accepted: a rule allows this source, protocol, destination and port.</summary>
    Rule = 0,

    /// <summary>Accepted: the reverse of a flow this node sent recently (UDP, TCP SYN, ICMP echo).</summary>
    Reply = 1,

    /// <summary>Accepted: TCP without a bare SYN; it belongs to a connection whose SYN was filtered.</summary>
    TcpEstablished = 2,

    /// <summary>Accepted: an IP fragment after the first, which carries no transport header.</summary>
    Fragment = 3,

    /// <summary>Accepted: an ICMP error about a flow this node sent or the rules allow.</summary>
    IcmpRelated = 4,

    /// <summary>Dropped: no rule allows it and it is no reply.</summary>
    NoRule = 5,

    /// <summary>Dropped: the destination is neither this node's nor a route a rule grants.</summary>
    NotForUs = 6,

    /// <summary>Dropped: not a well-formed IPv4/IPv6 packet, or its transport header is truncated.</summary>
    Malformed = 7,

    /// <summary>Dropped: a fragment that could overwrite the TCP header of an earlier one (RFC 1858 §3.2).</summary>
    BadFragment = 8,
}

/// <summary>The result of <see cref="PacketFilter.Inbound"/>: an action and its reason. Never allocates.</summary>
public readonly record struct FilterVerdict(FilterAction Action, FilterReason Reason)
{
    /// <summary>Number of <see cref="FilterReason"/> values, for a counter array indexed by reason.</summary>
    public const int ReasonCount = (int)FilterReason.BadFragment + 1;

    public bool IsAccepted => Action == FilterAction.Accept;

    internal static FilterVerdict Accept(FilterReason reason) => new(FilterAction.Accept, reason);

    internal static FilterVerdict Drop(FilterReason reason) => new(FilterAction.Drop, reason);
}

/// <summary>A rule entry that cannot be parsed; the message names the rule and the entry.</summary>
public sealed class FilterRuleException : FormatException
{
    public FilterRuleException(string message)
        : base(message)
    {
    }

    public FilterRuleException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public FilterRuleException()
    {
    }
}
