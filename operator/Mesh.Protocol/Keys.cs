using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.WireGuard;

namespace Mesh.Protocol;

/// <summary>
/// The typed Curve25519 public keys of the mesh, printed with a prefix that says which kind they
/// are ("nodekey:…", "mkey:…", "discokey:…" followed by 64 lower-case hex digits), so that a key of one
/// kind can never be passed where another is expected. Compared in constant time.
/// </summary>
/// <remarks>
/// Node key: the node's WireGuard key; it rotates on re-registration. Machine key: the node's
/// long-lived identity that authenticates its control channel. Disco key: path discovery.
/// </remarks>
public enum KeyKind
{
    Node,
    Machine,
    Disco,
}

internal static class KeyText
{
    public static string Prefix(KeyKind kind) => kind switch
    {
        KeyKind.Node => "nodekey:",
        KeyKind.Machine => "mkey:",
        KeyKind.Disco => "discokey:",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static string Format(KeyKind kind, NoisePublicKey key) => Prefix(kind) + key.ToHex();

    public static bool TryParse(KeyKind kind, string? text, out NoisePublicKey key, [NotNullWhen(false)] out string? error)
    {
        key = default;
        var prefix = Prefix(kind);
        if (string.IsNullOrEmpty(text))
        {
            error = $"a {prefix.TrimEnd(':')} is required";
            return false;
        }

        if (!text.StartsWith(prefix, StringComparison.Ordinal))
        {
            error = $"\"{Shorten(text)}\" is not a {prefix.TrimEnd(':')}: it must start with \"{prefix}\"";
            return false;
        }

        var hex = text.AsSpan(prefix.Length);
        Span<byte> bytes = stackalloc byte[NoisePublicKey.Size];
        if (hex.Length != NoisePublicKey.Size * 2 || Convert.FromHexString(hex, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != NoisePublicKey.Size)
        {
            error = $"\"{Shorten(text)}\": expected \"{prefix}\" followed by 64 hex digits";
            return false;
        }

        key = new NoisePublicKey(bytes);
        error = null;
        return true;
    }

    private static string Shorten(string text) => text.Length > 80 ? text[..80] + "…" : text;
}

[JsonConverter(typeof(NodeKeyJsonConverter))]
public readonly record struct NodeKey(NoisePublicKey Value)
{
    public override string ToString() => KeyText.Format(KeyKind.Node, Value);

    public static bool TryParse(string? text, out NodeKey key, [NotNullWhen(false)] out string? error)
    {
        var ok = KeyText.TryParse(KeyKind.Node, text, out var value, out error);
        key = new NodeKey(value);
        return ok;
    }

    public static NodeKey Parse(string text) => TryParse(text, out var key, out var error) ? key : throw new FormatException(error);
}

[JsonConverter(typeof(MachineKeyJsonConverter))]
public readonly record struct MachineKey(NoisePublicKey Value)
{
    public override string ToString() => KeyText.Format(KeyKind.Machine, Value);

    public static bool TryParse(string? text, out MachineKey key, [NotNullWhen(false)] out string? error)
    {
        var ok = KeyText.TryParse(KeyKind.Machine, text, out var value, out error);
        key = new MachineKey(value);
        return ok;
    }

    public static MachineKey Parse(string text) => TryParse(text, out var key, out var error) ? key : throw new FormatException(error);
}

[JsonConverter(typeof(DiscoKeyJsonConverter))]
public readonly record struct DiscoKey(NoisePublicKey Value)
{
    public override string ToString() => KeyText.Format(KeyKind.Disco, Value);

    public static bool TryParse(string? text, out DiscoKey key, [NotNullWhen(false)] out string? error)
    {
        var ok = KeyText.TryParse(KeyKind.Disco, text, out var value, out error);
        key = new DiscoKey(value);
        return ok;
    }

    public static DiscoKey Parse(string text) => TryParse(text, out var key, out var error) ? key : throw new FormatException(error);
}

public sealed class NodeKeyJsonConverter : JsonConverter<NodeKey>
{
    public override NodeKey Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        NodeKey.TryParse(reader.GetString(), out var key, out var error) ? key : throw new JsonException(error);

    public override void Write(Utf8JsonWriter writer, NodeKey value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}

public sealed class MachineKeyJsonConverter : JsonConverter<MachineKey>
{
    public override MachineKey Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        MachineKey.TryParse(reader.GetString(), out var key, out var error) ? key : throw new JsonException(error);

    public override void Write(Utf8JsonWriter writer, MachineKey value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}

public sealed class DiscoKeyJsonConverter : JsonConverter<DiscoKey>
{
    public override DiscoKey Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DiscoKey.TryParse(reader.GetString(), out var key, out var error) ? key : throw new JsonException(error);

    public override void Write(Utf8JsonWriter writer, DiscoKey value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
