using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Sidecar.Dns;

/// <summary>
/// What MagicDNS knows at one moment: the mesh's base domain, this node and its peers by name,
/// the network's extra records, the search domains to install, and the upstream nameservers the
/// netmap names. The agent builds one from every netmap and hands it to
/// <see cref="MagicDnsServer.Update"/>; an instance never changes after construction.
/// </summary>
/// <remarks>
/// Names are kept as given (trailing dot removed) and compared case-insensitively by the server.
/// A node name may be a bare host label (<c>web</c>) or already qualified with the base domain
/// (<c>web.mesh.internal</c>, as a netmap may carry it). This type only holds data; validation
/// here is what keeps a bad netmap from producing a zone that answers wrongly.
/// </remarks>
public sealed class MagicDnsRecords
{
    /// <summary>The records of a node that knows no netmap yet: base domain only, nothing else.</summary>
    public static MagicDnsRecords Empty { get; } = new("mesh.internal", [], [], [], []);

    /// <summary>Creates the view; see the properties for what each argument means.</summary>
    /// <exception cref="ArgumentException">A name is not a valid DNS name, or an extra record's value does not match its type.</exception>
    public MagicDnsRecords(
        string baseDomain,
        IReadOnlyList<MagicDnsNode> nodes,
        IReadOnlyList<MagicDnsExtraRecord> extraRecords,
        IReadOnlyList<string> searchDomains,
        IReadOnlyList<IPEndPoint> nameservers)
    {
        ArgumentNullException.ThrowIfNull(baseDomain);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(extraRecords);
        ArgumentNullException.ThrowIfNull(searchDomains);
        ArgumentNullException.ThrowIfNull(nameservers);

        BaseDomain = DnsNames.Normalize(baseDomain, nameof(baseDomain));
        if (BaseDomain.Length == 0)
        {
            throw new ArgumentException("The base domain must not be the root.", nameof(baseDomain));
        }

        foreach (var node in nodes)
        {
            ArgumentNullException.ThrowIfNull(node, nameof(nodes));
            ArgumentNullException.ThrowIfNull(node.Addresses, nameof(nodes));
            if (DnsNames.Normalize(node.Name, nameof(nodes)).Length == 0)
            {
                throw new ArgumentException("A node name must not be empty.", nameof(nodes));
            }
        }

        foreach (var record in extraRecords)
        {
            ArgumentNullException.ThrowIfNull(record, nameof(extraRecords));
            ArgumentNullException.ThrowIfNull(record.Value, nameof(extraRecords));
            if (DnsNames.Normalize(record.Name, nameof(extraRecords)).Length == 0)
            {
                throw new ArgumentException("An extra record's name must not be empty.", nameof(extraRecords));
            }

            record.Validate();
        }

        var search = new string[searchDomains.Count];
        for (var i = 0; i < search.Length; i++)
        {
            search[i] = DnsNames.Normalize(searchDomains[i], nameof(searchDomains));
        }

        foreach (var nameserver in nameservers)
        {
            ArgumentNullException.ThrowIfNull(nameserver, nameof(nameservers));
        }

        Nodes = [.. nodes];
        ExtraRecords = [.. extraRecords];
        SearchDomains = search;
        Nameservers = [.. nameservers];
    }

    /// <summary>The mesh's DNS suffix, without a trailing dot, e.g. <c>mesh.internal</c>.</summary>
    public string BaseDomain { get; }

    /// <summary>This node and its peers: a name and the node's mesh addresses (IPv4 and IPv6).</summary>
    public IReadOnlyList<MagicDnsNode> Nodes { get; }

    /// <summary>Extra A/AAAA records of the network (the coordinator's <c>dns.extra_records</c>).</summary>
    public IReadOnlyList<MagicDnsExtraRecord> ExtraRecords { get; }

    /// <summary>Search domains to install in the node's resolver configuration, in order, without trailing dots.</summary>
    public IReadOnlyList<string> SearchDomains { get; }

