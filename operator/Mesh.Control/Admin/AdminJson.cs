using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Mesh.Control.Admin;

/// <summary>
/// The admin API's JSON: camelCase (System.Text.Json web defaults), shared by <see cref="AdminApi"/>
/// and <see cref="AdminClient"/>. A created pre-auth key or API key goes on the wire as the view's
/// fields plus its secret in <c>key</c> (the shape `mesh-operator … create -o json` prints), not as a
/// nested <c>{view, key}</c>.
/// </summary>
public static class AdminJson
{
    /// <summary>For replies, and for reading them in the client: lenient about fields it does not know.</summary>
    public static JsonSerializerOptions Options { get; } = Create(strict: false, indented: false);

    /// <summary>What the CLI prints for `-o json`.</summary>
    public static JsonSerializerOptions Indented { get; } = Create(strict: false, indented: true);

    /// <summary>
    /// For request bodies: an unknown field, a missing required field or a null where a value is
    /// required is a 400 naming it, rather than a silently ignored typo (`{"tag": [...]}`).
    /// </summary>
    internal static JsonSerializerOptions Requests { get; } = Create(strict: true, indented: false);

    private static JsonSerializerOptions Create(bool strict, bool indented)
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = indented };
        if (indented)
        {
            // For a terminal, not an HTML page: "+00:00" rather than "\u002B00:00".
            options.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        }

        if (strict)
        {
            options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            options.RespectNullableAnnotations = true;
            options.RespectRequiredConstructorParameters = true;
        }

        options.Converters.Add(new WithSecretConverter<CreatedPreAuthKey, PreAuthKeyView>(c => c.View, c => c.Key, (v, k) => new CreatedPreAuthKey(v, k)));
        options.Converters.Add(new WithSecretConverter<CreatedApiKey, ApiKeyView>(c => c.View, c => c.Key, (v, k) => new CreatedApiKey(v, k)));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Writes a view's fields and then <c>key</c>; reads them back.</summary>
    private sealed class WithSecretConverter<TCreated, TView>(
        Func<TCreated, TView> view,
        Func<TCreated, string> key,
        Func<TView, string, TCreated> create) : JsonConverter<TCreated>
    {
        private const string KeyField = "key";

        public override TCreated Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (JsonNode.Parse(ref reader) is not JsonObject obj)
            {
                throw new JsonException($"expected an object with the {typeof(TView).Name} fields and \"{KeyField}\"");
            }

            var secret = obj[KeyField]?.GetValue<string>() ?? throw new JsonException($"missing \"{KeyField}\"");
            obj.Remove(KeyField);
            var viewValue = obj.Deserialize<TView>(options) ?? throw new JsonException($"missing the {typeof(TView).Name} fields");
            return create(viewValue, secret);
        }

        public override void Write(Utf8JsonWriter writer, TCreated value, JsonSerializerOptions options)
        {
            var obj = JsonSerializer.SerializeToNode(view(value), options) as JsonObject ?? [];
            obj[KeyField] = key(value);
            obj.WriteTo(writer, options);
        }
    }
}

/// <summary>Every refusal: <c>{"error": "what to fix"}</c> with the status of the refusal.</summary>
public sealed record AdminError(string Error);

/// <summary>POST /api/v1/users.</summary>
public sealed record CreateUserBody(string Name, string? Email = null, string? DisplayName = null);

/// <summary>POST /api/v1/preauthkeys. <see cref="Expiration"/> is a duration (<see cref="AdminDuration"/>): "24h", "90m", "7d".</summary>
public sealed record CreatePreAuthKeyBody(
    string User,
    bool Reusable = false,
    bool Ephemeral = false,
    string? Expiration = null,
    IReadOnlyList<string>? Tags = null);

/// <summary>POST /api/v1/nodes/{id}/tags: the node's new tags, replacing the old.</summary>
public sealed record SetTagsBody(IReadOnlyList<string> Tags);

/// <summary>POST /api/v1/nodes/{id}/rename.</summary>
public sealed record RenameNodeBody(string Name);

/// <summary>POST /api/v1/nodes/{id}/expire (the body is optional: no body expires now).</summary>
public sealed record ExpireNodeBody(DateTimeOffset? At = null);

/// <summary>POST /api/v1/apikeys (the body is optional: no body, no expiration given).</summary>
public sealed record CreateApiKeyBody(string? Expiration = null);
