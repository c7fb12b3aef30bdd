using System.Net;

namespace Mesh.Net;

/// <summary>Prefixes as WireGuard writes them: host bits cleared.</summary>
public static class NetworkPrefix
{
    /// <summary>The network of <paramref name="address"/>/<paramref name="prefixLength"/> with host bits cleared (10.1.2.3/16 → 10.1.0.0/16).</summary>
    public static IPNetwork Masked(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("address does not fit 16 bytes", nameof(address));
        }

        bytes = bytes[..written];
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(prefixLength - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }

        return new IPNetwork(new IPAddress(bytes), prefixLength);
    }
}
