using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Net.Uapi;

/// <summary>
/// The value syntaxes of the UAPI text protocol, as strict as wireguard-go's Go parsers
/// (<c>strconv.ParseUint</c>, <c>netip.ParseAddrPort</c>, <c>netip.ParsePrefix</c>, <c>hex.DecodeString</c>):
/// no signs, no whitespace, no leading zeros in IPv4 octets or prefix lengths.
/// </summary>
internal static class UapiValues
{
    public const int KeyLength = 32;
    private const int KeyHexLength = KeyLength * 2;

    /// <summary>A key is exactly 64 hex digits (either case, as Go's hex.DecodeString accepts).</summary>
    public static bool TryParseHexKey(string value, out byte[] key)
    {
        key = [];
        if (value.Length != KeyHexLength)
        {
            return false;
        }

        var bytes = new byte[KeyLength];
        for (var i = 0; i < KeyLength; i++)
        {
            var hi = HexDigit(value[2 * i]);
            var lo = HexDigit(value[(2 * i) + 1]);
            if (hi < 0 || lo < 0)
            {
                return false;
            }

            bytes[i] = (byte)((hi << 4) | lo);
        }

        key = bytes;
        return true;
    }

    public static void AppendHexKey(System.Text.StringBuilder sb, ReadOnlySpan<byte> key)
    {
        const string Digits = "0123456789abcdef";
        foreach (var b in key)
        {
            sb.Append(Digits[b >> 4]).Append(Digits[b & 0xf]);
        }
    }

    /// <summary>Decimal digits only, like strconv.ParseUint(value, 10, bits).</summary>
    public static bool TryParseUInt(string value, ulong max, out ulong result)
    {
        result = 0;
        if (value.Length == 0 || value.Length > 20)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }

            var digit = (ulong)(c - '0');
            if (result > (max - digit) / 10)
            {
                return false;
            }

            result = (result * 10) + digit;
        }

        return true;
    }

    /// <summary><c>a.b.c.d:port</c> or <c>[v6]:port</c> (a zone is allowed inside the brackets).</summary>
    public static bool TryParseEndpoint(string value, out IPEndPoint? endpoint)
    {
        endpoint = null;
        IPAddress? address;
        string portText;
        if (value.StartsWith('['))
        {
            var close = value.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            var host = value[1..close];
            portText = value[(close + 2)..];
            if (!TryParseIPv6(host, allowZone: true, out address))
            {
                return false;
            }
        }
        else
        {
            var colon = value.LastIndexOf(':');
            if (colon < 0)
            {
                return false;
            }

            portText = value[(colon + 1)..];
            if (!TryParseIPv4(value.AsSpan(0, colon), out address))
            {
                return false;
            }
        }

        if (!TryParseUInt(portText, ushort.MaxValue, out var port))
        {
            return false;
        }

        endpoint = new IPEndPoint(address!, (int)port);
        return true;
    }

    /// <summary>
    /// <c>address/bits</c>, like netip.ParsePrefix (no zone, no leading zeros in bits), then masked
    /// to the prefix as wireguard-go's allowed-IPs trie does.
    /// </summary>
    public static bool TryParsePrefix(string value, out IPNetwork network)
    {
        network = default;
        var slash = value.LastIndexOf('/');
        if (slash < 0)
        {
            return false;
        }

        var bitsText = value[(slash + 1)..];
        if (bitsText.Length == 0 || (bitsText.Length > 1 && bitsText[0] == '0')
            || !TryParseUInt(bitsText, 128, out var bits))
        {
            return false;
        }

        var host = value.AsSpan(0, slash);
        IPAddress? address;
        if (host.Contains(':'))
        {
            if (!TryParseIPv6(host.ToString(), allowZone: false, out address))
            {
                return false;
            }
        }
        else if (!TryParseIPv4(host, out address))
        {
            return false;
        }

        var maxBits = address!.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if ((int)bits > maxBits)
        {
            return false;
        }

        network = NetworkPrefix.Masked(address, (int)bits);
        return true;
    }

    /// <summary>Dotted quad only: four decimal octets, no leading zeros (IPAddress.TryParse also takes "1" or "0x7f.1").</summary>
    public static bool TryParseIPv4(ReadOnlySpan<char> text, out IPAddress? address)
    {
        address = null;
        Span<byte> octets = stackalloc byte[4];
        var part = 0;
        var value = 0;
        var digits = 0;
        for (var i = 0; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == '.')
            {
                if (digits == 0 || part > 3)
                {
                    return false;
                }

                octets[part++] = (byte)value;
                value = 0;
                digits = 0;
                continue;
            }

            var c = text[i];
            if (c is < '0' or > '9' || (digits == 1 && value == 0))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
            digits++;
            if (value > 255)
            {
                return false;
            }
        }

        if (part != 4)
        {
            return false;
        }

        address = new IPAddress(octets);
        return true;
    }

    private static bool TryParseIPv6(string text, bool allowZone, out IPAddress? address)
    {
        address = null;
        if (text.Length == 0 || !text.Contains(':') || (!allowZone && text.Contains('%')))
        {
            return false;
        }

        // IPAddress.TryParse also takes brackets and ports; the checks above and the family check
        // below leave only the plain textual forms netip accepts.
        foreach (var c in text)
        {
            if (c is '[' or ']' or '/' || char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        if (!IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        address = parsed;
        return true;
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    public static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
