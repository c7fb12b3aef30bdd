using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Net.Linux;

/// <summary>
/// A UDP peer address: an IP address kept as 16 bytes (IPv4 as v4-mapped IPv6, the form a
/// dual-stack socket uses), a port and an IPv6 scope id. A value type that compares by value and
/// never allocates, so the data path can key peers by it; <see cref="IPEndPoint"/> is only for
/// the edges.
/// </summary>
public readonly struct UdpEndpoint : IEquatable<UdpEndpoint>
{
    // The address in network byte order: bytes 0-7 and 8-15 read big-endian.
    private readonly ulong _high;
    private readonly ulong _low;
    private readonly ushort _port;
    private readonly uint _scopeId;

    private const ulong V4MappedLowPrefix = 0x0000_FFFF_0000_0000;

    private UdpEndpoint(ulong high, ulong low, ushort port, uint scopeId)
    {
        _high = high;
        _low = low;
        _port = port;
        _scopeId = scopeId;
    }

    /// <summary>
    /// From a 4-byte IPv4 or 16-byte IPv6 address in network byte order (IPv4 is stored v4-mapped).
    /// </summary>
    public UdpEndpoint(ReadOnlySpan<byte> address, ushort port, uint scopeId = 0)
    {
        if (address.Length == 4)
        {
            _high = 0;
            _low = V4MappedLowPrefix | BinaryPrimitives.ReadUInt32BigEndian(address);
            _scopeId = 0;
        }
        else if (address.Length == 16)
        {
            _high = BinaryPrimitives.ReadUInt64BigEndian(address);
            _low = BinaryPrimitives.ReadUInt64BigEndian(address[8..]);
            _scopeId = scopeId;
        }
        else
        {
            throw new ArgumentException($"an IP address is 4 or 16 bytes, not {address.Length}", nameof(address));
        }
        _port = port;
    }

    public ushort Port => _port;

    /// <summary>The IPv6 scope (interface index) of a link-local address; 0 otherwise.</summary>
    public uint ScopeId => _scopeId;

    /// <summary>True for an IPv4 address (held as ::ffff:a.b.c.d).</summary>
    public bool IsIPv4 => _high == 0 && (_low & 0xFFFF_FFFF_0000_0000) == V4MappedLowPrefix;

    public static UdpEndpoint FromIPEndPoint(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        Span<byte> bytes = stackalloc byte[16];
        IPAddress address = endPoint.Address;
        if (!address.TryWriteBytes(bytes, out int written))
        {
            throw new ArgumentException($"{address} is neither IPv4 nor IPv6", nameof(endPoint));
        }
        uint scope = address.AddressFamily == AddressFamily.InterNetworkV6 ? (uint)address.ScopeId : 0;
        return new UdpEndpoint(bytes[..written], (ushort)endPoint.Port, scope);
    }

    /// <summary>An IPv4 endpoint for a v4-mapped address, IPv6 otherwise.</summary>
    public IPEndPoint ToIPEndPoint()
    {
        if (IsIPv4)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)_low);
            return new IPEndPoint(new IPAddress(v4), _port);
        }
        Span<byte> v6 = stackalloc byte[16];
        WriteAddress(v6);
        return new IPEndPoint(new IPAddress(v6, _scopeId), _port);
    }

    /// <summary>Writes the 16-byte (IPv6 or v4-mapped) address in network byte order.</summary>
    public void WriteAddress(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
    }

    /// <summary>"198.18.0.1:51820", "[fd00::1]:51820" (a v4-mapped address is shown as IPv4).</summary>
    public override string ToString()
    {
        if (IsIPv4)
        {
            uint v4 = (uint)_low;
            return string.Create(CultureInfo.InvariantCulture,
                $"{v4 >> 24}.{(v4 >> 16) & 0xff}.{(v4 >> 8) & 0xff}.{v4 & 0xff}:{_port}");
        }
        Span<byte> v6 = stackalloc byte[16];
        WriteAddress(v6);
        return string.Create(CultureInfo.InvariantCulture, $"[{new IPAddress(v6, _scopeId)}]:{_port}");
    }

    /// <summary>
    /// Parses "a.b.c.d:port" (dotted quad only) or "[ipv6]:port" (optionally "%scope" with a numeric
    /// scope); the port is required.
    /// </summary>
    public static bool TryParse(string? text, out UdpEndpoint endpoint) => TryParse(text.AsSpan(), out endpoint);

    public static bool TryParse(ReadOnlySpan<char> text, out UdpEndpoint endpoint)
    {
        endpoint = default;
        ReadOnlySpan<char> host;
        ReadOnlySpan<char> port;
        bool v6;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                return false;
            }
            host = text[1..close];
            port = text[(close + 2)..];
            v6 = true;
            if (host.IndexOf(':') < 0)
            {
                return false;
            }
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon <= 0)
            {
                return false;
            }
            host = text[..colon];
            port = text[(colon + 1)..];
            v6 = false;
            if (!IsDottedQuad(host))
            {
                return false;
            }
        }
        if (port.IsEmpty || port.Length > 5
            || !ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out ushort portNumber))
        {
            return false;
        }
        if (!IPAddress.TryParse(host, out IPAddress? address)
            || address.AddressFamily != (v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork))
        {
            return false;
        }
        endpoint = FromIPEndPoint(new IPEndPoint(address, portNumber));
        return true;
    }

    public bool Equals(UdpEndpoint other) =>
        _high == other._high && _low == other._low && _port == other._port && _scopeId == other._scopeId;

    public override bool Equals(object? obj) => obj is UdpEndpoint other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_high, _low, _port, _scopeId);

    public static bool operator ==(UdpEndpoint left, UdpEndpoint right) => left.Equals(right);

    public static bool operator !=(UdpEndpoint left, UdpEndpoint right) => !left.Equals(right);

    internal unsafe void WriteTo(SockAddrIn6* address)
    {
        address->Family = Native.AF_INET6;
        BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(&address->Port, 2), _port);
        address->FlowInfo = 0;
        WriteAddress(new Span<byte>(address->Address, 16));
        address->ScopeId = _scopeId;
    }

    /// <summary>From a sockaddr the kernel filled in (AF_INET6, or AF_INET on an IPv4-only socket).</summary>
    internal static unsafe UdpEndpoint FromSockAddr(void* address)
    {
        var v6 = (SockAddrIn6*)address;
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(&v6->Port, 2));
        if (v6->Family == Native.AF_INET)
        {
            var v4 = (SockAddrIn*)address;
            return new UdpEndpoint(0, V4MappedLowPrefix | BinaryPrimitives.ReadUInt32BigEndian(new ReadOnlySpan<byte>(v4->Address, 4)), port, 0);
        }
        var bytes = new ReadOnlySpan<byte>(v6->Address, 16);
        return new UdpEndpoint(
            BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]), port, v6->ScopeId);
    }

    private static bool IsDottedQuad(ReadOnlySpan<char> host)
    {
        // Only a.b.c.d in decimal: IPAddress.TryParse would also take "1", "0x7f.1" or "010.0.0.1".
        int dots = 0;
        int digits = 0;
        bool leadingZero = false;
        foreach (char c in host)
        {
            if (c == '.')
            {
                if (digits == 0)
                {
                    return false;
                }
                dots++;
                digits = 0;
            }
            else if (c is >= '0' and <= '9' && ++digits <= 3)
            {
                if (digits == 1)
                {
                    leadingZero = c == '0';
                }
                else if (leadingZero)
                {
                    return false;
                }
            }
            else
            {
                return false;
            }
        }
        return dots == 3 && digits > 0;
    }
}
