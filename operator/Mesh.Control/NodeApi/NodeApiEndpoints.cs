using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Mesh.Protocol.Control;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.NodeApi;

/// <summary>
/// The node-facing HTTP API (<see cref="ControlPaths"/>): the coordinator key, the control-channel
/// handshake, and sealed register and map requests. Everything after the handshake is sealed on the
/// machine's session; a request that does not open on a known session gets 401 (the node then
/// handshakes again), a malformed one 400 — and nothing is written.
/// </summary>
public static partial class NodeApiEndpoints
{
    /// <summary>Largest sealed request accepted (a map request with many endpoints and routes fits easily).</summary>
    public const int MaxRequestBytes = 256 * 1024;

    /// <summary>A map stream sends a keep-alive this often when nothing else changes.</summary>
    public static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(30);

    public static void MapNodeApi(this IEndpointRouteBuilder app)
    {
        app.MapGet(ControlPaths.Key, (ControlServer server) =>
            Results.Bytes(JsonSerializer.SerializeToUtf8Bytes(new ServerKeyResponse(server.PublicKey), ControlJsonContext.Default.ServerKeyResponse), "application/json"));

        app.MapPost(ControlPaths.Handshake, HandshakeAsync);
        app.MapPost(ControlPaths.Register, RegisterAsync);
        app.MapPost(ControlPaths.Map, MapAsync);
    }

    private static async Task HandshakeAsync(HttpContext context, ControlServer server)
    {
        var body = await ReadBodyAsync(context, 1024);
        if (body is null)
        {
            return;
        }

        if (!server.TryAccept(body, out var response, out _, out var error, out var retryLater))
        {
            await PlainErrorAsync(context, retryLater ? StatusCodes.Status429TooManyRequests : StatusCodes.Status400BadRequest, $"handshake refused: {error}");
            return;
        }

        context.Response.ContentType = ControlFraming.SealedContentType;
        await context.Response.Body.WriteAsync(response, context.RequestAborted);
    }

    private static async Task RegisterAsync(HttpContext context, ControlServer server, INodeService service)
    {
        var (session, payload) = await OpenAsync(context, server, ControlPaths.Register);
        if (session is null)
        {
            return;
        }

        var request = Parse(payload!, ControlJsonContext.Default.RegisterRequest, out var parseError);
        if (request is null)
        {
            await SealedErrorAsync(context, session, ControlPaths.Register, StatusCodes.Status400BadRequest, parseError!);
            return;
        }

        try
        {
            var response = await service.RegisterAsync(session.Peer, request, context.RequestAborted);
            await SealedAsync(context, session, ControlPaths.Register, JsonSerializer.SerializeToUtf8Bytes(response, ControlJsonContext.Default.RegisterResponse));
        }
        catch (NodeApiException e)
        {
            await SealedErrorAsync(context, session, ControlPaths.Register, e.Status, e.Message);
        }
    }

    private static async Task MapAsync(HttpContext context, ControlServer server, INodeService service)
    {
        var (session, payload) = await OpenAsync(context, server, ControlPaths.Map);
        if (session is null)
        {
            return;
        }

        var request = Parse(payload!, ControlJsonContext.Default.MapRequest, out var parseError);
        if (request is null)
        {
            await SealedErrorAsync(context, session, ControlPaths.Map, StatusCodes.Status400BadRequest, parseError!);
            return;
        }

        try
        {
            if (!request.Stream)
            {
                var map = await service.MapAsync(session.Peer, request, context.RequestAborted);
                using var plaintext = MapResponsePlaintext.Create(map);
                context.Response.ContentType = ControlFraming.SealedContentType;
                context.Response.ContentLength = ControlSession.HeaderSize + plaintext.Length + ChaChaPolySealer.TagSize;
                await ControlFraming.WriteSealedAsync(context.Response.Body, session, ControlPaths.Map, plaintext, framed: false, context.RequestAborted);
                return;
            }

            await using var stream = await service.OpenMapStreamAsync(session.Peer, request, context.RequestAborted);
            context.Response.ContentType = ControlFraming.SealedContentType;
            context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
            await context.Response.StartAsync(context.RequestAborted);
            await PumpAsync(context, session, stream);
        }
        catch (NodeApiException e) when (!context.Response.HasStarted)
        {
            await SealedErrorAsync(context, session, ControlPaths.Map, e.Status, e.Message);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The node went away.
        }
    }

