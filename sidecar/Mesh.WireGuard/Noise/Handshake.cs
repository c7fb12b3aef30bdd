using System.Security.Cryptography;
using Mesh.WireGuard.Crypto;

namespace Mesh.WireGuard.Noise;

/// <summary>Where a peer's handshake stands (whitepaper §5.4.2–§5.4.4).</summary>
public enum HandshakeState
{
    None,
    InitiationCreated,
    InitiationConsumed,
    ResponseCreated,
    ResponseConsumed,
}

/// <summary>The local static key pair with the two keys derived from its public half.</summary>
public sealed class StaticIdentity
{
    public StaticIdentity(ReadOnlySpan<byte> privateKey)
    {
        PrivateKey = privateKey[..X25519.KeySize].ToArray();
        X25519.ClampPrivateKey(PrivateKey);
        PublicKey = new byte[X25519.KeySize];
        X25519.PublicKey(PrivateKey, PublicKey);
        Mac1Key = NoiseConstants.LabelledKey(NoiseConstants.LabelMac1, PublicKey);
        CookieKey = NoiseConstants.LabelledKey(NoiseConstants.LabelCookie, PublicKey);
    }

    public byte[] PrivateKey { get; }
    public byte[] PublicKey { get; }

    /// <summary>HASH(LABEL_MAC1 || S_pub): checks mac1 of messages sent to us.</summary>
    public byte[] Mac1Key { get; }

    /// <summary>HASH(LABEL_COOKIE || S_pub): seals the cookies we send.</summary>
    public byte[] CookieKey { get; }
}

/// <summary>
/// One peer's Noise_IKpsk2 handshake (whitepaper §5.4.2–§5.4.5) as a state machine over message
/// buffers. Every method works on scratch copies of the chaining key and hash and commits them only
/// when the message was fully authenticated, so a forged or corrupt message changes nothing.
/// Not thread-safe: the owning <see cref="Peer"/> calls it under its handshake lock.
/// </summary>
public sealed class Handshake
{
    private const int HashSize = Blake2s.HashSize;
    private readonly byte[] _chainingKey = new byte[HashSize];
    private readonly byte[] _hash = new byte[HashSize];
    private readonly byte[] _localEphemeral = new byte[X25519.KeySize];
    private readonly byte[] _remoteEphemeral = new byte[X25519.KeySize];
    private readonly byte[] _lastTimestamp = new byte[Tai64N.Size];

    public Handshake(NoiseProtocol? protocol = null) => Protocol = protocol ?? NoiseProtocol.WireGuard;

    /// <summary>The construction and identifier this handshake runs under.</summary>
    public NoiseProtocol Protocol { get; }

    public HandshakeState State { get; private set; }
    public uint LocalIndex { get; private set; }
    public uint RemoteIndex { get; private set; }

    /// <summary>The monotonic time of the last initiation accepted from this peer (flood protection).</summary>
    public TimeSpan LastInitiationConsumed { get; private set; } = TimeSpan.MinValue;

    /// <summary>Forgets the in-flight handshake (keeps the replay-protection timestamp).</summary>
    public void Clear()
    {
        CryptographicOperations.ZeroMemory(_chainingKey);
        CryptographicOperations.ZeroMemory(_hash);
        CryptographicOperations.ZeroMemory(_localEphemeral);
        CryptographicOperations.ZeroMemory(_remoteEphemeral);
        State = HandshakeState.None;
        LocalIndex = 0;
        RemoteIndex = 0;
    }

