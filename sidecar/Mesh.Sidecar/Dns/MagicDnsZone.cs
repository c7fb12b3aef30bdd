using System.Net;
using System.Net.Sockets;

namespace Mesh.Sidecar.Dns;

/// <summary>What a zone lookup asks for, mapped from the wire's QTYPE by the server.</summary>
internal enum ZoneQueryType
{
    A,
    Aaaa,
    Ptr,

    /// <summary>QTYPE ANY (255): both address families.</summary>
    Any,

    /// <summary>Any other type: a name we own answers it with no records.</summary>
    Other,
}

/// <summary>How the zone answers one question.</summary>
internal enum ZoneResultKind
{
    /// <summary>NOERROR with <see cref="ZoneResult.Addresses"/> or <see cref="ZoneResult.PtrTarget"/>.</summary>
    Answer,

    /// <summary>NOERROR, empty answer: the name exists but has no record of the asked type.</summary>
    NoData,

    /// <summary>NXDOMAIN: the name is in a zone we own and does not exist.</summary>
    NxDomain,

    /// <summary>Not ours: forward it upstream.</summary>
    NotOurs,
}

/// <summary>The zone's answer to one question.</summary>
internal readonly struct ZoneResult
{
    private ZoneResult(ZoneResultKind kind, IPAddress[]? addresses, string? ptrTarget)
    {
        Kind = kind;
        Addresses = addresses ?? [];
        PtrTarget = ptrTarget;
    }

    public ZoneResultKind Kind { get; }

    /// <summary>For A/AAAA/ANY answers: the addresses, in record order.</summary>
    public IReadOnlyList<IPAddress> Addresses { get; }

    /// <summary>For PTR answers: the full name, without a trailing dot.</summary>
    public string? PtrTarget { get; }

    public static ZoneResult NoData { get; } = new(ZoneResultKind.NoData, null, null);

    public static ZoneResult NxDomain { get; } = new(ZoneResultKind.NxDomain, null, null);

    public static ZoneResult NotOurs { get; } = new(ZoneResultKind.NotOurs, null, null);

    public static ZoneResult WithAddresses(IPAddress[] addresses) => new(ZoneResultKind.Answer, addresses, null);

    public static ZoneResult WithPtr(string target) => new(ZoneResultKind.Answer, null, target);
}

/// <summary>
/// <see cref="MagicDnsRecords"/> compiled into lookup tables, once per update: the part of MagicDNS
/// that decides, without any I/O, whether a question is ours and what the answer is. The server
/// swaps whole zones, so a query always sees one consistent netmap.
/// </summary>
/// <remarks>
/// Rules (Tailscale's MagicDNS behaves the same way for these cases):
/// <list type="bullet">
/// <item><c>host.base</c> and, for a single-label query, <c>host</c> answer with the node's addresses.</item>
/// <item>An extra record answers for its exact name only.</item>
/// <item>A name that exists but lacks the asked type is NOERROR with no answer (RFC 2308 §2.2 NODATA);
/// the base domain itself and every name between it and an owned name exist (empty non-terminals, RFC 8020).</item>
/// <item>Any other name at or below the base domain is NXDOMAIN; so is a reverse name of an address
/// inside the mesh prefixes that no node has.</item>
/// <item>Everything else is not ours and goes upstream.</item>
/// </list>
/// </remarks>
internal sealed class MagicDnsZone
{
    /// <summary>The mesh's IPv4 range (RFC 6598 shared address space), as the coordinator allocates.</summary>
    public static readonly IPNetwork MeshPrefixV4 = IPNetwork.Parse("100.64.0.0/10");

    /// <summary>The mesh's IPv6 range, as the coordinator allocates.</summary>
    public static readonly IPNetwork MeshPrefixV6 = IPNetwork.Parse("fd7a:115c:a1e0::/48");

    private readonly Dictionary<string, Entry> _names;
    private readonly Dictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> _namesBySpan;
    private readonly Dictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> _shortNamesBySpan;
    private readonly Dictionary<IPAddress, string> _reverse;