    private static async Task PumpAsync(HttpContext context, ControlSession session, IMapStream stream)
    {
        var aborted = context.RequestAborted;
        var reader = stream.Updates;
        while (!aborted.IsCancellationRequested)
        {
            using var keepAlive = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            keepAlive.CancelAfter(KeepAliveInterval);
            MapResponse update;
            try
            {
                if (!await reader.WaitToReadAsync(keepAlive.Token))
                {
                    return; // the state closed the stream (node deleted, key expired, shutdown)
                }

                if (!reader.TryRead(out update!))
                {
                    continue;
                }
            }
            catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
            {
                update = new MapResponse { KeepAlive = true };
            }

            // Sealed and written a chunk at a time, peer entries shared between streams: a full map of
            // 10,000 peers costs this stream a 32 KB buffer, not three copies of 6 MB.
            using var plaintext = MapResponsePlaintext.Create(update);
            await ControlFraming.WriteSealedAsync(context.Response.Body, session, ControlPaths.Map, plaintext, framed: true, aborted);
        }
    }

    private static async Task<(ControlSession? Session, byte[]? Payload)> OpenAsync(HttpContext context, ControlServer server, string path)
    {
        var body = await ReadBodyAsync(context, MaxRequestBytes);
        if (body is null)
        {
            return (null, null);
        }

        if (!server.TryGetSession(body, out var session))
        {
            await PlainErrorAsync(context, StatusCodes.Status401Unauthorized, "unknown control session: handshake again");
            return (null, null);
        }

        var payload = session.Open(body, path);
        if (payload is null)
        {
            await PlainErrorAsync(context, StatusCodes.Status401Unauthorized, "the request does not authenticate on its session (forged, replayed, or sealed for another path)");
            return (null, null);
        }

        return (session, payload);
    }

    private static T? Parse<T>(byte[] json, JsonTypeInfo<T> type, out string? error)
        where T : class
    {
        try
        {
            var value = JsonSerializer.Deserialize(json, type);
            error = value is null ? $"empty {typeof(T).Name}" : null;
            return value;
        }
        catch (JsonException e)
        {
            error = $"malformed {typeof(T).Name}: {e.Message}";
            return null;
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpContext context, int limit)
    {
        if (context.Request.ContentLength > limit)
        {
            await PlainErrorAsync(context, StatusCodes.Status413PayloadTooLarge, $"request body over {limit} bytes");
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + n > limit)
            {
                await PlainErrorAsync(context, StatusCodes.Status413PayloadTooLarge, $"request body over {limit} bytes");
                return null;
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    private static Task SealedAsync(HttpContext context, ControlSession session, string path, byte[] json)
    {
        context.Response.ContentType = ControlFraming.SealedContentType;
        return context.Response.Body.WriteAsync(session.Seal(json, path), context.RequestAborted).AsTask();
    }

    private static Task SealedErrorAsync(HttpContext context, ControlSession session, string path, int status, string message)
    {
        context.Response.StatusCode = status;
        return SealedAsync(context, session, path, JsonSerializer.SerializeToUtf8Bytes(new ControlError(message), ControlJsonContext.Default.ControlError));
    }

    private static Task PlainErrorAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = ControlFraming.ErrorContentType;
        return context.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(new ControlError(message), ControlJsonContext.Default.ControlError), context.RequestAborted).AsTask();
    }
}