    /// <summary>
    /// Writes bytes 0..116 of a handshake initiation (the MACs are added afterwards by the cookie
    /// generator). Returns false if a Diffie-Hellman result is zero (a bad peer public key).
    /// </summary>
    public bool CreateInitiation(Span<byte> message, StaticIdentity local, PeerKeys peer, uint localIndex, long unixTimeNanoseconds, IRandomSource random)
    {
        Span<byte> ck = stackalloc byte[HashSize];
        Span<byte> h = stackalloc byte[HashSize];
        Span<byte> key = stackalloc byte[HashSize];
        Span<byte> dh = stackalloc byte[X25519.KeySize];
        Span<byte> ephemeral = stackalloc byte[X25519.KeySize];
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        try
        {
            Protocol.InitialChainingKey.CopyTo(ck);
            Blake2s.Hash(Protocol.InitialHash, peer.PublicKey, h);

            random.Fill(ephemeral);
            X25519.ClampPrivateKey(ephemeral);
            var ephemeralPublic = message.Slice(Messages.InitEphemeral, X25519.KeySize);
            X25519.PublicKey(ephemeral, ephemeralPublic);
            Blake2s.Kdf(ck, ephemeralPublic, ck, default, default);
            MixHash(h, ephemeralPublic);

            if (!X25519.SharedSecret(ephemeral, peer.PublicKey, dh))
            {
                return false;
            }

            Blake2s.Kdf(ck, dh, ck, key, default);
            var encryptedStatic = message.Slice(Messages.InitStatic, Messages.InitStaticSize);
            ChaChaPoly.Seal(key, 0, local.PublicKey, h, encryptedStatic);
            MixHash(h, encryptedStatic);

            if (!peer.HasStaticStatic)
            {
                return false;
            }

            Blake2s.Kdf(ck, peer.StaticStatic, ck, key, default);
            Tai64N.Write(timestamp, unixTimeNanoseconds);
            var encryptedTimestamp = message.Slice(Messages.InitTimestamp, Messages.InitTimestampSize);
            ChaChaPoly.Seal(key, 0, timestamp, h, encryptedTimestamp);
            MixHash(h, encryptedTimestamp);

            Messages.WriteHeader(message, Messages.TypeInitiation);
            Messages.WriteIndex(message, Messages.InitSender, localIndex);

            ck.CopyTo(_chainingKey);
            h.CopyTo(_hash);
            ephemeral.CopyTo(_localEphemeral);
            LocalIndex = localIndex;
            RemoteIndex = 0;
            State = HandshakeState.InitiationCreated;
            return true;
        }
        finally
        {
            Zero(ck, h, key, dh);
            CryptographicOperations.ZeroMemory(ephemeral);
        }
    }

    /// <summary>
    /// The first half of consuming an initiation, done before the peer is known: decrypts the
    /// initiator's static key. On success <paramref name="state"/> carries the partial chaining key
    /// and hash for <see cref="ConsumeInitiation"/>.
    /// </summary>
    public static bool DecryptInitiatorStatic(ReadOnlySpan<byte> message, StaticIdentity local, Span<byte> initiatorStatic, ref InitiationScratch state) =>
        DecryptInitiatorStatic(message, local, initiatorStatic, ref state, NoiseProtocol.WireGuard);

    /// <inheritdoc cref="DecryptInitiatorStatic(ReadOnlySpan{byte}, StaticIdentity, Span{byte}, ref InitiationScratch)"/>
    public static bool DecryptInitiatorStatic(ReadOnlySpan<byte> message, StaticIdentity local, Span<byte> initiatorStatic, ref InitiationScratch state, NoiseProtocol protocol)
    {
        Span<byte> key = stackalloc byte[HashSize];
        Span<byte> dh = stackalloc byte[X25519.KeySize];
        try
        {
            var ck = state.ChainingKey;
            var h = state.Hash;
            protocol.InitialChainingKey.CopyTo(ck);
            Blake2s.Hash(protocol.InitialHash, local.PublicKey, h);

            var ephemeral = message.Slice(Messages.InitEphemeral, X25519.KeySize);
            Blake2s.Kdf(ck, ephemeral, ck, default, default);
            MixHash(h, ephemeral);

            if (!X25519.SharedSecret(local.PrivateKey, ephemeral, dh))
            {
                return false;
            }

            Blake2s.Kdf(ck, dh, ck, key, default);
            var encryptedStatic = message.Slice(Messages.InitStatic, Messages.InitStaticSize);
            if (!ChaChaPoly.Open(key, 0, encryptedStatic, h, initiatorStatic))
            {
                return false;
            }

            MixHash(h, encryptedStatic);
            return true;
        }
        finally
        {
            Zero(key, dh, default, default);
        }
    }

