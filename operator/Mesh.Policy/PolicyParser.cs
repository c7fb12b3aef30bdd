using System.Globalization;
using System.Text.Json;

namespace Mesh.Policy;

/// <summary>
/// Reads a policy in Tailscale's format (HuJSON: JSON with comments and trailing commas) and validates every
/// reference that does not depend on the topology: groups, hosts and tags must be defined, ports and protocols must
/// parse, autogroups must exist and be used where they are allowed. All problems are reported at once.
/// </summary>
internal sealed class PolicyParser
{
    private static readonly JsonDocumentOptions HuJson = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    // Top-level keys of Tailscale's policy file that this engine accepts but does not act on.
    private static readonly HashSet<string> IgnoredKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "ssh", "sshTests", "nodeAttrs", "derpMap", "disableIPv4", "randomizeClientPort", "OneCGNATRoute",
        "postures", "defaultSrcPosture", "ipsets", "attrConfig", "autogroups",
    };

    private readonly PolicyDocument _doc = new();
    private readonly List<string> _errors = [];

    public static PolicyDocument Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "{}" : text, HuJson);
        }
        catch (JsonException e)
        {
            throw new PolicyException($"policy is not valid HuJSON: {e.Message}", e);
        }

        using (json)
        {
            var parser = new PolicyParser();
            parser.ParseRoot(json.RootElement);
            if (parser._errors.Count > 0)
            {
                throw new PolicyException(string.Join('\n', parser._errors)) { Problems = [.. parser._errors] };
            }

            return parser._doc;
        }
    }

    private void Error(string message) => _errors.Add(message);

    private void ParseRoot(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            Error("policy must be a JSON object");
            return;
        }

        var sections = new Dictionary<string, JsonElement>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in root.EnumerateObject())
        {
            if (IgnoredKeys.Contains(p.Name))
            {
                continue;
            }

            if (p.Name.ToLowerInvariant() is not ("groups" or "hosts" or "tagowners" or "acls" or "grants" or "autoapprovers" or "tests"))
            {
                Error($"unknown top-level field \"{p.Name}\"");
                continue;
            }

            sections[p.Name] = p.Value;
        }

        // Definitions first, whatever their order in the file, so rules can be checked against them.
        if (sections.TryGetValue("groups", out var groups))
        {
            ParseGroups(groups);
        }

        if (sections.TryGetValue("hosts", out var hosts))
        {
            ParseHosts(hosts);
        }

        if (sections.TryGetValue("tagOwners", out var tagOwners))
        {
            ParseTagOwners(tagOwners);
        }

        if (sections.TryGetValue("acls", out var acls) && acls.ValueKind != JsonValueKind.Null)
        {
            _doc.HasRules = true;
            ParseAcls(acls);
        }

        if (sections.TryGetValue("grants", out var grants) && grants.ValueKind != JsonValueKind.Null)
        {
            _doc.HasRules = true;
            ParseGrants(grants);
        }

        if (sections.TryGetValue("autoApprovers", out var approvers))
        {
            ParseAutoApprovers(approvers);
        }

        if (sections.TryGetValue("tests", out var tests))
        {
            ParseTests(tests);
        }
    }

    private static bool IsObject(JsonElement e) => e.ValueKind == JsonValueKind.Object;

    private string[]? StringArray(JsonElement e, string where)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (e.ValueKind != JsonValueKind.Array)
        {
            Error($"{where}: must be a list of strings");
            return null;
        }

        var list = new List<string>();
        var i = 0;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                Error($"{where}[{i}]: must be a string");
                return null;
            }

            list.Add(item.GetString()!);
            i++;
        }

        return [.. list];
    }

    private void ParseGroups(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (!IsObject(e))
        {
            Error("groups: must be an object");
            return;
        }

        foreach (var p in e.EnumerateObject())
        {
            var where = $"groups[\"{p.Name}\"]";
            if (!p.Name.StartsWith("group:", StringComparison.Ordinal) || p.Name.Length == 6)
            {
                Error($"{where}: group names must start with \"group:\"");
                continue;
            }

            var members = StringArray(p.Value, where);
            if (members is null)
            {
                continue;
            }

            for (var i = 0; i < members.Length; i++)
            {
                var m = members[i];
                if (m.StartsWith("group:", StringComparison.Ordinal))
                {
                    Error($"{where}[{i}] \"{m}\": groups cannot contain other groups");
                }
                else if (!m.Contains('@', StringComparison.Ordinal))
                {
                    Error($"{where}[{i}] \"{m}\": a group member must be a user (an email, or a name ending in '@')");
                }
            }

            _doc.Groups[p.Name] = members;
        }
    }

    private void ParseHosts(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (!IsObject(e))
        {
            Error("hosts: must be an object");
            return;
        }

        foreach (var p in e.EnumerateObject())
        {
            var where = $"hosts[\"{p.Name}\"]";
            if (p.Name.Length == 0 || p.Name.Contains('@', StringComparison.Ordinal) || p.Name.Contains(':', StringComparison.Ordinal) || p.Name == "*")
            {
                Error($"{where}: invalid host name");
                continue;
            }

            if (p.Value.ValueKind != JsonValueKind.String || !IpText.TryParsePrefix(p.Value.GetString()!, out var set, out var canonical))
            {
                Error($"{where}: \"{p.Value}\" is not an IP address or CIDR");
                continue;
            }

            _doc.Hosts[p.Name] = new Alias(AliasKind.Host, p.Name, set) { };
            _ = canonical;
        }
    }

    private void ParseTagOwners(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (!IsObject(e))
        {
            Error("tagOwners: must be an object");
            return;
        }

        var raw = new List<(string Tag, string[] Owners)>();
        foreach (var p in e.EnumerateObject())
        {
            var where = $"tagOwners[\"{p.Name}\"]";
            if (!p.Name.StartsWith("tag:", StringComparison.Ordinal) || p.Name.Length == 4)
            {
                Error($"{where}: tag names must start with \"tag:\"");
                continue;
            }

            var owners = StringArray(p.Value, where);
            if (owners is not null)
            {
                raw.Add((p.Name, owners));
                _doc.TagOwners[p.Name] = [];
            }
        }

        // Owners may name tags defined later in the object, so check them once all tags are known.
        foreach (var (tag, owners) in raw)
        {
            var list = new List<Alias>();
            for (var i = 0; i < owners.Length; i++)
            {
                var where = $"tagOwners[\"{tag}\"][{i}] \"{owners[i]}\"";
                var o = owners[i];
                if (o is "autogroup:admin" or "autogroup:member" or "autogroup:owner" or "autogroup:it-admin" or "autogroup:network-admin")
                {
                    list.Add(new Alias(o == "autogroup:member" ? AliasKind.Member : AliasKind.Group, o));
                    continue;
                }

                var alias = ParseAlias(o, where, AliasUse.Owner);
                if (alias is not null)
                {
                    list.Add(alias);
                }
            }

            _doc.TagOwners[tag] = [.. list];
        }
    }

    private enum AliasUse
    {
        Source,
        Destination,
        Owner,
        TestSource,
        TestDestination,
    }

    /// <summary>Parses one selector and checks that what it names is defined.</summary>
    private Alias? ParseAlias(string text, string where, AliasUse use) => ParseAlias(_doc, text, where, use == AliasUse.Owner ? "owner" : use is AliasUse.Source or AliasUse.TestSource ? "src" : "dst", Error);

    internal static Alias? ParseAlias(PolicyDocument doc, string text, string where, string side, Action<string> error)
    {
        if (text.Length == 0)
        {
            error($"{where}: empty selector");
            return null;
        }

        if (text == "*")
        {
            if (side == "owner")
            {
                error($"{where}: \"*\" cannot own tags or approve routes");
                return null;
            }

            return new Alias(AliasKind.Wildcard, text);
        }

        if (IpText.TryParsePrefix(text, out var set, out _))
        {
            if (side == "owner")
            {
                error($"{where}: an IP address cannot own tags or approve routes");
                return null;
            }

            return new Alias(AliasKind.Prefix, text, set);
        }

        if (text.StartsWith("autogroup:", StringComparison.Ordinal))
        {
            AliasKind? kind = text switch
            {
                "autogroup:member" => AliasKind.Member,
                "autogroup:tagged" => AliasKind.Tagged,
                "autogroup:internet" => AliasKind.Internet,
                "autogroup:self" => AliasKind.Self,
                "autogroup:danger-all" => AliasKind.DangerAll,
                _ => null,
            };
            if (kind is null)
            {
                error($"{where}: unknown autogroup \"{text}\" (known: autogroup:member, autogroup:tagged, autogroup:internet, autogroup:self, autogroup:danger-all)");
                return null;
            }

            if (side != "dst" && kind is AliasKind.Internet or AliasKind.Self)
            {
                error($"{where}: \"{text}\" is only valid as a destination");
                return null;
            }

            if (side == "dst" && kind == AliasKind.DangerAll)
            {
                error($"{where}: cannot use autogroup:danger-all as a dst (it is a source meaning every address, in the tailnet or not; \"*\" allows every destination)");
                return null;
            }

            if (side == "owner" && kind != AliasKind.Member)
            {
                error($"{where}: \"{text}\" cannot own tags or approve routes");
                return null;
            }

            return new Alias(kind.Value, text);
        }

        if (text.StartsWith("group:", StringComparison.Ordinal))
        {
            if (!doc.Groups.ContainsKey(text))
            {
                error($"{where}: group \"{text}\" is not defined in \"groups\"");
                return null;
            }

            return new Alias(AliasKind.Group, text);
        }

        if (text.StartsWith("tag:", StringComparison.Ordinal))
        {
            if (!doc.TagOwners.ContainsKey(text))
            {
                error($"{where}: tag \"{text}\" is not defined in \"tagOwners\"");
                return null;
            }

            return new Alias(AliasKind.Tag, text);
        }

        if (text.StartsWith("user:", StringComparison.Ordinal))
        {
            var token = text[5..];
            var at = token.IndexOf('@', StringComparison.Ordinal);
            var wildcard = token.StartsWith("*@", StringComparison.Ordinal);
            if (at <= 0 || token.IndexOf('@', at + 1) >= 0 || (wildcard ? token.Length == 2 : token.Contains('*', StringComparison.Ordinal)))
            {
                error($"{where}: \"{text}\" is not a user: write user:alice@example.com, or user:*@example.com for every user of a domain");
                return null;
            }

            return new Alias(AliasKind.User, token);
        }

        if (text.Contains('@', StringComparison.Ordinal))
        {
            return new Alias(AliasKind.User, text);
        }

        if (side == "owner")
        {
            error($"{where}: owners must be users, groups or tags");
            return null;
        }

        if (text.Contains(':', StringComparison.Ordinal) || text.Contains('/', StringComparison.Ordinal))
        {
            error($"{where}: \"{text}\" is not a valid selector");
            return null;
        }

        if (!doc.Hosts.TryGetValue(text, out var host))
        {
            error($"{where}: host \"{text}\" is not defined in \"hosts\"");
            return null;
        }

        return host;
    }

    /// <summary>Splits "selector:ports"; IPv6 may be bracketed ("[fd7a::1]:80").</summary>
    internal static bool TrySplitHostPort(string text, out string host, out string ports)
    {
        host = "";
        ports = "";
        if (text.StartsWith('['))
        {
            var close = text.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            host = text[1..close];
            ports = text[(close + 2)..];
            return true;
        }

        var colon = text.LastIndexOf(':');
        if (colon < 0)
        {
            return false;
        }

        host = text[..colon];
        ports = text[(colon + 1)..];
        return true;
    }

    private const string PortHint = "a port is a number 1-65535, a range such as 8000-8100, a list such as 22,80, or \"*\"";

    /// <summary>
    /// Parses "*", "22", "80,443", "8000-8100" or a mix. Problems carry Tailscale's wording
    /// (<c>port range "ssh": invalid first integer</c>) and say what is expected.
    /// </summary>
    internal static PortRange[]? ParsePorts(string text, out string? problem)
    {
        problem = null;
        if (text == "*")
        {
            return [PortRange.Any];
        }

        var list = new List<PortRange>();
        foreach (var part in text.Split(','))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            var firstText = dash < 0 ? part : part[..dash];
            var lastText = dash < 0 ? part : part[(dash + 1)..];
            if (!TryPort(firstText, out var first))
            {
                problem = $"port range \"{part}\": invalid first integer ({PortHint})";
                return null;
            }

            if (!TryPort(lastText, out var last))
            {
                problem = $"port range \"{part}\": invalid last integer ({PortHint})";
                return null;
            }

            if (first == 0)
            {
                problem = $"port range \"{part}\": first port must be >0, or use '*' for wildcard";
                return null;
            }

            if (last < first)
            {
                problem = $"port range \"{part}\": first port is after last port";
                return null;
            }

            list.Add(new PortRange(first, last));
        }

        return [.. list];
    }

    private static bool TryPort(string text, out int port)
    {
        port = 0;
        return text.Length is > 0 and <= 5 && text.All(char.IsAsciiDigit)
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= 65535;
    }

    private static readonly Dictionary<string, int> ProtocolNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["icmp"] = 1,
        ["igmp"] = 2,
        ["ipv4"] = 4,
        ["ip-in-ip"] = 4,
        ["tcp"] = 6,
        ["egp"] = 8,
        ["igp"] = 9,
        ["udp"] = 17,
        ["gre"] = 47,
        ["esp"] = 50,
        ["ah"] = 51,
        ["ipv6-icmp"] = 58,
        ["icmpv6"] = 58,
        ["sctp"] = 132,
    };

    /// <summary>Parses a protocol name or IANA number; null or "" is the default set (returns null numbers).</summary>
    internal static bool TryParseProtocol(string? text, out int[]? numbers, out string? problem)
    {
        numbers = null;
        problem = null;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }

        if (ProtocolNames.TryGetValue(text, out var n))
        {
            numbers = [n];
            return true;
        }

        if (text.All(char.IsAsciiDigit) && text.Length <= 3 && (text.Length == 1 || text[0] != '0')
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out n) && n is >= 0 and <= 255)
        {
            numbers = [n];
            return true;
        }

        problem = $"unknown protocol \"{text}\" (use a name such as tcp, udp, icmp, or an IANA number 0-255)";
        return false;
    }

    /// <summary>Only TCP, UDP and SCTP have ports; other protocols must use "*".</summary>
    internal static bool ProtocolAllowsPorts(int[]? protocols) =>
        protocols is null || protocols.All(static p => p is 6 or 17 or 132);

    private void ParseAcls(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array)
        {
            Error("acls: must be a list");
            return;
        }

        var index = 0;
        foreach (var acl in e.EnumerateArray())
        {
            var where = $"acls[{index++}]";
            if (!IsObject(acl))
            {
                Error($"{where}: must be an object");
                continue;
            }

            string? action = null, proto = null;
            string[]? src = null, dst = null;
            foreach (var p in acl.EnumerateObject())
            {
                switch (p.Name.ToLowerInvariant())
                {
                    case "action":
                        action = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.ToString();
                        break;
                    case "src":
                    case "users":
                        src = StringArray(p.Value, $"{where}.src");
                        break;
                    case "dst":
                    case "ports":
                        dst = StringArray(p.Value, $"{where}.dst");
                        break;
                    case "proto":
                        proto = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.ToString();
                        break;
                    default:
                        Error($"{where}: unknown field \"{p.Name}\"");
                        break;
                }
            }

            if (action != "accept")
            {
                Error(action is null ? $"{where}: missing \"action\"" : $"{where}: action=\"{action}\" is not supported (only \"accept\")");
                continue;
            }

            if (src is null || dst is null)
            {
                if (src is null && dst is null)
                {
                    Error($"{where}: missing \"src\" and \"dst\"");
                }

                continue;
            }

            if (!TryParseProtocol(proto, out var protocols, out var protoProblem))
            {
                Error($"{where}.proto: {protoProblem}");
                continue;
            }

            var sources = ParseSources(src, $"{where}.src");
            var dests = new List<Destination>();
            var ok = sources is not null;
            for (var i = 0; i < dst.Length; i++)
            {
                var d = ParseDestination(dst[i], $"{where}.dst[{i}] \"{dst[i]}\"", protocols);
                if (d is null)
                {
                    ok = false;
                }
                else
                {
                    dests.Add(d);
                }
            }

            if (ok && CheckSelfSources(sources!, dests.Select(static d => d.Alias), where, grant: false))
            {
                _doc.Rules.Add(new AclRule(where, sources!, [.. dests], protocols, null));
            }
        }
    }

    private Alias[]? ParseSources(string[] src, string where)
    {
        var list = new List<Alias>();
        var ok = true;
        for (var i = 0; i < src.Length; i++)
        {
            var a = ParseAlias(src[i], $"{where}[{i}] \"{src[i]}\"", AliasUse.Source);
            if (a is null)
            {
                ok = false;
            }
            else
            {
                list.Add(a);
            }
        }

        return ok ? [.. list] : null;
    }

    private Destination? ParseDestination(string text, string where, int[]? protocols)
    {
        if (!TrySplitHostPort(text, out var host, out var portText))
        {
            Error($"{where}: a destination must be \"selector:ports\"");
            return null;
        }

        var ports = ParsePorts(portText, out var problem);
        if (ports is null)
        {
            Error($"{where}: {problem}");
            return null;
        }

        if (!ProtocolAllowsPorts(protocols) && !(ports.Length == 1 && ports[0] == PortRange.Any))
        {
            Error($"{where}: protocol {protocols![0]} has no ports; use \"*\"");
            return null;
        }

        var alias = ParseAlias(host, where, AliasUse.Destination);
        return alias is null ? null : new Destination(alias, ports);
    }

    private const string SelfSourcesProblem = "autogroup:self can only be used with users, groups, or supported autogroups";

    /// <summary>
    /// autogroup:self only works for user-owned sources: users, groups, autogroup:member, and in <c>acls</c> also
    /// "*" (which autogroup:self narrows to the node's own user). Grants refuse "*" with it, as Tailscale does.
    /// </summary>
    private bool CheckSelfSources(Alias[] sources, IEnumerable<Alias> destinations, string where, bool grant)
    {
        if (!destinations.Any(static d => d.Kind == AliasKind.Self))
        {
            return true;
        }

        var ok = true;
        for (var i = 0; i < sources.Length; i++)
        {
            var s = sources[i];
            if (s.Kind is AliasKind.User or AliasKind.Group or AliasKind.Member || (s.Kind == AliasKind.Wildcard && !grant))
            {
                continue;
            }

            var fix = s.Kind == AliasKind.Wildcard
                ? "a grant to autogroup:self cannot have \"*\" as a source: use autogroup:member"
                : grant
                    ? "sources of a grant to autogroup:self must be users, groups or autogroup:member; move the other sources to a grant of their own"
                    : "sources of a rule to autogroup:self must be users, groups, autogroup:member or \"*\"; move the other sources to a rule of their own";
            Error($"{where}.src[{i}] \"{s.Name}\": {SelfSourcesProblem} ({fix})");
            ok = false;
        }

        return ok;
    }

    private void ParseGrants(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array)
        {
            Error("grants: must be a list");
            return;
        }

        var index = 0;
        foreach (var grant in e.EnumerateArray())
        {
            var where = $"grants[{index++}]";
            if (!IsObject(grant))
            {
                Error($"{where}: must be an object");
                continue;
            }

            string[]? src = null, dst = null, ip = null, via = null;
            var hasApp = false;
            var ok = true;
            foreach (var p in grant.EnumerateObject())
            {
                switch (p.Name.ToLowerInvariant())
                {
                    case "src":
                        src = StringArray(p.Value, $"{where}.src");
                        break;
                    case "dst":
                        dst = StringArray(p.Value, $"{where}.dst");
                        break;
                    case "ip":
                        ip = StringArray(p.Value, $"{where}.ip");
                        ok &= ip is not null;
                        break;
                    case "via":
                        via = StringArray(p.Value, $"{where}.via");
                        break;
                    case "app":
                        // Application capabilities do not shape packet filters, but their names are checked.
                        var app = ParseAppCapabilities(p.Value, $"{where}.app");
                        ok &= app is not null;
                        hasApp = app > 0;
                        break;
                    case "srcposture":
                        break;
                    default:
                        Error($"{where}: unknown field \"{p.Name}\"");
                        break;
                }
            }

            if (src is null || dst is null)
            {
                Error($"{where}: \"src\" and \"dst\" are required");
                continue;
            }

            if (ok && ip is not { Length: > 0 } && !hasApp)
            {
                Error($"{where}: ip and app can not both be empty (give \"ip\", such as [\"*\"] or [\"tcp:443\"], for network access, or \"app\" capabilities)");
                ok = false;
            }

            var sources = ParseSources(src, $"{where}.src");
            ok &= sources is not null;
            var dests = new List<Alias>();
            for (var i = 0; i < dst.Length; i++)
            {
                var w = $"{where}.dst[{i}] \"{dst[i]}\"";
                if (IpText.TryParsePrefix(dst[i], out _, out var canonical) && canonical is "0.0.0.0/0" or "::/0")
                {
                    Error($"{where}.dst[{i}]: dst \"{dst[i]}\": to allow all IP addresses, use \"*\" or \"autogroup:internet\"");
                    ok = false;
                    continue;
                }

                var a = ParseAlias(dst[i], w, AliasUse.Destination);
                if (a is null)
                {
                    ok = false;
                }
                else
                {
                    dests.Add(a);
                }
            }

            if (hasApp && dests.Any(static d => d.Kind == AliasKind.Internet))
            {
                Error($"{where}: cannot use app grants with autogroup:internet (app capabilities apply to tailnet devices: grant them in a separate grant, and keep autogroup:internet in a grant with only \"ip\")");
                ok = false;
            }

            if (via is not null)
            {
                for (var i = 0; i < via.Length; i++)
                {
                    if (!via[i].StartsWith("tag:", StringComparison.Ordinal))
                    {
                        Error($"{where}.via[{i}] \"{via[i]}\": via can only be a tag (the tag of the subnet routers or exit nodes to route through, such as \"tag:router\")");
                        ok = false;
                    }
                    else if (!_doc.TagOwners.ContainsKey(via[i]))
                    {
                        Error($"{where}.via[{i}]: tag \"{via[i]}\" not found (define it in \"tagOwners\")");
                        ok = false;
                    }
                }
            }

            if (!ok || !CheckSelfSources(sources!, dests, where, grant: true))
            {
                continue;
            }

            for (var i = 0; i < (ip?.Length ?? 0); i++)
            {
                var spec = ip![i];
                if (!TryParseGrantIp(spec, out var protocols, out var ports, out var problem))
                {
                    Error($"{where}.ip[{i}] \"{spec}\": {problem}");
                    continue;
                }

                var destinations = dests.Select(a => new Destination(a, ports!)).ToArray();
                _doc.Rules.Add(new AclRule($"{where}.ip[{i}]", sources!, destinations, protocols, via is { Length: > 0 } ? via : null));
            }
        }
    }

    /// <summary>
    /// Capabilities of the <c>tailscale.com</c> domain that a policy may grant: the ones Tailscale's own features and
    /// applications read from grants (Taildrive, the Kubernetes operator, peer relays, the web interface, tsidp,
    /// golink, tailsql, setec). The others (ingress, funnel, the companions drive-sharer and relay-target) are
    /// granted by the control plane itself and refused in a policy.
    /// </summary>
    private static readonly HashSet<string> GrantableTailscaleCapabilities = new(StringComparer.Ordinal)
    {
        "tailscale.com/cap/drive",
        "tailscale.com/cap/kubernetes",
        "tailscale.com/cap/relay",
        "tailscale.com/cap/webui",
        "tailscale.com/cap/tsidp",
        "tailscale.com/cap/golink",
        "tailscale.com/cap/tailsql",
        "tailscale.com/cap/secrets",
    };

    /// <summary>A grant's <c>app</c>: capability name → list of values. Returns how many capabilities, or null when invalid.</summary>
    private int? ParseAppCapabilities(JsonElement e, string where)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return 0;
        }

        if (!IsObject(e))
        {
            Error($"{where}: must be an object mapping capability names to lists of values, such as {{\"example.com/cap/app\": [{{}}]}}");
            return null;
        }

        var count = 0;
        var ok = true;
        foreach (var cap in e.EnumerateObject())
        {
            count++;
            var w = $"{where} \"{cap.Name}\"";
            if (CapabilityNameProblem(cap.Name) is { } problem)
            {
                Error($"{w}: {problem}");
                ok = false;
            }

            if (cap.Value.ValueKind is not (JsonValueKind.Array or JsonValueKind.Null))
            {
                Error($"{w}: must be a list of values (objects), such as [{{}}]");
                ok = false;
            }
        }

        return ok ? count : null;
    }

    /// <summary>Why a capability name is refused (Tailscale's wording and what to write instead), or null.</summary>
    internal static string? CapabilityNameProblem(string name)
    {
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == name.Length - 1 || !IsDomainName(name.AsSpan(0, slash)))
        {
            return "capability name must have the form {domain}/{path} (such as \"example.com/cap/my-app\", without a scheme like \"https://\")";
        }

        var domain = name[..slash];
        if ((domain.Equals("tailscale.com", StringComparison.OrdinalIgnoreCase) || domain.EndsWith(".tailscale.com", StringComparison.OrdinalIgnoreCase))
            && !GrantableTailscaleCapabilities.Contains(name))
        {
            return "capability name must not be in the tailscale.com domain (use your own domain, such as \"example.com/cap/my-app\"; of tailscale.com, only "
                + string.Join(", ", GrantableTailscaleCapabilities) + " can be granted)";
        }

        return null;
    }

    /// <summary>Dot-separated labels of letters, digits and hyphens, none empty, none starting or ending with a hyphen.</summary>
    private static bool IsDomainName(ReadOnlySpan<char> text)
    {
        if (text.Length is 0 or > 253)
        {
            return false;
        }

        foreach (var range in text.Split('.'))
        {
            var label = text[range];
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// A grant's <c>ip</c> entry: "*", ports alone ("22", "80-90", "22,443": the default protocols), or
    /// "protocol:ports" ("tcp:443", "udp:*", "icmp:*"). As in Tailscale, an entry without a colon is read as ports,
    /// so a bare protocol name ("icmp") is refused; the problem then says to write "icmp:*".
    /// </summary>
    private static bool TryParseGrantIp(string spec, out int[]? protocols, out PortRange[]? ports, out string? problem)
    {
        protocols = null;
        ports = null;
        problem = null;
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            ports = ParsePorts(spec, out problem);
            if (ports is null && ProtocolNames.ContainsKey(spec))
            {
                problem += $"; to allow protocol {spec} on every port, write \"{spec}:*\"";
            }

            return ports is not null;
        }

        var protoText = spec[..colon];
        if (protoText.Length == 0)
        {
            problem = "missing protocol before ':' (write \"tcp:443\", or just \"443\" for the default protocols)";
            return false;
        }

        if (!TryParseProtocol(protoText, out protocols, out problem))
        {
            return false;
        }

        ports = ParsePorts(spec[(colon + 1)..], out problem);
        if (ports is null)
        {
            return false;
        }

        if (!ProtocolAllowsPorts(protocols) && !(ports.Length == 1 && ports[0] == PortRange.Any))
        {
            problem = $"protocol {protocols![0]} has no ports; use \"{protoText}:*\"";
            return false;
        }

        return true;
    }

    private void ParseAutoApprovers(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (!IsObject(e))
        {
            Error("autoApprovers: must be an object");
            return;
        }

        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name.ToLowerInvariant())
            {
                case "routes":
                    if (p.Value.ValueKind == JsonValueKind.Null)
                    {
                        break;
                    }

                    if (!IsObject(p.Value))
                    {
                        Error("autoApprovers.routes: must be an object");
                        break;
                    }

                    foreach (var r in p.Value.EnumerateObject())
                    {
                        var where = $"autoApprovers.routes[\"{r.Name}\"]";
                        if (!IpText.TryParsePrefix(r.Name, out var set, out _))
                        {
                            Error($"{where}: \"{r.Name}\" is not a CIDR");
                            continue;
                        }

                        var approvers = ParseApprovers(r.Value, where);
                        if (approvers is not null)
                        {
                            _doc.RouteApprovers.Add(new RouteApprover(set, r.Name, approvers));
                        }
                    }

                    break;
                case "exitnode":
                    var exit = ParseApprovers(p.Value, "autoApprovers.exitNode");
                    if (exit is not null)
                    {
                        _doc.ExitNodeApprovers.AddRange(exit);
                    }

                    break;
                default:
                    Error($"autoApprovers: unknown field \"{p.Name}\"");
                    break;
            }
        }
    }

    private Alias[]? ParseApprovers(JsonElement e, string where)
    {
        var names = StringArray(e, where);
        if (names is null)
        {
            return null;
        }

        var list = new List<Alias>();
        for (var i = 0; i < names.Length; i++)
        {
            var a = ParseAlias(names[i], $"{where}[{i}] \"{names[i]}\"", AliasUse.Owner);
            if (a is not null)
            {
                list.Add(a);
            }
        }

        return [.. list];
    }

    private void ParseTests(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (e.ValueKind != JsonValueKind.Array)
        {
            Error("tests: must be a list");
            return;
        }

        var index = 0;
        foreach (var t in e.EnumerateArray())
        {
            var where = $"tests[{index++}]";
            if (!IsObject(t))
            {
                Error($"{where}: must be an object");
                continue;
            }

            string? src = null, proto = null;
            string[] accept = [], deny = [];
            foreach (var p in t.EnumerateObject())
            {
                switch (p.Name.ToLowerInvariant())
                {
                    case "src":
                        src = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.ToString();
                        break;
                    case "proto":
                        proto = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.ToString();
                        break;
                    case "accept":
                        accept = StringArray(p.Value, $"{where}.accept") ?? [];
                        break;
                    case "deny":
                        deny = StringArray(p.Value, $"{where}.deny") ?? [];
                        break;
                    default:
                        Error($"{where}: unknown field \"{p.Name}\"");
                        break;
                }
            }

            _doc.Tests.Add(new PolicyTestCase(where, src, proto, accept, deny));
        }
    }
}
