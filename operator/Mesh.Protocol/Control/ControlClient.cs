using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Mesh.Protocol.Control;

/// <summary>
/// A node's client for the coordinator's node API over the control channel: fetches and pins the
/// coordinator key, handshakes, and sends sealed register and map requests; a map stream is read as
/// an async sequence. When the coordinator has forgotten the session (restart, idle timeout) the
/// next call handshakes again once, transparently.
/// </summary>
public sealed class ControlClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly byte[] _machinePrivateKey;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _connect = new(1, 1);
    private ControlSession? _session;

    public ControlClient(Uri serverUrl, ReadOnlySpan<byte> machinePrivateKey, MachineKey? pinnedServerKey = null, HttpMessageHandler? handler = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(serverUrl);
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.BaseAddress = serverUrl;
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _machinePrivateKey = machinePrivateKey.ToArray();
        ServerKey = pinnedServerKey;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The pinned coordinator key (fetched from <see cref="ControlPaths.Key"/> on first use when not given).</summary>
    public MachineKey? ServerKey { get; private set; }

    public async Task<MachineKey> FetchServerKeyAsync(CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(ControlPaths.Key, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var key = JsonSerializer.Deserialize(body, ControlJsonContext.Default.ServerKeyResponse)
            ?? throw new ControlProtocolException("the coordinator's /key reply is empty");
        return key.PublicKey;
    }

    public async Task<RegisterResponse> RegisterAsync(RegisterRequest request, CancellationToken cancellationToken)
    {
        var body = await SendAsync(ControlPaths.Register, JsonSerializer.SerializeToUtf8Bytes(request, ControlJsonContext.Default.RegisterRequest), cancellationToken).ConfigureAwait(false);
        return Deserialize(body, ControlJsonContext.Default.RegisterResponse);
    }

    /// <summary>One map (request.Stream must be false).</summary>
    public async Task<MapResponse> MapAsync(MapRequest request, CancellationToken cancellationToken)
    {
        var body = await SendAsync(ControlPaths.Map, JsonSerializer.SerializeToUtf8Bytes(request with { Stream = false }, ControlJsonContext.Default.MapRequest), cancellationToken).ConfigureAwait(false);
        return Deserialize(body, ControlJsonContext.Default.MapResponse);
    }

    /// <summary>Opens a map stream: the first item is the full map, then deltas and keep-alives until cancelled or disconnected.</summary>
    public async IAsyncEnumerable<MapResponse> MapStreamAsync(MapRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(request with { Stream = true }, ControlJsonContext.Default.MapRequest);
        var (response, session) = await PostAsync(ControlPaths.Map, payload, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        using (response)
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            while (true)
            {
                var frame = await ControlFraming.ReadFrameAsync(stream, cancellationToken).ConfigureAwait(false);
                if (frame is null)
                {
                    yield break;
                }

                var plaintext = session.Open(frame, ControlPaths.Map)
                    ?? throw new ControlProtocolException("a map frame does not authenticate");
                yield return Deserialize(plaintext, ControlJsonContext.Default.MapResponse);
            }
        }
    }

    private async Task<byte[]> SendAsync(string path, byte[] payload, CancellationToken cancellationToken)
    {
        var (response, session) = await PostAsync(path, payload, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        using (response)
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            return session.Open(body, path) ?? throw new ControlProtocolException($"the coordinator's reply to {path} does not authenticate");
        }
    }

    /// <summary>Posts a sealed request; re-handshakes once if the coordinator no longer knows the session.</summary>
    private async Task<(HttpResponseMessage Response, ControlSession Session)> PostAsync(string path, byte[] payload, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var session = await GetSessionAsync(attempt > 0, cancellationToken).ConfigureAwait(false);
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(session.Seal(payload, path)) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(ControlFraming.SealedContentType);
            var response = await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return (response, session);
            }

            using (response)
            {
                var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                var message = ReadError(response, body, session, path);

                // A plain (unsealed) 401 means the coordinator does not know this session (it
                // restarted, or forgot an idle one): handshake again once. A sealed 401 is an answer
                // on a working session (such as a refused auth key) and is final.
                var sessionLost = response.StatusCode == HttpStatusCode.Unauthorized
                    && response.Content.Headers.ContentType?.MediaType != ControlFraming.SealedContentType;
                if (sessionLost && attempt == 0)
                {
                    continue;
                }

                throw new ControlRequestException((int)response.StatusCode, message);
            }
        }
    }

    private static string ReadError(HttpResponseMessage response, byte[] body, ControlSession session, string path)
    {
        try
        {
            var isSealed = response.Content.Headers.ContentType?.MediaType == ControlFraming.SealedContentType;
            var json = isSealed ? session.Open(body, path) : body;
            if (json is not null && JsonSerializer.Deserialize(json, ControlJsonContext.Default.ControlError) is { } error)
            {
                return error.Error;
            }
        }
        catch (JsonException)
        {
        }

        return $"{(int)response.StatusCode} {response.ReasonPhrase}";
    }

    private async Task<ControlSession> GetSessionAsync(bool renew, CancellationToken cancellationToken)
    {
        await _connect.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_session is not null && !renew)
            {
                return _session;
            }

            ServerKey ??= await FetchServerKeyAsync(cancellationToken).ConfigureAwait(false);
            for (var attempt = 0; ; attempt++)
            {
                var handshake = new ControlClientHandshake(_machinePrivateKey, ServerKey.Value, _time);
                using var content = new ByteArrayContent(handshake.CreateInitiation());
                content.Headers.ContentType = new MediaTypeHeaderValue(ControlFraming.SealedContentType);
                using var response = await _http.PostAsync(ControlPaths.Handshake, content, cancellationToken).ConfigureAwait(false);
                var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < 5)
                {
                    // Too soon after this machine's previous handshake: the next timestamp will be newer.
                    await Task.Delay(TimeSpan.FromMilliseconds(25 * (attempt + 1)), _time, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    var error = JsonSerializer.Deserialize(body, ControlJsonContext.Default.ControlError);
                    throw new ControlRequestException((int)response.StatusCode, error?.Error ?? $"handshake refused: {(int)response.StatusCode}");
                }

                _session?.Dispose();
                _session = handshake.Complete(body);
                return _session;
            }
        }
        finally
        {
            _connect.Release();
        }
    }

    private static T Deserialize<T>(byte[] json, JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(json, type) ?? throw new ControlProtocolException($"empty {typeof(T).Name}");

    public void Dispose()
    {
        _session?.Dispose();
        _http.Dispose();
        _connect.Dispose();
    }
}

/// <summary>The coordinator refused a request: <see cref="Status"/> is the HTTP status.</summary>
public sealed class ControlRequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
