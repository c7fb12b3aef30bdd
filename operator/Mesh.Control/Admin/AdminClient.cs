using System.Net.Http.Json;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Mesh.Control.Admin;

/// <summary>
/// A typed client for the admin REST API (<see cref="AdminApi"/>): one method per endpoint, over
/// the coordinator's local admin socket (trusted, no key) or over HTTP with an API key. A
/// <c>{"error"}</c> reply becomes an <see cref="AdminException"/> with the server's status and
/// message; no reply at all becomes an <see cref="AdminUnreachableException"/>. This is what the
/// `mesh-operator` admin verbs and the Kubernetes operator use; it holds no rules of its own.
/// </summary>
public sealed class AdminClient : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;
    private string? _socketPath;

    /// <summary>Wraps <paramref name="http"/>, whose BaseAddress must end with "/" (requests go to "api/v1/…" under it).</summary>
    public AdminClient(HttpClient http, string target)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(target);
        _http = http;
        Target = target;
    }

    /// <summary>Where this client goes, for messages: the socket path or the server URL.</summary>
    public string Target { get; }

    /// <summary>A client for the admin socket at <paramref name="socketPath"/>.</summary>
    public static AdminClient ForSocket(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        var endPoint = new UnixDomainSocketEndPoint(Path.GetFullPath(socketPath));
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // The host name is never resolved: every connection goes to the socket.
        var http = new HttpClient(handler) { BaseAddress = new Uri("http://localhost/"), Timeout = RequestTimeout };
        return new AdminClient(http, socketPath) { _socketPath = endPoint.ToString() };
    }

    /// <summary>A client for the coordinator at <paramref name="server"/> (http or https, maybe under a path) with an API key.</summary>
    public static AdminClient ForServer(Uri server, string apiKey)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentException.ThrowIfNullOrEmpty(apiKey);
        if (!server.IsAbsoluteUri || (server.Scheme != Uri.UriSchemeHttp && server.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"server URL \"{server}\" must be an absolute http:// or https:// URL", nameof(server));
        }

        var baseAddress = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/");
        var http = new HttpClient { BaseAddress = baseAddress, Timeout = RequestTimeout };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return new AdminClient(http, server.ToString());
    }

    public void Dispose() => _http.Dispose();

    public Task<UserView> CreateUserAsync(string name, string? email, string? displayName, CancellationToken cancellationToken) =>
        SendAsync<UserView>(HttpMethod.Post, "users", Json(new CreateUserBody(name, email, displayName)), cancellationToken);

    public Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken) =>
        SendAsync<IReadOnlyList<UserView>>(HttpMethod.Get, "users", null, cancellationToken);

    public Task DeleteUserAsync(string name, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Delete, $"users/{Segment(name)}", null, cancellationToken);

    public Task<CreatedPreAuthKey> CreatePreAuthKeyAsync(PreAuthKeyRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = new CreatePreAuthKeyBody(
            request.User,
            request.Reusable,
            request.Ephemeral,
            request.Expiration is { } e ? AdminDuration.Format(e) : null,
            request.Tags);
        return SendAsync<CreatedPreAuthKey>(HttpMethod.Post, "preauthkeys", Json(body), cancellationToken);
    }

    public Task<IReadOnlyList<PreAuthKeyView>> ListPreAuthKeysAsync(string? user, CancellationToken cancellationToken) =>
        SendAsync<IReadOnlyList<PreAuthKeyView>>(HttpMethod.Get, "preauthkeys" + Query("user", user), null, cancellationToken);

    public Task ExpirePreAuthKeyAsync(string idOrPrefix, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"preauthkeys/{Segment(idOrPrefix)}/expire", null, cancellationToken);

    public Task<IReadOnlyList<NodeView>> ListNodesAsync(string? user, CancellationToken cancellationToken) =>
        SendAsync<IReadOnlyList<NodeView>>(HttpMethod.Get, "nodes" + Query("user", user), null, cancellationToken);

    public Task<NodeView> GetNodeAsync(long id, CancellationToken cancellationToken) =>
        SendAsync<NodeView>(HttpMethod.Get, $"nodes/{id}", null, cancellationToken);

    public Task<NodeView> SetNodeTagsAsync(long id, IReadOnlyList<string> tags, CancellationToken cancellationToken) =>
        SendAsync<NodeView>(HttpMethod.Post, $"nodes/{id}/tags", Json(new SetTagsBody(tags)), cancellationToken);

    public Task<NodeView> ExpireNodeAsync(long id, DateTimeOffset? at, CancellationToken cancellationToken) =>
        SendAsync<NodeView>(HttpMethod.Post, $"nodes/{id}/expire", at is null ? null : Json(new ExpireNodeBody(at)), cancellationToken);

    public Task<NodeView> RenameNodeAsync(long id, string name, CancellationToken cancellationToken) =>
        SendAsync<NodeView>(HttpMethod.Post, $"nodes/{id}/rename", Json(new RenameNodeBody(name)), cancellationToken);

    public Task DeleteNodeAsync(long id, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Delete, $"nodes/{id}", null, cancellationToken);

    public Task<IReadOnlyList<RouteView>> ListRoutesAsync(CancellationToken cancellationToken) =>
        SendAsync<IReadOnlyList<RouteView>>(HttpMethod.Get, "routes", null, cancellationToken);

    public Task<RouteView> SetRouteEnabledAsync(long id, bool enabled, CancellationToken cancellationToken) =>
        SendAsync<RouteView>(HttpMethod.Post, $"routes/{id}/{(enabled ? "enable" : "disable")}", null, cancellationToken);

    public Task<PolicyView> GetPolicyAsync(CancellationToken cancellationToken) =>
        SendAsync<PolicyView>(HttpMethod.Get, "policy", null, cancellationToken);

    public Task<PolicyView> SetPolicyAsync(string policy, CancellationToken cancellationToken) =>
        SendAsync<PolicyView>(HttpMethod.Put, "policy", Text(policy), cancellationToken);

    public Task<PolicyCheckResult> CheckPolicyAsync(string policy, CancellationToken cancellationToken) =>
        SendAsync<PolicyCheckResult>(HttpMethod.Post, "policy/check", Text(policy), cancellationToken);

    public Task<CreatedApiKey> CreateApiKeyAsync(TimeSpan? expiration, CancellationToken cancellationToken) =>
        SendAsync<CreatedApiKey>(
            HttpMethod.Post,
            "apikeys",
            Json(new CreateApiKeyBody(expiration is { } e ? AdminDuration.Format(e) : null)),
            cancellationToken);

    public Task<IReadOnlyList<ApiKeyView>> ListApiKeysAsync(CancellationToken cancellationToken) =>
        SendAsync<IReadOnlyList<ApiKeyView>>(HttpMethod.Get, "apikeys", null, cancellationToken);

    public Task ExpireApiKeyAsync(string prefix, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"apikeys/{Segment(prefix)}/expire", null, cancellationToken);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var response = await SendCoreAsync(method, path, content, cancellationToken);
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        try
        {
            return JsonSerializer.Deserialize<T>(bytes, AdminJson.Options)
                ?? throw new JsonException("null reply");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"unexpected reply from the coordinator at {Target} to {method} {path}: {e.Message}", e);
        }
    }

    private async Task SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var response = await SendCoreAsync(method, path, content, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendCoreAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, AdminApi.BasePath.TrimStart('/') + "/" + path) { Content = content };
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            // A missing socket file surfaces as "Cannot assign requested address"; say what it is.
            var reason = _socketPath is not null && !File.Exists(_socketPath) ? "no such socket" : Innermost(e);
            throw new AdminUnreachableException(Target, reason, e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AdminUnreachableException(Target, $"no reply within {RequestTimeout.TotalSeconds:0}s", e);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new AdminException(status, ErrorMessage(text) ?? $"{status} {response.ReasonPhrase}".TrimEnd());
        }
    }

    /// <summary>The <c>error</c> of an <see cref="AdminError"/> body, or null when the body is not one.</summary>
    private static string? ErrorMessage(string body)
    {
        try
        {
            return JsonSerializer.Deserialize<AdminError>(body, AdminJson.Options)?.Error;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>"Connection refused", "No such file or directory": the socket's words, not the HTTP stack's.</summary>
    private static string Innermost(HttpRequestException e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.Message;
            }
        }

        return e.Message;
    }

    private static JsonContent Json<T>(T body) => JsonContent.Create(body, options: AdminJson.Options);

    private static StringContent Text(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new StringContent(text, Encoding.UTF8, "text/plain");
    }

    private static string Segment(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        return Uri.EscapeDataString(value);
    }

    private static string Query(string name, string? value) =>
        string.IsNullOrEmpty(value) ? "" : $"?{name}={Uri.EscapeDataString(value)}";
}

/// <summary>No reply from the coordinator: not listening, wrong socket or URL, or timed out.</summary>
public sealed class AdminUnreachableException(string target, string reason, Exception? inner = null)
    : Exception($"cannot reach the coordinator at {target}: {reason}", inner)
{
    public string Target { get; } = target;

    public string Reason { get; } = reason;
}
