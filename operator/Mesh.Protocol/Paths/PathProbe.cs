using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Paths;

/// <summary>What a path probe asks or answers.</summary>
public enum PathProbeKind : byte
{
    /// <summary>"Does this path reach you?" — sent to each of a peer's candidate endpoints.</summary>
    Ping = 1,

    /// <summary>"It does": sent back to the ping's source, naming the source as seen (the sender's mapping).</summary>
    Pong = 2,
}

/// <summary>One opened probe: its kind, the transaction it belongs to, and for a pong the source address the pinged node saw.</summary>
public readonly record struct PathProbe(PathProbeKind Kind, ulong TransactionId, IPEndPoint? Observed);

/// <summary>
/// The key two nodes seal their path probes with: BLAKE2s of a label and the X25519 agreement of
/// their path keys (each agent's own key pair, made at start and announced through the
/// coordinator as its disco key — never its WireGuard key, so the two protocols share no secret).
/// Both ends derive the same key; each message carries a fresh random nonce.
/// </summary>
public sealed class PathProbeKey
{
    private static readonly byte[] Label = "MeshOperator path probe v1"u8.ToArray();

    private readonly byte[] _key;

    private PathProbeKey(byte[] key) => _key = key;

    internal ReadOnlySpan<byte> Bytes => _key;

    /// <summary>The key shared with <paramref name="peer"/>; null when the peer's key is a low-order point.</summary>
    public static PathProbeKey? Derive(ReadOnlySpan<byte> ownPrivateKey, NoisePublicKey peer)
    {
        Span<byte> peerKey = stackalloc byte[NoisePublicKey.Size];
        peer.CopyTo(peerKey);
        Span<byte> shared = stackalloc byte[X25519.KeySize];
        if (!X25519.SharedSecret(ownPrivateKey, peerKey, shared))
        {
            return null;
        }

        var key = new byte[32];
        Blake2s.Hash(Label, shared, key);
        shared.Clear();
        return new PathProbeKey(key);
    }
}

/// <summary>
/// The wire format of path probes: small authenticated datagrams that share the WireGuard socket
/// with WireGuard and STUN, so a pong proves that the whole round trip — out through this node's
/// NAT, in through the peer's, and back — works on exactly the socket WireGuard uses.
/// </summary>
/// <remarks>
/// <code>
/// offset  size  field
///      0     8  magic "MeshPath" (first byte 0x4D: never a WireGuard type 1..4, never STUN's top bits 00)
///      8    32  sender's path public key (identifies the sender; selects the key)
///     40    24  nonce (random)
///     64    27  XChaCha20-Poly1305 ciphertext of: kind (1) | transaction id (8, big-endian) |
///               observed address (16, IPv4 mapped into IPv6; zero in a ping) | observed port (2)
///     91    16  tag (associated data: bytes 0..40)
/// </code>
/// Parsers return false on anything malformed and never throw.
/// </remarks>
public static class PathProbeCodec
{
    public const int Size = HeaderSize + PlaintextSize + TagSize;

    private const int MagicSize = 8;
    private const int SenderOffset = MagicSize;
    private const int NonceOffset = SenderOffset + NoisePublicKey.Size;
    private const int NonceSize = 24;
    private const int HeaderSize = NonceOffset + NonceSize;
    private const int PlaintextSize = 1 + 8 + 16 + 2;
    private const int TagSize = 16;

    private static ReadOnlySpan<byte> Magic => "MeshPath"u8;

    /// <summary>Whether a datagram is a path probe (by size and magic; authenticity is <see cref="TryOpen"/>'s job).</summary>
    public static bool IsProbe(ReadOnlySpan<byte> datagram) => datagram.Length == Size && datagram.StartsWith(Magic);

    /// <summary>The sender's path key, read without authenticating (to find which key opens the rest).</summary>
    public static bool TryReadSender(ReadOnlySpan<byte> datagram, out NoisePublicKey sender)
    {
        if (!IsProbe(datagram))
        {
            sender = default;
            return false;
        }

        sender = new NoisePublicKey(datagram.Slice(SenderOffset, NoisePublicKey.Size));
        return true;
    }

    /// <summary>Writes a sealed probe of <see cref="Size"/> bytes into <paramref name="destination"/>; returns its length.</summary>
    public static int Write(Span<byte> destination, NoisePublicKey sender, PathProbeKey key, in PathProbe probe, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(random);
        if (destination.Length < Size)
        {
            throw new ArgumentException($"A path probe needs {Size} bytes.", nameof(destination));
        }

        Magic.CopyTo(destination);
        sender.CopyTo(destination[SenderOffset..]);
        var nonce = destination.Slice(NonceOffset, NonceSize);
        random.Fill(nonce);

        Span<byte> plaintext = stackalloc byte[PlaintextSize];
        plaintext.Clear();
        plaintext[0] = (byte)probe.Kind;
        BinaryPrimitives.WriteUInt64BigEndian(plaintext[1..], probe.TransactionId);
        if (probe.Observed is { } observed)
        {
            var address = observed.Address.AddressFamily == AddressFamily.InterNetwork ? observed.Address.MapToIPv6() : observed.Address;
            address.TryWriteBytes(plaintext.Slice(9, 16), out _);
            BinaryPrimitives.WriteUInt16BigEndian(plaintext[25..], (ushort)observed.Port);
        }

        XChaChaPoly.Seal(key.Bytes, nonce, plaintext, destination[..NonceOffset], destination.Slice(HeaderSize, PlaintextSize + TagSize));
        return Size;
    }

    /// <summary>Authenticates and opens a probe sealed with <paramref name="key"/>; false when it is not one, or forged, or altered.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> datagram, PathProbeKey key, out PathProbe probe)
    {
        ArgumentNullException.ThrowIfNull(key);
        probe = default;
        if (!IsProbe(datagram))
        {
            return false;
        }

        Span<byte> plaintext = stackalloc byte[PlaintextSize];
        if (!XChaChaPoly.Open(key.Bytes, datagram.Slice(NonceOffset, NonceSize), datagram[HeaderSize..Size], datagram[..NonceOffset], plaintext))
        {
            return false;
        }

        var kind = (PathProbeKind)plaintext[0];
        if (kind is not (PathProbeKind.Ping or PathProbeKind.Pong))
        {
            return false;
        }

        IPEndPoint? observed = null;
        if (kind == PathProbeKind.Pong)
        {
            var address = new IPAddress(plaintext.Slice(9, 16));
            if (address.IsIPv4MappedToIPv6)
            {
                address = address.MapToIPv4();
            }

            observed = new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(plaintext[25..]));
        }

        probe = new PathProbe(kind, BinaryPrimitives.ReadUInt64BigEndian(plaintext[1..]), observed);
        return true;
    }
}
