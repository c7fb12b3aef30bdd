using System.Net;
using Mesh.Net.Uapi;

namespace Mesh.Net.Tests.Uapi;

/// <summary>
/// An in-memory device that applies set requests with wireguard-go's semantics (enough of them for
/// wg(8) round trips) and records every request it was given.
/// </summary>
internal sealed class FakeUapiDevice : IUapiDevice
{
    private readonly Lock _lock = new();
    private readonly List<Peer> _peers = [];
    private readonly List<UapiSetRequest> _requests = [];
    private byte[]? _privateKey;
    private int _listenPort;
    private uint _fwMark;

    /// <summary>When set, Apply throws it instead of applying.</summary>
    public Exception? FailApplyWith { get; set; }

    public IReadOnlyList<UapiSetRequest> Requests
    {
        get
        {
            lock (_lock)
            {
                return _requests.ToArray();
            }
        }
    }

    public UapiSetRequest LastRequest => Requests[^1];

    public void AddPeer(byte[] publicKey, Action<Peer>? configure = null)
    {
        lock (_lock)
        {
            var peer = new Peer(publicKey);
            configure?.Invoke(peer);
            _peers.Add(peer);
        }
    }

    public void SetIdentity(byte[]? privateKey, int listenPort, uint fwMark = 0)
    {
        lock (_lock)
        {
            _privateKey = privateKey;
            _listenPort = listenPort;
            _fwMark = fwMark;
        }
    }

    public UapiDeviceState GetState()
    {
        lock (_lock)
        {
            return new UapiDeviceState
            {
                PrivateKey = _privateKey,
                ListenPort = _listenPort,
                FwMark = _fwMark,
                Peers = _peers.Select(p => new UapiPeerState
                {
                    PublicKey = p.PublicKey,
                    PresharedKey = p.PresharedKey,
                    Endpoint = p.Endpoint,
                    PersistentKeepaliveInterval = p.Keepalive,
                    LastHandshakeTimeSec = p.HandshakeSec,
                    LastHandshakeTimeNsec = p.HandshakeNsec,
                    RxBytes = p.Rx,
                    TxBytes = p.Tx,
                    AllowedIps = p.AllowedIps.ToArray(),
                }).ToArray(),
            };
        }
    }

    public void Apply(UapiSetRequest request)
    {
        lock (_lock)
        {
            _requests.Add(request);
            if (FailApplyWith is { } failure)
            {
                throw failure;
            }

            if (request.PrivateKey is { } key)
            {
                _privateKey = UapiProtocol.IsZeroKey(key) ? null : key;
            }

            _listenPort = request.ListenPort ?? _listenPort;
            _fwMark = request.FwMark ?? _fwMark;
            if (request.ReplacePeers)
            {
                _peers.Clear();
            }

            foreach (var update in request.Peers)
            {
                var peer = _peers.Find(p => p.PublicKey.AsSpan().SequenceEqual(update.PublicKey));
                if (update.Remove)
                {
                    if (peer is not null)
                    {
                        _peers.Remove(peer);
                    }

                    continue;
                }

                if (peer is null)
                {
                    if (update.UpdateOnly)
                    {
                        continue;
                    }

                    peer = new Peer(update.PublicKey);
                    _peers.Add(peer);
                }

                if (update.PresharedKey is { } psk)
                {
                    peer.PresharedKey = UapiProtocol.IsZeroKey(psk) ? null : psk;
                }

                peer.Endpoint = update.Endpoint ?? peer.Endpoint;
                peer.Keepalive = update.PersistentKeepaliveInterval ?? peer.Keepalive;
                if (update.ReplaceAllowedIps)
                {
                    peer.AllowedIps.Clear();
                }

                foreach (var network in update.AllowedIps)
                {
                    foreach (var other in _peers)
                    {
                        other.AllowedIps.Remove(network);
                    }

                    peer.AllowedIps.Add(network);
                }

                foreach (var network in update.RemovedAllowedIps)
                {
                    peer.AllowedIps.Remove(network);
                }
            }
        }
    }

    internal sealed class Peer(byte[] publicKey)
    {
        public byte[] PublicKey { get; } = publicKey;

        public byte[]? PresharedKey { get; set; }

        public IPEndPoint? Endpoint { get; set; }

        public int Keepalive { get; set; }

        public long HandshakeSec { get; set; }

        public long HandshakeNsec { get; set; }

        public ulong Rx { get; set; }

        public ulong Tx { get; set; }

        public List<IPNetwork> AllowedIps { get; } = [];
    }
}
