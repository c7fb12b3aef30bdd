using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mesh.Operator.Injection;

/// <summary>One operation of a JSON Patch (RFC 6902), as a mutating webhook returns it to the API server.</summary>
/// <param name="Op"><c>add</c>, <c>remove</c>, <c>replace</c>, <c>move</c>, <c>copy</c> or <c>test</c>.</param>
/// <param name="Path">A JSON Pointer (RFC 6901) to the target.</param>
/// <param name="Value">The value of <c>add</c>, <c>replace</c> and <c>test</c>; null for the others.</param>
/// <param name="From">The source pointer of <c>move</c> and <c>copy</c>.</param>
internal sealed record JsonPatchOperation(string Op, string Path, JsonNode? Value = null, string? From = null)
{
    public JsonObject ToJson()
    {
        var json = new JsonObject { ["op"] = Op };
        if (From is not null)
        {
            json["from"] = From;
        }

        json["path"] = Path;
        if (Op is "add" or "replace" or "test")
        {
            json["value"] = Value?.DeepClone();
        }

        return json;
    }

    public override string ToString() => ToJson().ToJsonString();
}

/// <summary>A JSON Patch could not be applied: a path that does not exist, a failed <c>test</c>, a malformed pointer.</summary>
internal sealed class JsonPatchException(string message) : Exception(message);

/// <summary>
/// JSON Patch (RFC 6902, https://www.rfc-editor.org/rfc/rfc6902) over <see cref="JsonNode"/>s: applying a
/// patch, and computing one from two documents. The injector describes what it changed as a patch
/// computed by <see cref="Diff"/>; the webhook returns that patch, and `mesh-operator inject` applies
/// it with <see cref="Apply"/> to the manifest as it was read, so the two cannot disagree.
/// </summary>
/// <remarks>
/// <see cref="Diff"/> keeps patches small for what injection does: members added to or removed
/// from objects become <c>add</c>/<c>remove</c>; an array whose old elements all survive in order
/// becomes one <c>add</c> per inserted element (so existing containers and volumes are never
/// rewritten); an array of the same length is compared element by element; any other array is
/// replaced whole. Applying the result to the first document always gives the second.
/// </remarks>
internal static class JsonPatch
{
    /// <summary>The operations that turn <paramref name="source"/> into <paramref name="target"/> (both left unchanged).</summary>
    public static IReadOnlyList<JsonPatchOperation> Diff(JsonNode? source, JsonNode? target)
    {
        var operations = new List<JsonPatchOperation>();
        DiffInto(operations, "", source, target);
        return operations;
    }

    /// <summary>Applies <paramref name="patch"/> to a copy of <paramref name="document"/> and returns the copy; atomic: the input is never changed.</summary>
    public static JsonNode? Apply(JsonNode? document, IEnumerable<JsonPatchOperation> patch)
    {
        ArgumentNullException.ThrowIfNull(patch);
        var root = new JsonArray(document?.DeepClone());
        foreach (var operation in patch)
        {
            ApplyOne(root, operation);
        }

        var result = root[0];
        root.RemoveAt(0);
        return result;
    }

    /// <summary>Parses an RFC 6902 patch document (a JSON array of operations).</summary>
    public static IReadOnlyList<JsonPatchOperation> Parse(string json)
    {
        if (JsonNode.Parse(json) is not JsonArray array)
        {
            throw new JsonPatchException("a JSON Patch is a JSON array of operations");
        }

        var operations = new List<JsonPatchOperation>(array.Count);
        foreach (var item in array)
        {
            if (item is not JsonObject obj || obj["op"]?.GetValueKind() != JsonValueKind.String || obj["path"]?.GetValueKind() != JsonValueKind.String)
            {
                throw new JsonPatchException($"operation {operations.Count}: needs string members \"op\" and \"path\"");
            }

            var op = obj["op"]!.GetValue<string>();
            if (op is "add" or "replace" or "test" && !obj.ContainsKey("value"))
            {
                throw new JsonPatchException($"operation {operations.Count} ({op}): has no \"value\"");
            }

            if (op is "move" or "copy" && obj["from"]?.GetValueKind() != JsonValueKind.String)
            {
                throw new JsonPatchException($"operation {operations.Count} ({op}): has no \"from\"");
            }

            operations.Add(new JsonPatchOperation(op, obj["path"]!.GetValue<string>(), obj["value"]?.DeepClone(), obj["from"]?.GetValue<string>()));
        }

        return operations;
    }

