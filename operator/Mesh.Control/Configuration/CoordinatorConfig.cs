using System.Globalization;
using System.Net;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Mesh.Control.Configuration;

/// <summary>
/// The coordinator's configuration, in the shape of Headscale's config.yaml (DESIGN.md). Every key
/// is optional; the defaults are the embedded defaults `mesh-operator coordinator` runs on with no
/// file. <see cref="Load"/> refuses unknown keys and bad values with a message naming the key.
/// </summary>
public sealed class CoordinatorConfig
{
    /// <summary>The URL nodes use to reach this coordinator.</summary>
    public string ServerUrl { get; set; } = "http://127.0.0.1:8080";

    public string ListenAddr { get; set; } = "127.0.0.1:8080";

    public string MetricsListenAddr { get; set; } = "127.0.0.1:9090";

    /// <summary>Admin API socket; default: mesh.sock beside the database.</summary>
    public string? UnixSocket { get; set; }

    public PrefixesConfig Prefixes { get; set; } = new();
    public DerpConfig Derp { get; set; } = new();
    public DnsConfigSection Dns { get; set; } = new();
    public DatabaseConfig Database { get; set; } = new();
    public PolicyConfig Policy { get; set; } = new();

    /// <summary>How long a node key lasts before the node must re-authenticate; "0" disables expiry.</summary>
    public string NodeKeyExpiry { get; set; } = "180d";

    /// <summary>Ephemeral nodes are removed after being offline this long.</summary>
    public string EphemeralNodeInactivityTimeout { get; set; } = "30m";

    /// <summary>TLS on top of the control channel's own encryption: both set, or neither.</summary>
    public string? TlsCertPath { get; set; }

    public string? TlsKeyPath { get; set; }

    public sealed class PrefixesConfig
    {
        public string V4 { get; set; } = "100.64.0.0/10";
        public string V6 { get; set; } = "fd7a:115c:a1e0::/48";
    }

    public sealed class DerpConfig
    {
        public DerpServerConfig Server { get; set; } = new();
        public List<string> Urls { get; set; } = [];
    }

    public sealed class DerpServerConfig
    {
        public bool Enabled { get; set; } = true;
        public int RegionId { get; set; } = 999;
        public string RegionCode { get; set; } = "mesh";
        public string RegionName { get; set; } = "MeshOperator embedded relay";
        public string StunListenAddr { get; set; } = "0.0.0.0:3478";

        /// <summary>
        /// A second UDP port the STUN server answers on, at stun_listen_addr's address (RFC 5780's
        /// "alternate port"). A node asks both and compares the two mappings its NAT gave it: when they
        /// differ, the NAT maps per destination port (Linux <c>MASQUERADE --random-fully</c>, "symmetric"
        /// NATs), which is what decides whether peers can reach the node directly. Unset: the port after
        /// stun_listen_addr's (3479 by default; an ephemeral one when stun_listen_addr's port is 0).
        /// 0: none (netcheck then cannot tell).
        /// </summary>
        public int? StunAlternatePort { get; set; }

        /// <summary>The alternate port to listen on: null for none, 0 for an ephemeral one.</summary>
        public int? ResolvedStunAlternatePort => StunAlternatePort switch
        {
            0 => null,
            { } port => port,
            null => IPEndPoint.TryParse(StunListenAddr, out var primary) ? (primary.Port == 0 ? 0 : primary.Port + 1) : null,
        };
    }

    public sealed class DnsConfigSection
    {
        public bool MagicDns { get; set; } = true;
        public string BaseDomain { get; set; } = "mesh.internal";
        public NameserversConfig Nameservers { get; set; } = new();
        public List<string> SearchDomains { get; set; } = [];
        public List<ExtraRecordConfig> ExtraRecords { get; set; } = [];
    }

    public sealed class NameserversConfig
    {
        public List<string> Global { get; set; } = [];
    }

    public sealed class ExtraRecordConfig
    {
        public string Name { get; set; } = string.Empty;
        public string Type { get; set; } = "A";
        public string Value { get; set; } = string.Empty;
    }

    public sealed class DatabaseConfig
    {
        public string Type { get; set; } = "sqlite";
        public SqliteConfig Sqlite { get; set; } = new();
    }