    /// <summary>
    /// Upstream resolvers from the netmap (<c>dns.nameservers.global</c>). Empty means: forward to the
    /// resolvers the host had before the agent took over.
    /// </summary>
    public IReadOnlyList<IPEndPoint> Nameservers { get; }

    /// <summary>
    /// Reads a nameserver as the netmap carries it: an address (<c>1.1.1.1</c>, <c>2606:4700::1111</c>)
    /// for port 53, or an address with a port (<c>192.0.2.1:5353</c>, <c>[2001:db8::1]:5353</c>).
    /// </summary>
    public static bool TryParseNameserver(string? text, [NotNullWhen(true)] out IPEndPoint? nameserver)
    {
        nameserver = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        // IPEndPoint, not IPAddress: IPAddress.TryParse accepts "[2001:db8::1]:5353" and drops the port.
        text = text.Trim();
        if (!IPEndPoint.TryParse(text, out var endpoint))
        {
            return false;
        }

        // An explicit port 0 is an error; a bare IPv6 address ending in ":0" is not a port.
        var explicitZero = text.EndsWith("]:0", StringComparison.Ordinal)
            || (endpoint.AddressFamily == AddressFamily.InterNetwork && text.EndsWith(":0", StringComparison.Ordinal));
        if (explicitZero)
        {
            return false;
        }

        nameserver = endpoint.Port == 0 ? new IPEndPoint(endpoint.Address, MagicDnsAddresses.Port) : endpoint;
        return true;
    }
}

/// <summary>A mesh node as MagicDNS answers for it.</summary>
/// <param name="Name">The host name (<c>web</c>) or the full name under the base domain (<c>web.mesh.internal</c>).</param>
/// <param name="Addresses">The node's mesh addresses; IPv4 ones answer A queries, IPv6 ones AAAA.</param>
public sealed record MagicDnsNode(string Name, IReadOnlyList<IPAddress> Addresses);

/// <summary>The record types an extra record may have.</summary>
public enum MagicDnsRecordType
{
    /// <summary>An IPv4 address.</summary>
    A,

    /// <summary>An IPv6 address.</summary>
    Aaaa,
}

/// <summary>One extra record: an exact name, answered authoritatively.</summary>
/// <param name="Name">The full name, e.g. <c>grafana.mesh.internal</c> or <c>db.example.com</c>.</param>
/// <param name="Type">A or AAAA.</param>
/// <param name="Value">The address; its family must match <paramref name="Type"/>.</param>
public sealed record MagicDnsExtraRecord(string Name, MagicDnsRecordType Type, IPAddress Value)
{
    /// <summary>Reads an extra record as the netmap carries it: type <c>A</c> or <c>AAAA</c> (any case) and an address.</summary>
    /// <exception cref="ArgumentException">Another type, or a value that is not an address of that type.</exception>
    public static MagicDnsExtraRecord Parse(string name, string type, string value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(value);
        var recordType = type.Trim().ToUpperInvariant() switch
        {
            "A" => MagicDnsRecordType.A,
            "AAAA" => MagicDnsRecordType.Aaaa,
            _ => throw new ArgumentException($"Extra record {name}: type {type} is not supported; use A or AAAA.", nameof(type)),
        };
        if (!IPAddress.TryParse(value.Trim(), out var address))
        {
            throw new ArgumentException($"Extra record {name}: '{value}' is not an IP address.", nameof(value));
        }

        var record = new MagicDnsExtraRecord(name, recordType, address);
        record.Validate();
        return record;
    }

    /// <summary>Checks that <see cref="Value"/>'s family matches <see cref="Type"/>.</summary>
    internal void Validate()
    {
        var family = Type == MagicDnsRecordType.A ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        if (Value.AddressFamily != family)
        {
            throw new ArgumentException($"Extra record {Name}: {Type} needs an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address.");
        }
    }
}