    /// <summary>The patch as a JSON array, the body of an AdmissionReview's <c>patch</c> (before base64).</summary>
    public static string Serialize(IEnumerable<JsonPatchOperation> patch)
    {
        var array = new JsonArray();
        foreach (var operation in patch)
        {
            array.Add(operation.ToJson());
        }

        return array.ToJsonString();
    }

    /// <summary>Escapes one reference token of a JSON Pointer (RFC 6901 §4: '~' → "~0", '/' → "~1").</summary>
    public static string EscapeToken(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string UnescapeToken(string token) => token.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);

    private static void DiffInto(List<JsonPatchOperation> operations, string path, JsonNode? source, JsonNode? target)
    {
        if (source is JsonObject sourceObject && target is JsonObject targetObject)
        {
            foreach (var (name, value) in sourceObject)
            {
                if (!targetObject.ContainsKey(name))
                {
                    operations.Add(new JsonPatchOperation("remove", $"{path}/{EscapeToken(name)}"));
                }
                else
                {
                    DiffInto(operations, $"{path}/{EscapeToken(name)}", value, targetObject[name]);
                }
            }

            foreach (var (name, value) in targetObject)
            {
                if (!sourceObject.ContainsKey(name))
                {
                    operations.Add(new JsonPatchOperation("add", $"{path}/{EscapeToken(name)}", value?.DeepClone()));
                }
            }

            return;
        }

        if (source is JsonArray sourceArray && target is JsonArray targetArray)
        {
            DiffArray(operations, path, sourceArray, targetArray);
            return;
        }

        if (!JsonNode.DeepEquals(source, target))
        {
            operations.Add(new JsonPatchOperation("replace", path, target?.DeepClone()));
        }
    }

    private static void DiffArray(List<JsonPatchOperation> operations, string path, JsonArray source, JsonArray target)
    {
        // Insertions only: every old element is still there, in order. A greedy match finds such an
        // embedding whenever one exists; the unmatched target elements are then added in ascending
        // index order, each at its final position.
        if (target.Count > source.Count)
        {
            var matched = new bool[target.Count];
            var next = 0;
            for (var i = 0; i < target.Count && next < source.Count; i++)
            {
                if (JsonNode.DeepEquals(source[next], target[i]))
                {
                    matched[i] = true;
                    next++;
                }
            }

            if (next == source.Count)
            {
                for (var i = 0; i < target.Count; i++)
                {
                    if (!matched[i])
                    {
                        operations.Add(new JsonPatchOperation("add", $"{path}/{i}", target[i]?.DeepClone()));
                    }
                }

                return;
            }
        }

        if (source.Count == target.Count)
        {
            for (var i = 0; i < source.Count; i++)
            {
                DiffInto(operations, $"{path}/{i}", source[i], target[i]);
            }

            return;
        }

        operations.Add(new JsonPatchOperation("replace", path, target.DeepClone()));
    }

