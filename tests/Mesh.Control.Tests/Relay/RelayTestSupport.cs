using System.Diagnostics;
using System.Net.WebSockets;
using Mesh.Control.Relay;
using Mesh.Protocol;
using Mesh.Protocol.Relay;
using Mesh.WireGuard;
using Mesh.WireGuard.Crypto;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.Tests.Relay;

internal sealed record RelayTestNode(byte[] PrivateKey, NodeKey Key)
{
    public static RelayTestNode Create()
    {
        var privateKey = new byte[32];
        X25519.GeneratePrivateKey(privateKey);
        var publicKey = new byte[32];
        X25519.PublicKey(privateKey, publicKey);
        return new RelayTestNode(privateKey, new NodeKey(new NoisePublicKey(publicKey)));
    }
}

/// <summary>A real Kestrel on 127.0.0.1 with an ephemeral port, serving only the relay.</summary>
internal sealed class RelayHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RelayHost(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
        Server = app.Services.GetRequiredService<RelayServer>();
    }

    public Uri Url { get; }

    public Uri WebSocketUrl => new UriBuilder(Url) { Scheme = "ws" }.Uri;

    public RelayServer Server { get; }

    public static async Task<RelayHost> StartAsync(Func<NodeKey, bool>? authorize = null, Action<RelayServerOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(RelayAuthorizer.From(authorize ?? (_ => true)));
        builder.Services.AddMeshRelay(configure);
        var app = builder.Build();
        app.Urls.Add("http://127.0.0.1:0");
        app.MapRelay();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new RelayHost(app, new Uri(new Uri(address), RelayEndpointExtensions.DefaultPath));
    }

    public Task<RelayClient> ConnectAsync(RelayTestNode node, RelayClientOptions? options = null) =>
        RelayClient.ConnectAsync(Url, node.PrivateKey, options, TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// A hand-driven relay connection: sends exactly the frames a test gives it, and reads only when
/// asked (so it can play a client that never reads, or one that lies about its key).
/// </summary>
internal sealed class RawRelayConnection : IAsyncDisposable
{
    private readonly byte[] _buffer = new byte[RelayFrames.MaxFrameSize];

    private RawRelayConnection(ClientWebSocket socket) => Socket = socket;

    public ClientWebSocket Socket { get; }

    public static async Task<RawRelayConnection> OpenAsync(RelayHost host, int receiveBufferSize = 16 * 1024)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetBuffer(receiveBufferSize, 16 * 1024);
        await socket.ConnectAsync(host.WebSocketUrl, TestContext.Current.CancellationToken);
        return new RawRelayConnection(socket);
    }

    /// <summary>Opens, reads ServerKey, and answers with a proof made by <paramref name="prover"/> for the key <paramref name="claimed"/>.</summary>
    public static async Task<RawRelayConnection> HandshakeAsync(RelayHost host, RelayTestNode claimed, RelayTestNode? prover = null)
    {
        var raw = await OpenAsync(host);
        var (type, payload) = await raw.ReceiveAsync();
        Assert.Equal(RelayFrameType.ServerKey, type);
        var challenge = new byte[32];
        Assert.True(RelayFrames.TryParseServerKey(payload, out var relayKey, challenge));
        var proof = new byte[32];
        Assert.True(RelayProof.TryCompute((prover ?? claimed).PrivateKey, claimed.Key.Value, relayKey, challenge, proof));
        var info = new byte[RelayFrames.HeaderSize + RelayFrames.ClientInfoPayloadSize];
        RelayFrames.WriteClientInfo(info, claimed.Key, proof);
        await raw.SendAsync(info);
        return raw;
    }

    public Task SendAsync(byte[] frame) =>
        Socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, TestContext.Current.CancellationToken);

    /// <summary>The next frame, or (0, empty) when the relay closed the connection.</summary>
    public async Task<(RelayFrameType Type, byte[] Payload)> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(10));
        var length = await RelayWebSocket.ReceiveMessageAsync(Socket, _buffer, cts.Token);
        if (length < 0)
        {
            return (0, []);
        }

        Assert.True(RelayFrames.TryReadFrame(_buffer.AsSpan(0, length), out var type, out var payload));
        return (type, payload.ToArray());
    }

    public async Task<(RelayErrorCode Code, string Message)> ExpectErrorAsync()
    {
        var (type, payload) = await ReceiveAsync();
        Assert.Equal(RelayFrameType.Error, type);
        Assert.True(RelayFrames.TryParseError(payload, out var code, out var message));
        return (code, message);
    }

    public async ValueTask DisposeAsync()
    {
        Socket.Abort();
        Socket.Dispose();
        await Task.CompletedTask;
    }
}

internal static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes; the delay is a polling interval only.</summary>
    public static async Task<bool> HoldsAsync(Func<bool> condition, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > (timeout ?? TimeSpan.FromSeconds(10)))
            {
                return false;
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        return true;
    }
}