    public sealed class SqliteConfig
    {
        public string Path { get; set; } = "./mesh-data/mesh.db";
    }

    public sealed class PolicyConfig
    {
        /// <summary>A policy file; empty: the policy lives in the database (`policy set/get`).</summary>
        public string Path { get; set; } = string.Empty;
    }

    /// <summary>The socket the admin CLI reaches by default: beside the database.</summary>
    public string AdminSocketPath => string.IsNullOrEmpty(UnixSocket)
        ? System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Database.Sqlite.Path)) ?? ".", "mesh.sock")
        : UnixSocket;

    public IPNetwork PrefixV4 => IPNetwork.Parse(Prefixes.V4);
    public IPNetwork PrefixV6 => IPNetwork.Parse(Prefixes.V6);
    public TimeSpan? NodeKeyExpiryTime => Durations.Parse(NodeKeyExpiry) is { } d && d > TimeSpan.Zero ? d : null;
    public TimeSpan EphemeralInactivityTime => Durations.Parse(EphemeralNodeInactivityTimeout) ?? TimeSpan.FromMinutes(30);

    /// <summary>Reads YAML; an empty text gives the defaults. Throws <see cref="ConfigException"/>.</summary>
    public static CoordinatorConfig Load(string yaml, string source)
    {
        var deserializer = new DeserializerBuilder()
            .WithNamingConvention(UnderscoredNamingConvention.Instance)
            .Build();
        CoordinatorConfig config;
        try
        {
            config = string.IsNullOrWhiteSpace(yaml) ? new CoordinatorConfig() : deserializer.Deserialize<CoordinatorConfig?>(yaml) ?? new CoordinatorConfig();
        }
        catch (YamlException e)
        {
            var inner = e.InnerException?.Message ?? e.Message;
            throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: {Clean(inner)}");
        }

        config.Validate(source);
        return config;
    }

    public static CoordinatorConfig LoadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"{path}: no such file");
        }

        return Load(File.ReadAllText(path), path);
    }

    /// <summary>Checks every value; the message names the key and says what is expected.</summary>
    public void Validate(string source)
    {
        var errors = new List<string>();
        if (!Uri.TryCreate(ServerUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            errors.Add($"server_url \"{ServerUrl}\": expected an http:// or https:// URL");
        }

        CheckEndpoint(errors, "listen_addr", ListenAddr);
        if (!string.IsNullOrEmpty(MetricsListenAddr))
        {
            CheckEndpoint(errors, "metrics_listen_addr", MetricsListenAddr);
        }

        if (!IPNetwork.TryParse(Prefixes.V4, out var v4) || v4.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || v4.PrefixLength > 30)
        {
            errors.Add($"prefixes.v4 \"{Prefixes.V4}\": expected an IPv4 CIDR with no host bits and room for nodes (e.g. 100.64.0.0/10)");
        }

        if (!IPNetwork.TryParse(Prefixes.V6, out var v6) || v6.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || v6.PrefixLength > 120)
        {
            errors.Add($"prefixes.v6 \"{Prefixes.V6}\": expected an IPv6 CIDR with no host bits (e.g. fd7a:115c:a1e0::/48)");
        }

        if (Derp.Server.Enabled)
        {
            CheckEndpoint(errors, "derp.server.stun_listen_addr", Derp.Server.StunListenAddr);
            CheckStunAlternatePort(errors, Derp.Server);
            if (Derp.Server.RegionId is < 1 or > 65535)
            {
                errors.Add($"derp.server.region_id {Derp.Server.RegionId}: expected 1-65535");
            }
        }

        foreach (var relayUrl in Derp.Urls)
        {
            if (!Uri.TryCreate(relayUrl, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https" or "file"))
            {
                errors.Add($"derp.urls \"{relayUrl}\": expected an http, https or file URL of a relay map");
            }
        }

        if (string.IsNullOrWhiteSpace(Dns.BaseDomain) || Dns.BaseDomain.Contains(' ', StringComparison.Ordinal) || Dns.BaseDomain.StartsWith('.'))
        {
            errors.Add($"dns.base_domain \"{Dns.BaseDomain}\": expected a domain such as mesh.internal");
        }

        foreach (var ns in Dns.Nameservers.Global)
        {
            if (!IPAddress.TryParse(ns, out _))
            {
                errors.Add($"dns.nameservers.global \"{ns}\": expected an IP address such as 1.1.1.1");
            }
        }

        foreach (var record in Dns.ExtraRecords)
        {
            if (record.Type is not ("A" or "AAAA") || !IPAddress.TryParse(record.Value, out _) || string.IsNullOrWhiteSpace(record.Name))
            {
                errors.Add($"dns.extra_records {{name: {record.Name}, type: {record.Type}, value: {record.Value}}}: expected a name, type A or AAAA, and an IP address value");
            }
        }

        if (Database.Type != "sqlite")
        {
            errors.Add($"database.type \"{Database.Type}\": only sqlite is supported");
        }

        if (string.IsNullOrWhiteSpace(Database.Sqlite.Path))
        {
            errors.Add("database.sqlite.path: empty; expected a file path such as ./mesh-data/mesh.db");
        }

        if (Durations.Parse(NodeKeyExpiry) is null)
        {
            errors.Add($"node_key_expiry \"{NodeKeyExpiry}\": expected a duration such as 180d, 24h or 0 (never)");
        }

        if (Durations.Parse(EphemeralNodeInactivityTimeout) is not { } eph || eph <= TimeSpan.Zero)
        {
            errors.Add($"ephemeral_node_inactivity_timeout \"{EphemeralNodeInactivityTimeout}\": expected a positive duration such as 30m");
        }

        if (string.IsNullOrEmpty(TlsCertPath) != string.IsNullOrEmpty(TlsKeyPath))
        {
            errors.Add("tls_cert_path and tls_key_path: set both for TLS, or neither");
        }

        if (errors.Count > 0)
        {
            throw new ConfigException($"{source}: " + string.Join($"\n{source}: ", errors));
        }
    }

    private static void CheckEndpoint(List<string> errors, string key, string value)
    {
        if (!IPEndPoint.TryParse(value, out var endpoint) || endpoint.Port == 0 && !value.EndsWith(":0", StringComparison.Ordinal))
        {
            errors.Add($"{key} \"{value}\": expected ADDRESS:PORT such as 127.0.0.1:8080 or [::]:8080");
        }
    }

    private static void CheckStunAlternatePort(List<string> errors, DerpServerConfig server)
    {
        if (!IPEndPoint.TryParse(server.StunListenAddr, out var primary))
        {
            return; // reported for stun_listen_addr
        }

        const string Key = "derp.server.stun_alternate_port";
        if (server.StunAlternatePort is { } port)
        {
            if (port is < 0 or > 65535)
            {
                errors.Add($"{Key} {port}: expected a UDP port (1-65535) for the STUN server's second port, or 0 for none");
            }
            else if (port != 0 && port == primary.Port)
            {
                errors.Add($"{Key} {port}: the same port as derp.server.stun_listen_addr; expected another port (such as {(port == 65535 ? port - 1 : port + 1)}), or 0 for none");
            }
        }
        else if (primary.Port == 65535)
        {
            errors.Add($"{Key}: unset, and derp.server.stun_listen_addr's port 65535 has no next port to default to; set it to a free UDP port, or 0 for none");
        }
    }

    private static string Clean(string message) => message.Replace("Property '", "unknown key '", StringComparison.Ordinal);
}

/// <summary>Durations written as Go and Headscale do: 90s, 30m, 24h, 7d (combinations like 1h30m); "0" is zero.</summary>
public static class Durations
{
    public static TimeSpan? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        text = text.Trim();
        if (text == "0")
        {
            return TimeSpan.Zero;
        }

        var total = TimeSpan.Zero;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(text.AsSpan(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                return null;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            var unit = text[unitStart..i];
            TimeSpan? part = unit switch
            {
                "ms" => TimeSpan.FromMilliseconds(value),
                "s" => TimeSpan.FromSeconds(value),
                "m" => TimeSpan.FromMinutes(value),
                "h" => TimeSpan.FromHours(value),
                "d" => TimeSpan.FromDays(value),
                "w" => TimeSpan.FromDays(7 * value),
                _ => null,
            };
            if (part is null)
            {
                return null;
            }

            total += part.Value;
        }

        return total;
    }
}

public sealed class ConfigException(string message) : Exception(message);
