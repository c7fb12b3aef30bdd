using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Sidecar.Dns;

/// <summary>
/// Name handling shared by the zone and its builder: normalizing configured names and turning
/// reverse-lookup names (<c>in-addr.arpa</c>, <c>ip6.arpa</c>) into addresses and back.
/// </summary>
internal static class DnsNames
{
    // RFC 1035 §2.3.4: labels of at most 63 octets, names of at most 255 octets on the wire,
    // which is 253 characters in dotted form without the trailing dot.
    private const int MaxLabelLength = 63;
    private const int MaxNameLength = 253;

    private const string InAddrArpa = "in-addr.arpa";
    private const string Ip6Arpa = "ip6.arpa";

    /// <summary>
    /// Lower-cases <paramref name="name"/> and strips one trailing dot; "" is the root. Letters, digits,
    /// '-' and '_' are allowed in labels ('_' for service names such as <c>_http._tcp</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The name is not a valid DNS name.</exception>
    public static string Normalize(string name, string paramName)
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        var trimmed = name.Trim();
        if (trimmed.EndsWith('.'))
        {
            trimmed = trimmed[..^1];
        }

        if (trimmed.Length == 0)
        {
            return "";
        }

        if (trimmed.Length > MaxNameLength)
        {
            throw new ArgumentException($"DNS name '{name}' is longer than {MaxNameLength} characters.", paramName);
        }

        var labelLength = 0;
        foreach (var c in trimmed)
        {
            if (c == '.')
            {
                if (labelLength == 0)
                {
                    throw new ArgumentException($"DNS name '{name}' has an empty label.", paramName);
                }

                labelLength = 0;
                continue;
            }

            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_'))
            {
                throw new ArgumentException($"DNS name '{name}' has a character other than letters, digits, '-' and '_'.", paramName);
            }

            if (++labelLength > MaxLabelLength)
            {
                throw new ArgumentException($"DNS name '{name}' has a label longer than {MaxLabelLength} characters.", paramName);
            }
        }

        if (labelLength == 0)
        {
            throw new ArgumentException($"DNS name '{name}' has an empty label.", paramName);
        }

        return trimmed.ToLowerInvariant();
    }

    /// <summary>True when <paramref name="name"/> is <paramref name="zone"/> or below it (both normalized, no trailing dot).</summary>
    public static bool IsAtOrBelow(string name, string zone) =>
        name.Length == zone.Length
            ? name.Equals(zone, StringComparison.OrdinalIgnoreCase)
            : name.Length > zone.Length
              && name[name.Length - zone.Length - 1] == '.'
              && name.EndsWith(zone, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The reverse-lookup name of <paramref name="address"/> without a trailing dot
    /// (RFC 1035 §3.5 for IPv4, RFC 3596 §2.5 for IPv6: one label per nibble, least significant first).
    /// </summary>
    public static string ReverseName(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{bytes[3]}.{bytes[2]}.{bytes[1]}.{bytes[0]}.{InAddrArpa}");
        }

        const string hex = "0123456789abcdef";
        var chars = new char[(bytes.Length * 4) + Ip6Arpa.Length];
        var at = 0;
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            chars[at++] = hex[bytes[i] & 0xF];
            chars[at++] = '.';
            chars[at++] = hex[bytes[i] >> 4];
            chars[at++] = '.';
        }

        Ip6Arpa.CopyTo(chars.AsSpan(at));
        return new string(chars);
    }

    /// <summary>
    /// The address a complete reverse-lookup name stands for: four decimal labels under
    /// <c>in-addr.arpa</c> or 32 nibble labels under <c>ip6.arpa</c>. Anything else (a partial
    /// name such as <c>64.100.in-addr.arpa</c>, a label that is not a number) gives false.
    /// </summary>
    public static bool TryParseReverseName(ReadOnlySpan<char> name, out IPAddress? address)
    {
        address = null;
        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }

        if (EndsWithLabel(name, InAddrArpa))
        {
            var labels = name[..^(InAddrArpa.Length + 1)];
            Span<byte> bytes = stackalloc byte[4];
            for (var i = 3; i >= 0; i--)
            {
                var dot = labels.IndexOf('.');
                var label = dot < 0 ? labels : labels[..dot];
                if (label.Length is 0 or > 3 || (label.Length > 1 && label[0] == '0')
                    || !byte.TryParse(label, NumberStyles.None, CultureInfo.InvariantCulture, out bytes[i]))
                {
                    return false;
                }

                if (dot < 0)
                {
                    if (i != 0)
                    {
                        return false;
                    }

                    address = new IPAddress(bytes);
                    return true;
                }

                labels = labels[(dot + 1)..];
            }

            return false;
        }

        if (EndsWithLabel(name, Ip6Arpa))
        {
            var labels = name[..^(Ip6Arpa.Length + 1)];

            // 32 one-character labels and 31 dots between them.
            if (labels.Length != 63)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            for (var nibble = 0; nibble < 32; nibble++)
            {
                if (nibble > 0 && labels[(nibble * 2) - 1] != '.')
                {
                    return false;
                }

                var value = HexValue(labels[nibble * 2]);
                if (value < 0)
                {
                    return false;
                }

                // Nibble 0 is the low half of the last byte.
                var index = 15 - (nibble / 2);
                bytes[index] |= (byte)(nibble % 2 == 0 ? value : value << 4);
            }

            address = new IPAddress(bytes);
            return true;
        }

        return false;
    }

    private static bool EndsWithLabel(ReadOnlySpan<char> name, string suffix) =>
        name.Length > suffix.Length + 1
        && name[^(suffix.Length + 1)] == '.'
        && name.EndsWith(suffix, StringComparison.OrdinalIgnoreCase);

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}
