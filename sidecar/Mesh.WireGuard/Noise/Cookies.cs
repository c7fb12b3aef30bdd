using System.Security.Cryptography;
using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Noise;

/// <summary>
/// The responder side of §5.4.4/§5.4.7: checks mac1 on every handshake message and, when the
/// device is under load, demands a valid mac2 proving the sender owns its source address; a
/// sender without one gets a cookie reply instead of a handshake. Thread-safe.
/// </summary>
public sealed class CookieChecker
{
    private readonly Lock _lock = new();
    private readonly byte[] _secret = new byte[32];
    private readonly IRandomSource _random;
    private TimeSpan _secretSetAt = TimeSpan.MinValue;

    public CookieChecker(IRandomSource random) => _random = random;

    /// <summary>mac1 = MAC(HASH(LABEL_MAC1 || S_pub_m), msg[0..mac1Offset]).</summary>
    public static bool CheckMac1(ReadOnlySpan<byte> message, int mac1Offset, ReadOnlySpan<byte> mac1Key)
    {
        Span<byte> mac = stackalloc byte[Blake2s.MacSize];
        Blake2s.Mac(mac1Key, message[..mac1Offset], mac);
        return CryptographicOperations.FixedTimeEquals(mac, message.Slice(mac1Offset, Blake2s.MacSize));
    }

    /// <summary>mac2 = MAC(cookie, msg[0..mac2Offset]) with cookie = MAC(R_m, source address).</summary>
    public bool CheckMac2(ReadOnlySpan<byte> message, int mac2Offset, ReadOnlySpan<byte> sourceAddress, TimeSpan now)
    {
        Span<byte> cookie = stackalloc byte[Blake2s.MacSize];
        Span<byte> mac = stackalloc byte[Blake2s.MacSize];
        MakeCookie(sourceAddress, now, cookie);
        Blake2s.Mac(cookie, message[..mac2Offset], mac);
        return CryptographicOperations.FixedTimeEquals(mac, message.Slice(mac2Offset, Blake2s.MacSize));
    }

    /// <summary>
    /// Writes a 64-byte cookie reply to <paramref name="message"/> (an initiation or response):
    /// msg.cookie = XAEAD(HASH(LABEL_COOKIE || S_pub_m), nonce, cookie, msg.mac1).
    /// </summary>
    public void CreateReply(ReadOnlySpan<byte> message, int mac1Offset, uint receiverIndex, ReadOnlySpan<byte> sourceAddress, StaticIdentity local, TimeSpan now, Span<byte> reply)
    {
        Span<byte> cookie = stackalloc byte[Blake2s.MacSize];
        MakeCookie(sourceAddress, now, cookie);
        Messages.WriteHeader(reply, Messages.TypeCookieReply);
        Messages.WriteIndex(reply, Messages.CookieReceiver, receiverIndex);
        var nonce = reply.Slice(Messages.CookieNonce, Messages.CookieNonceSize);
        _random.Fill(nonce);
        XChaChaPoly.Seal(local.CookieKey, nonce, cookie, message.Slice(mac1Offset, Blake2s.MacSize), reply.Slice(Messages.CookieEncrypted, Messages.CookieEncryptedSize));
    }

    private void MakeCookie(ReadOnlySpan<byte> sourceAddress, TimeSpan now, Span<byte> cookie)
    {
        Span<byte> secret = stackalloc byte[32];
        lock (_lock)
        {
            if (_secretSetAt == TimeSpan.MinValue || now - _secretSetAt >= Protocol.CookieRefreshTime)
            {
                _random.Fill(_secret);
                _secretSetAt = now;
            }

            _secret.CopyTo(secret);
        }

        Blake2s.Mac(secret, sourceAddress, cookie);
        CryptographicOperations.ZeroMemory(secret);
    }
}

/// <summary>
/// The initiator side of §5.4.7: adds mac1 (and mac2 while a fresh cookie is held) to the
/// handshake messages sent to one peer, and opens that peer's cookie replies. Not thread-safe:
/// used under the peer's handshake lock.
/// </summary>
public sealed class CookieGenerator
{
    private readonly byte[] _lastMac1 = new byte[Blake2s.MacSize];
    private readonly byte[] _cookie = new byte[Blake2s.MacSize];
    private bool _hasLastMac1;
    private TimeSpan _cookieReceivedAt = TimeSpan.MinValue;

    public void AddMacs(Span<byte> message, int mac1Offset, PeerKeys peer, TimeSpan now)
    {
        var mac1 = message.Slice(mac1Offset, Blake2s.MacSize);
        Blake2s.Mac(peer.Mac1Key, message[..mac1Offset], mac1);
        mac1.CopyTo(_lastMac1);
        _hasLastMac1 = true;

        var mac2Offset = mac1Offset + Blake2s.MacSize;
        var mac2 = message.Slice(mac2Offset, Blake2s.MacSize);
        if (_cookieReceivedAt != TimeSpan.MinValue && now - _cookieReceivedAt < Protocol.CookieRefreshTime)
        {
            Blake2s.Mac(_cookie, message[..mac2Offset], mac2);
        }
        else
        {
            mac2.Clear();
        }
    }

    public bool ConsumeReply(ReadOnlySpan<byte> reply, PeerKeys peer, TimeSpan now)
    {
        if (!_hasLastMac1)
        {
            return false;
        }

        Span<byte> cookie = stackalloc byte[Blake2s.MacSize];
        if (!XChaChaPoly.Open(peer.CookieKey, reply.Slice(Messages.CookieNonce, Messages.CookieNonceSize), reply.Slice(Messages.CookieEncrypted, Messages.CookieEncryptedSize), _lastMac1, cookie))
        {
            return false;
        }

        cookie.CopyTo(_cookie);
        _cookieReceivedAt = now;
        _hasLastMac1 = false;
        return true;
    }
}