    /// <summary>
    /// Finishes consuming an initiation from a known peer: decrypts and checks the timestamp (it
    /// must be newer than the last accepted one) and the initiation rate, then commits.
    /// </summary>
    public bool ConsumeInitiation(ReadOnlySpan<byte> message, ref InitiationScratch state, PeerKeys peer, TimeSpan now)
    {
        Span<byte> key = stackalloc byte[HashSize];
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        try
        {
            var ck = state.ChainingKey;
            var h = state.Hash;
            if (!peer.HasStaticStatic)
            {
                return false;
            }

            Blake2s.Kdf(ck, peer.StaticStatic, ck, key, default);
            var encryptedTimestamp = message.Slice(Messages.InitTimestamp, Messages.InitTimestampSize);
            if (!ChaChaPoly.Open(key, 0, encryptedTimestamp, h, timestamp))
            {
                return false;
            }

            MixHash(h, encryptedTimestamp);

            // §5.1: an initiation not newer than the last one is a replay.
            if (!Tai64N.IsAfter(timestamp, _lastTimestamp))
            {
                return false;
            }

            if (LastInitiationConsumed != TimeSpan.MinValue && now - LastInitiationConsumed < Mesh.WireGuard.Protocol.HandshakeInitiationRate)
            {
                return false;
            }

            timestamp.CopyTo(_lastTimestamp);
            LastInitiationConsumed = now;
            ck.CopyTo(_chainingKey);
            h.CopyTo(_hash);
            message.Slice(Messages.InitEphemeral, X25519.KeySize).CopyTo(_remoteEphemeral);
            RemoteIndex = Messages.ReadIndex(message, Messages.InitSender);
            LocalIndex = 0;
            State = HandshakeState.InitiationConsumed;
            return true;
        }
        finally
        {
            Zero(key, timestamp, default, default);
        }
    }

    /// <summary>Writes bytes 0..60 of a handshake response to the initiation just consumed.</summary>
    public bool CreateResponse(Span<byte> message, PeerKeys peer, uint localIndex, IRandomSource random)
    {
        if (State != HandshakeState.InitiationConsumed)
        {
            return false;
        }

        Span<byte> ck = stackalloc byte[HashSize];
        Span<byte> h = stackalloc byte[HashSize];
        Span<byte> key = stackalloc byte[HashSize];
        Span<byte> tau = stackalloc byte[HashSize];
        Span<byte> dh = stackalloc byte[X25519.KeySize];
        Span<byte> ephemeral = stackalloc byte[X25519.KeySize];
        try
        {
            _chainingKey.CopyTo(ck);
            _hash.CopyTo(h);

            random.Fill(ephemeral);
            X25519.ClampPrivateKey(ephemeral);
            var ephemeralPublic = message.Slice(Messages.RespEphemeral, X25519.KeySize);
            X25519.PublicKey(ephemeral, ephemeralPublic);
            Blake2s.Kdf(ck, ephemeralPublic, ck, default, default);
            MixHash(h, ephemeralPublic);

            if (!X25519.SharedSecret(ephemeral, _remoteEphemeral, dh))
            {
                return false;
            }

            Blake2s.Kdf(ck, dh, ck, default, default);
            if (!X25519.SharedSecret(ephemeral, peer.PublicKey, dh))
            {
                return false;
            }

            Blake2s.Kdf(ck, dh, ck, default, default);
            Blake2s.Kdf(ck, peer.PresharedKey, ck, tau, key);
            MixHash(h, tau);
            var empty = message.Slice(Messages.RespEmpty, Messages.TagSize);
            ChaChaPoly.Seal(key, 0, ReadOnlySpan<byte>.Empty, h, empty);
            MixHash(h, empty);

            Messages.WriteHeader(message, Messages.TypeResponse);
            Messages.WriteIndex(message, Messages.RespSender, localIndex);
            Messages.WriteIndex(message, Messages.RespReceiver, RemoteIndex);

            ck.CopyTo(_chainingKey);
            h.CopyTo(_hash);
            LocalIndex = localIndex;
            State = HandshakeState.ResponseCreated;
            return true;
        }
        finally
        {
            Zero(ck, h, key, tau);
            Zero(dh, ephemeral, default, default);
        }
    }

