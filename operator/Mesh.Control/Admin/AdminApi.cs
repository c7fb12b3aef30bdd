using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Control.Admin;

/// <summary>
/// The admin REST API under <c>/api/v1</c>: a thin translation from HTTP to <see cref="IMeshAdmin"/>
/// (resolved from DI), which holds every rule. It is not a second source of validation beyond the
/// wire: it parses ids, durations and JSON bodies, and turns <see cref="AdminException"/> into its
/// status with <c>{"error": "…"}</c>.
///
/// Authentication: a request over the admin unix socket (<see cref="AdminSocket"/>) is trusted;
/// any other needs <c>Authorization: Bearer &lt;API key&gt;</c> that
/// <see cref="IMeshAdmin.ValidateApiKeyAsync"/> accepts, else 401. Bodies are capped at
/// <see cref="MaxBodyBytes"/> (413 beyond). Bad input is always a 4xx naming the problem, never a 500.
///
/// Endpoints (JSON unless noted):
/// <code>
/// GET    /api/v1/users                         → [UserView]
/// POST   /api/v1/users          CreateUserBody → 201 UserView
/// DELETE /api/v1/users/{name}                  → 204
/// GET    /api/v1/preauthkeys?user=U            → [PreAuthKeyView]
/// POST   /api/v1/preauthkeys    CreatePreAuthKeyBody → 201 view + "key"
/// POST   /api/v1/preauthkeys/{idOrPrefix}/expire → 204
/// GET    /api/v1/nodes?user=U                  → [NodeView]
/// GET    /api/v1/nodes/{id}                    → NodeView
/// POST   /api/v1/nodes/{id}/tags  SetTagsBody  → NodeView
/// POST   /api/v1/nodes/{id}/expire [ExpireNodeBody] → NodeView
/// POST   /api/v1/nodes/{id}/rename RenameNodeBody → NodeView
/// DELETE /api/v1/nodes/{id}                    → 204
/// GET    /api/v1/routes                        → [RouteView]
/// POST   /api/v1/routes/{id}/enable|disable    → RouteView
/// GET    /api/v1/policy                        → PolicyView
/// PUT    /api/v1/policy         policy text    → PolicyView
/// POST   /api/v1/policy/check   policy text    → PolicyCheckResult
/// GET    /api/v1/apikeys                       → [ApiKeyView]
/// POST   /api/v1/apikeys        [CreateApiKeyBody] → 201 view + "key"
/// POST   /api/v1/apikeys/{prefix}/expire       → 204
/// </code>
/// </summary>
public static class AdminApi
{
    public const string BasePath = "/api/v1";

    /// <summary>Largest request body accepted (a policy file is the biggest thing sent): 1 MiB.</summary>
    public const int MaxBodyBytes = 1 << 20;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void MapAdminApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(BasePath);
        api.AddEndpointFilter(GuardAsync);

