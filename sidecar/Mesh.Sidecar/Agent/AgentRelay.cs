using System.Threading.Channels;
using Mesh.Net.Device;
using Mesh.Protocol;
using Mesh.Protocol.Relay;
using Mesh.WireGuard;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// The agent's connection to the mesh's relay, as the device's <see cref="IRelayTransport"/>: the
/// device hands it WireGuard datagrams for peers on the relay path (queued, never blocking the data
/// path; the oldest is dropped when the queue is full), and packets the relay delivers go back into
/// the device through <see cref="WireGuardDevice.InjectRelayed"/>. It reconnects on its own.
/// </summary>
internal sealed class AgentRelay : IRelayTransport, IAsyncDisposable
{
    private const int OutboxCapacity = 1024;
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly Uri _url;
    private readonly byte[] _nodePrivateKey;
    private readonly NoisePublicKey? _relayKey;
    private readonly WireGuardDevice _device;
    private readonly ILogger _logger;
    private readonly Channel<(NoisePublicKey Peer, byte[] Datagram)> _outbox =
        Channel.CreateBounded<(NoisePublicKey, byte[])>(new BoundedChannelOptions(OutboxCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private volatile bool _connected;
    private volatile RelayClient? _client;

    public AgentRelay(Uri url, string regionCode, byte[] nodePrivateKey, NoisePublicKey? relayKey, WireGuardDevice device, ILogger logger)
    {
        _url = url;
        RegionCode = regionCode;
        _nodePrivateKey = nodePrivateKey;
        _relayKey = relayKey;
        _device = device;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public Uri Url => _url;
    public string RegionCode { get; }
    public bool Connected => _connected;

    public bool Send(NoisePublicKey peer, ReadOnlySpan<byte> datagram) =>
        _connected && _outbox.Writer.TryWrite((peer, datagram.ToArray()));

    private async Task RunAsync()
    {
        var backoff = TimeSpan.FromMilliseconds(500);
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await using var client = await RelayClient.ConnectAsync(_url, _nodePrivateKey, new RelayClientOptions { ExpectedRelayKey = _relayKey }, token).ConfigureAwait(false);
                _client = client;
                _connected = true;
                backoff = TimeSpan.FromMilliseconds(500);
                _logger.LogInformation("Connected to relay {Url}", _url);
                using var session = CancellationTokenSource.CreateLinkedTokenSource(token);
                var sender = SendLoopAsync(client, session.Token);
                try
                {
                    while (!session.IsCancellationRequested)
                    {
                        var message = await client.ReceiveAsync(session.Token).ConfigureAwait(false);
                        if (message.Kind == RelayMessageKind.Packet)
                        {
                            _device.InjectRelayed(message.Peer.Value, message.Packet.Span);
                        }
                    }
                }
                finally
                {
                    await session.CancelAsync().ConfigureAwait(false);
                    try
                    {
                        await sender.ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is RelayException or IOException or System.Net.WebSockets.WebSocketException or HttpRequestException or OperationCanceledException or TimeoutException)
            {
                _logger.LogWarning("Relay {Url}: {Reason}; reconnecting in {Delay} s", _url, e.Message, backoff.TotalSeconds);
            }
            finally
            {
                _connected = false;
                _client = null;
            }

            try
            {
                await Task.Delay(backoff, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>The round trip to the relay (a ping frame and its pong); null when not connected or no answer in time.</summary>
    public async Task<TimeSpan?> PingAsync(TimeSpan timeout)
    {
        if (_client is not { } client)
        {
            return null;
        }

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            return await client.PingAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or RelayException or IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    private async Task SendLoopAsync(RelayClient client, CancellationToken cancellationToken)
    {
        await foreach (var (peer, datagram) in _outbox.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await client.SendAsync(new NodeKey(peer), datagram, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