    public MagicDnsZone(MagicDnsRecords records)
    {
        ArgumentNullException.ThrowIfNull(records);
        BaseDomain = records.BaseDomain;
        var builders = new Dictionary<string, EntryBuilder>(StringComparer.OrdinalIgnoreCase);
        _reverse = [];

        GetOrAdd(builders, BaseDomain);
        foreach (var node in records.Nodes)
        {
            var name = DnsNames.Normalize(node.Name, nameof(records));
            var fqdn = DnsNames.IsAtOrBelow(name, BaseDomain) ? name : name + "." + BaseDomain;
            var entry = AddWithAncestors(builders, fqdn);
            foreach (var address in node.Addresses)
            {
                var plain = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
                entry.Add(plain);
                _reverse.TryAdd(plain, fqdn);
            }
        }

        foreach (var record in records.ExtraRecords)
        {
            var name = DnsNames.Normalize(record.Name, nameof(records));
            var entry = DnsNames.IsAtOrBelow(name, BaseDomain) ? AddWithAncestors(builders, name) : GetOrAdd(builders, name);
            entry.Add(record.Value);
        }

        _names = new Dictionary<string, Entry>(builders.Count, StringComparer.OrdinalIgnoreCase);
        var shortNames = new Dictionary<string, Entry>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, builder) in builders)
        {
            var entry = builder.Build();
            _names.Add(name, entry);

            // One label directly under the base domain: also answered as a short name.
            if (name.Length > BaseDomain.Length + 1 && DnsNames.IsAtOrBelow(name, BaseDomain))
            {
                var label = name[..(name.Length - BaseDomain.Length - 1)];
                if (!label.Contains('.'))
                {
                    shortNames.TryAdd(label, entry);
                }
            }
        }

        _namesBySpan = _names.GetAlternateLookup<ReadOnlySpan<char>>();
        _shortNamesBySpan = shortNames.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The base domain, normalized.</summary>
    public string BaseDomain { get; }

    /// <summary>Answers one question. <paramref name="name"/> may carry a trailing dot; case does not matter.</summary>
    public ZoneResult Lookup(ReadOnlySpan<char> name, ZoneQueryType type)
    {
        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }

        if (name.IsEmpty)
        {
            return ZoneResult.NotOurs;
        }

        if (_namesBySpan.TryGetValue(name, out var entry)
            || (!name.Contains('.') && _shortNamesBySpan.TryGetValue(name, out entry)))
        {
            return type switch
            {
                ZoneQueryType.A => Addresses(entry.V4),
                ZoneQueryType.Aaaa => Addresses(entry.V6),
                ZoneQueryType.Any => Addresses(entry.All),
                _ => ZoneResult.NoData,
            };
        }

        if (DnsNames.TryParseReverseName(name, out var address))
        {
            if (_reverse.TryGetValue(address!, out var target))
            {
                return type is ZoneQueryType.Ptr or ZoneQueryType.Any ? ZoneResult.WithPtr(target) : ZoneResult.NoData;
            }

            var inMesh = address!.AddressFamily == AddressFamily.InterNetwork ? MeshPrefixV4.Contains(address) : MeshPrefixV6.Contains(address);
            return inMesh ? ZoneResult.NxDomain : ZoneResult.NotOurs;
        }

        return IsBelowBase(name) ? ZoneResult.NxDomain : ZoneResult.NotOurs;
    }

    private bool IsBelowBase(ReadOnlySpan<char> name) =>
        name.Length > BaseDomain.Length
        && name[name.Length - BaseDomain.Length - 1] == '.'
        && name.EndsWith(BaseDomain, StringComparison.OrdinalIgnoreCase);

    private static ZoneResult Addresses(IPAddress[] addresses) =>
        addresses.Length == 0 ? ZoneResult.NoData : ZoneResult.WithAddresses(addresses);

    private EntryBuilder AddWithAncestors(Dictionary<string, EntryBuilder> builders, string name)
    {
        var entry = GetOrAdd(builders, name);
        var at = name;
        while (at.Length > BaseDomain.Length)
        {
            at = at[(at.IndexOf('.') + 1)..];
            GetOrAdd(builders, at);
        }

        return entry;
    }

    private static EntryBuilder GetOrAdd(Dictionary<string, EntryBuilder> builders, string name)
    {
        if (!builders.TryGetValue(name, out var builder))
        {
            builder = new EntryBuilder();
            builders.Add(name, builder);
        }

        return builder;
    }

    private sealed class Entry(IPAddress[] v4, IPAddress[] v6)
    {
        public IPAddress[] V4 { get; } = v4;

        public IPAddress[] V6 { get; } = v6;

        public IPAddress[] All { get; } = [.. v4, .. v6];
    }

    private sealed class EntryBuilder
    {
        private readonly List<IPAddress> _v4 = [];
        private readonly List<IPAddress> _v6 = [];

        public void Add(IPAddress address)
        {
            var list = address.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
            if (!list.Contains(address))
            {
                list.Add(address);
            }
        }

        public Entry Build() => new([.. _v4], [.. _v6]);
    }
}