        api.MapGet("/users", async ([FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.ListUsersAsync(ct)));
        api.MapPost("/users", async (HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            var body = await ReadJsonAsync<CreateUserBody>(http.Request, required: true, ct);
            return Created(await admin.CreateUserAsync(body!.Name, body.Email, body.DisplayName, ct));
        });
        api.MapDelete("/users/{name}", async (string name, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            await admin.DeleteUserAsync(name, ct);
            return Results.NoContent();
        });

        api.MapGet("/preauthkeys", async ([FromQuery] string? user, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.ListPreAuthKeysAsync(Blank(user), ct)));
        api.MapPost("/preauthkeys", async (HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            var body = (await ReadJsonAsync<CreatePreAuthKeyBody>(http.Request, required: true, ct))!;
            var request = new PreAuthKeyRequest(body.User, body.Reusable, body.Ephemeral, Duration(body.Expiration), NoNulls(body.Tags ?? [], "tags"));
            var created = await admin.CreatePreAuthKeyAsync(request, ct);
            AdminLog.PreAuthKeyCreated(Logger(http), created.View.Id, created.View.Prefix, created.View.User);
            return Created(created);
        });
        api.MapPost("/preauthkeys/{idOrPrefix}/expire", async (string idOrPrefix, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            await admin.ExpirePreAuthKeyAsync(idOrPrefix, ct);
            return Results.NoContent();
        });

        api.MapGet("/nodes", async ([FromQuery] string? user, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.ListNodesAsync(Blank(user), ct)));
        api.MapGet("/nodes/{id}", async (string id, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.GetNodeAsync(Id(id, "node"), ct)));
        api.MapPost("/nodes/{id}/tags", async (string id, HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            var nodeId = Id(id, "node");
            var body = (await ReadJsonAsync<SetTagsBody>(http.Request, required: true, ct))!;
            return Ok(await admin.SetNodeTagsAsync(nodeId, NoNulls(body.Tags, "tags"), ct));
        });
        api.MapPost("/nodes/{id}/expire", async (string id, HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            var nodeId = Id(id, "node");
            var body = await ReadJsonAsync<ExpireNodeBody>(http.Request, required: false, ct);
            return Ok(await admin.ExpireNodeAsync(nodeId, body?.At, ct));
        });
        api.MapPost("/nodes/{id}/rename", async (string id, HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            var nodeId = Id(id, "node");
            var body = (await ReadJsonAsync<RenameNodeBody>(http.Request, required: true, ct))!;
            return Ok(await admin.RenameNodeAsync(nodeId, body.Name, ct));
        });
        api.MapDelete("/nodes/{id}", async (string id, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            await admin.DeleteNodeAsync(Id(id, "node"), ct);
            return Results.NoContent();
        });

        api.MapGet("/routes", async ([FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.ListRoutesAsync(ct)));
        api.MapPost("/routes/{id}/enable", async (string id, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.SetRouteEnabledAsync(Id(id, "route"), true, ct)));
        api.MapPost("/routes/{id}/disable", async (string id, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.SetRouteEnabledAsync(Id(id, "route"), false, ct)));

        api.MapGet("/policy", async ([FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.GetPolicyAsync(ct)));
        api.MapPut("/policy", async (HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.SetPolicyAsync(await ReadTextAsync(http.Request, ct), ct)));
        api.MapPost("/policy/check", async (HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.CheckPolicyAsync(await ReadTextAsync(http.Request, ct), ct)));

        api.MapGet("/apikeys", async ([FromServices] IMeshAdmin admin, CancellationToken ct) =>
            Ok(await admin.ListApiKeysAsync(ct)));
        api.MapPost("/apikeys", async (HttpContext http, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            var body = await ReadJsonAsync<CreateApiKeyBody>(http.Request, required: false, ct);
            var created = await admin.CreateApiKeyAsync(Duration(body?.Expiration), ct);
            AdminLog.ApiKeyCreated(Logger(http), created.View.Id, created.View.Prefix);
            return Created(created);
        });
        api.MapPost("/apikeys/{prefix}/expire", async (string prefix, [FromServices] IMeshAdmin admin, CancellationToken ct) =>
        {
            await admin.ExpireApiKeyAsync(prefix, ct);
            return Results.NoContent();
        });
    }

    /// <summary>Authentication, the body cap, and every exception turned into <c>{"error"}</c>.</summary>
    private static async ValueTask<object?> GuardAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var logger = Logger(http);
        var sizeFeature = http.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeFeature is { IsReadOnly: false })
        {
            sizeFeature.MaxRequestBodySize = MaxBodyBytes;
        }

        if (!http.IsLocalAdminConnection())
        {
            var refusal = await AuthenticateAsync(http);
            if (refusal is not null)
            {
                AdminLog.Unauthorized(logger, http.Request.Method, http.Request.Path, http.Connection.RemoteIpAddress?.ToString() ?? "?", refusal);
                http.Response.Headers.WWWAuthenticate = "Bearer";
                return Error(StatusCodes.Status401Unauthorized, refusal);
            }
        }

        try
        {
            return await next(context);
        }
        catch (AdminException e)
        {
            AdminLog.Refused(logger, http.Request.Method, http.Request.Path, e.Status, e.Message);
            return Error(e.Status is >= 400 and <= 599 ? e.Status : StatusCodes.Status400BadRequest, e.Message);
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own limits (body size, malformed chunking) while we read the body.
            return Error(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? TooLarge : e.Message);
        }
        catch (ArgumentException e)
        {
            // An implementation refusing an argument with the framework's exception is still bad input.
            return Error(StatusCodes.Status400BadRequest, e.Message);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty;
        }
        catch (Exception e)
        {
            AdminLog.Failed(logger, http.Request.Method, http.Request.Path, e);
            return Error(StatusCodes.Status500InternalServerError, "internal error; see the coordinator's log");
        }
    }