    /// <summary>Consumes a handshake response to our initiation (its receiver index was already matched).</summary>
    public bool ConsumeResponse(ReadOnlySpan<byte> message, StaticIdentity local, PeerKeys peer)
    {
        if (State != HandshakeState.InitiationCreated)
        {
            return false;
        }

        Span<byte> ck = stackalloc byte[HashSize];
        Span<byte> h = stackalloc byte[HashSize];
        Span<byte> key = stackalloc byte[HashSize];
        Span<byte> tau = stackalloc byte[HashSize];
        Span<byte> dh = stackalloc byte[X25519.KeySize];
        try
        {
            _chainingKey.CopyTo(ck);
            _hash.CopyTo(h);

            var ephemeral = message.Slice(Messages.RespEphemeral, X25519.KeySize);
            Blake2s.Kdf(ck, ephemeral, ck, default, default);
            MixHash(h, ephemeral);

            if (!X25519.SharedSecret(_localEphemeral, ephemeral, dh))
            {
                return false;
            }

            Blake2s.Kdf(ck, dh, ck, default, default);
            if (!X25519.SharedSecret(local.PrivateKey, ephemeral, dh))
            {
                return false;
            }

            Blake2s.Kdf(ck, dh, ck, default, default);
            Blake2s.Kdf(ck, peer.PresharedKey, ck, tau, key);
            MixHash(h, tau);
            var empty = message.Slice(Messages.RespEmpty, Messages.TagSize);
            if (!ChaChaPoly.Open(key, 0, empty, h, Span<byte>.Empty))
            {
                return false;
            }

            MixHash(h, empty);
            ck.CopyTo(_chainingKey);
            h.CopyTo(_hash);
            RemoteIndex = Messages.ReadIndex(message, Messages.RespSender);
            State = HandshakeState.ResponseConsumed;
            return true;
        }
        finally
        {
            Zero(ck, h, key, tau);
            CryptographicOperations.ZeroMemory(dh);
        }
    }

    /// <summary>
    /// §5.4.5: derives the transport keys once the handshake is complete (ResponseCreated for the
    /// responder, ResponseConsumed for the initiator) and wipes the handshake state.
    /// </summary>
    public bool DeriveTransportKeys(Span<byte> sendKey, Span<byte> receiveKey, out bool isInitiator)
    {
        Span<byte> first = stackalloc byte[HashSize];
        Span<byte> second = stackalloc byte[HashSize];
        isInitiator = State == HandshakeState.ResponseConsumed;
        if (State is not (HandshakeState.ResponseConsumed or HandshakeState.ResponseCreated))
        {
            return false;
        }

        Blake2s.Kdf(_chainingKey, ReadOnlySpan<byte>.Empty, first, second, default);
        if (isInitiator)
        {
            first.CopyTo(sendKey);
            second.CopyTo(receiveKey);
        }
        else
        {
            first.CopyTo(receiveKey);
            second.CopyTo(sendKey);
        }

        Zero(first, second, default, default);
        CryptographicOperations.ZeroMemory(_chainingKey);
        CryptographicOperations.ZeroMemory(_hash);
        CryptographicOperations.ZeroMemory(_localEphemeral);
        CryptographicOperations.ZeroMemory(_remoteEphemeral);
        State = HandshakeState.None;
        return true;
    }

    private static void MixHash(Span<byte> h, ReadOnlySpan<byte> data) => Blake2s.Hash(h, data, h);

    private static void Zero(Span<byte> a, Span<byte> b, Span<byte> c, Span<byte> d)
    {
        CryptographicOperations.ZeroMemory(a);
        CryptographicOperations.ZeroMemory(b);
        CryptographicOperations.ZeroMemory(c);
        CryptographicOperations.ZeroMemory(d);
    }
}

/// <summary>Chaining key and hash carried between the two halves of consuming an initiation.</summary>
public ref struct InitiationScratch
{
    public Span<byte> ChainingKey;
    public Span<byte> Hash;
}