    // The document sits in a one-element array so that the root ("") has a parent like any other node.
    private static void ApplyOne(JsonArray root, JsonPatchOperation operation)
    {
        switch (operation.Op)
        {
            case "add":
                Add(root, operation.Path, operation.Value?.DeepClone());
                break;
            case "remove":
                Remove(root, operation.Path);
                break;
            case "replace":
                Remove(root, operation.Path);
                Add(root, operation.Path, operation.Value?.DeepClone());
                break;
            case "move":
                var from = operation.From ?? throw new JsonPatchException("move: no \"from\"");
                if (operation.Path.StartsWith(from + "/", StringComparison.Ordinal))
                {
                    throw new JsonPatchException($"move: \"{operation.Path}\" is inside \"{from}\"");
                }

                var moved = Remove(root, from);
                Add(root, operation.Path, moved);
                break;
            case "copy":
                Add(root, operation.Path, Get(root, operation.From ?? throw new JsonPatchException("copy: no \"from\""))?.DeepClone());
                break;
            case "test":
                if (!JsonNode.DeepEquals(Get(root, operation.Path), operation.Value))
                {
                    throw new JsonPatchException($"test: \"{operation.Path}\" is not {operation.Value?.ToJsonString() ?? "null"}");
                }

                break;
            default:
                throw new JsonPatchException($"unknown operation \"{operation.Op}\"");
        }
    }

    private static JsonNode? Get(JsonArray root, string path)
    {
        var (parent, token) = Parent(root, path);
        return parent switch
        {
            JsonObject obj when obj.TryGetPropertyValue(token, out var value) => value,
            JsonArray array when ArrayIndex(token, array.Count - 1, path) is var index => array[index],
            _ => throw new JsonPatchException($"\"{path}\" does not exist"),
        };
    }

    private static void Add(JsonArray root, string path, JsonNode? value)
    {
        var (parent, token) = Parent(root, path);
        switch (parent)
        {
            case JsonObject obj:
                obj[token] = value;
                break;
            case JsonArray array when ReferenceEquals(array, root):
                array[0] = value;
                break;
            case JsonArray array:
                array.Insert(token == "-" ? array.Count : ArrayIndex(token, array.Count, path), value);
                break;
            default:
                throw new JsonPatchException($"\"{path}\": the parent is not an object or array");
        }
    }

    private static JsonNode? Remove(JsonArray root, string path)
    {
        var (parent, token) = Parent(root, path);
        switch (parent)
        {
            case JsonObject obj when obj.TryGetPropertyValue(token, out var value):
                obj.Remove(token);
                return value;
            case JsonArray array when ReferenceEquals(array, root):
                var document = array[0];
                array[0] = null;
                return document;
            case JsonArray array:
                var index = ArrayIndex(token, array.Count - 1, path);
                var item = array[index];
                array.RemoveAt(index);
                return item;
            default:
                throw new JsonPatchException($"\"{path}\" does not exist");
        }
    }

    /// <summary>The container holding the pointer's last token, and that token (unescaped).</summary>
    private static (JsonNode? Parent, string Token) Parent(JsonArray root, string path)
    {
        if (path.Length == 0)
        {
            return (root, "0");
        }

        if (path[0] != '/')
        {
            throw new JsonPatchException($"\"{path}\" is not a JSON Pointer (it must start with '/')");
        }

        var tokens = path[1..].Split('/');
        JsonNode? node = root[0];
        for (var i = 0; i < tokens.Length - 1; i++)
        {
            var token = UnescapeToken(tokens[i]);
            node = node switch
            {
                JsonObject obj when obj.TryGetPropertyValue(token, out var child) => child,
                JsonArray array => array[ArrayIndex(token, array.Count - 1, path)],
                _ => throw new JsonPatchException($"\"{path}\": \"{Prefix(tokens, i)}\" does not exist"),
            };
        }

        return (node, UnescapeToken(tokens[^1]));
    }

    private static string Prefix(string[] tokens, int last)
    {
        var text = new StringBuilder();
        for (var i = 0; i <= last; i++)
        {
            text.Append('/').Append(tokens[i]);
        }

        return text.ToString();
    }

    /// <summary>An array index token (RFC 6901: digits, no leading zero) no greater than <paramref name="max"/>.</summary>
    private static int ArrayIndex(string token, int max, string path)
    {
        var valid = token.Length > 0 && (token == "0" || token[0] != '0');
        foreach (var c in token)
        {
            valid &= c is >= '0' and <= '9';
        }

        if (!valid || !int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) || index > max)
        {
            throw new JsonPatchException($"\"{path}\": \"{token}\" is not an index of the array (0..{max})");
        }

        return index;
    }
}