    /// <summary>Null when the request carries a live API key; else why not (no key material in it).</summary>
    private static async Task<string?> AuthenticateAsync(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (header.Length == 0)
        {
            return "missing API key (send Authorization: Bearer <key>, or use the local admin socket)";
        }

        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || header.Length == scheme.Length)
        {
            return "malformed Authorization header (expected Bearer <key>)";
        }

        var admin = http.RequestServices.GetRequiredService<IMeshAdmin>();
        var key = header[scheme.Length..].Trim();
        return await admin.ValidateApiKeyAsync(key, http.RequestAborted) ? null : "invalid or expired API key";
    }

    private const string TooLarge = "request body is larger than 1 MiB";

    private static IResult Ok<T>(T value) => Results.Json(value, AdminJson.Options);

    private static IResult Created<T>(T value) => Results.Json(value, AdminJson.Options, statusCode: StatusCodes.Status201Created);

    private static IResult Error(int status, string message) => Results.Json(new AdminError(message), AdminJson.Options, statusCode: status);

    private static ILogger Logger(HttpContext http) =>
        http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger(typeof(AdminApi).FullName!) ?? NullLogger.Instance;

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static long Id(string text, string what) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0
            ? id
            : throw AdminException.Invalid($"{what} id \"{text}\" is not a positive integer");

    /// <summary>System.Text.Json does not enforce nullability of list elements; a null tag is bad input, not a 500.</summary>
    private static IReadOnlyList<string> NoNulls(IReadOnlyList<string> values, string field)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] is null)
            {
                throw AdminException.Invalid($"invalid JSON body: {field}[{i}] is null");
            }
        }

        return values;
    }

    private static TimeSpan? Duration(string? text)
    {
        if (text is null)
        {
            return null;
        }

        return AdminDuration.TryParse(text, out var duration, out var error) ? duration : throw AdminException.Invalid($"expiration: {error}");
    }

    /// <summary>The body, at most <see cref="MaxBodyBytes"/>; 413 beyond, without reading past the cap.</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            throw new AdminException(StatusCodes.Status413PayloadTooLarge, TooLarge);
        }

        using var body = new MemoryStream(request.ContentLength is { } length ? (int)length : 4096);
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (body.Length + read > MaxBodyBytes)
            {
                throw new AdminException(StatusCodes.Status413PayloadTooLarge, TooLarge);
            }

            body.Write(chunk, 0, read);
        }

        return body.ToArray();
    }

    private static async Task<string> ReadTextAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var bytes = await ReadBodyAsync(request, cancellationToken);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw AdminException.Invalid("request body is not valid UTF-8");
        }
    }

    private static async Task<T?> ReadJsonAsync<T>(HttpRequest request, bool required, CancellationToken cancellationToken)
        where T : class
    {
        var bytes = await ReadBodyAsync(request, cancellationToken);
        if (bytes.AsSpan().Trim(" \t\r\n"u8).IsEmpty)
        {
            return required ? throw AdminException.Invalid("request body is required (a JSON object)") : null;
        }

        try
        {
            return JsonSerializer.Deserialize<T>(bytes, AdminJson.Requests)
                ?? (required ? throw AdminException.Invalid("request body is required (a JSON object, not null)") : null);
        }
        catch (JsonException e)
        {
            throw AdminException.Invalid($"invalid JSON body: {Describe(e)}");
        }
    }

    /// <summary>System.Text.Json's message, minus .NET type names a user cannot act on.</summary>
    private static string Describe(JsonException e)
    {
        var message = e.Message;
        var at = message.IndexOf(" Path:", StringComparison.Ordinal);
        var core = at >= 0 ? message[..at] : message;
        core = core.Replace(typeof(AdminApi).Namespace + ".", "", StringComparison.Ordinal);
        return e.Path is { Length: > 0 } path ? $"{core} (at {path})" : core;
    }
}
