using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Mesh.Operator.Injection;

/// <summary>A YAML document that is not a JSON value (an unsupported tag, a non-scalar key, .inf).</summary>
internal sealed class YamlJsonException(string message, Mark start) : Exception(message)
{
    public Mark Start { get; } = start;
}

/// <summary>
/// YAML to JSON and back, the way kubectl reads manifests: every manifest is JSON written as YAML.
/// Plain scalars resolve as go-yaml v2 (which kubectl uses) resolves them — YAML 1.1 booleans
/// (<c>yes</c>, <c>on</c>, …), octal <c>0644</c>, <c>~</c> for null — and quoted ones are strings;
/// anchors, aliases and merge keys (<c>&lt;&lt;</c>) are expanded. Writing quotes every string
/// that a YAML 1.1 or 1.2 reader could take for something else, so what is written reads back the same.
/// </summary>
internal static partial class YamlJson
{
    /// <summary>Expanded aliases can make a tiny file enormous ("billion laughs"); past this many nodes a document is refused.</summary>
    public const int MaxNodes = 1_000_000;

    private static readonly HashSet<string> Nulls = ["", "~", "null", "Null", "NULL"];
    private static readonly HashSet<string> Trues = ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"];
    private static readonly HashSet<string> Falses = ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"];

    /// <summary>Converts a parsed YAML node (with its aliases resolved by YamlDotNet) to JSON.</summary>
    public static JsonNode? ToJson(YamlNode node)
    {
        var budget = MaxNodes;
        return Convert(node, ref budget);
    }

    /// <summary>What a plain (unquoted, untagged) scalar means: null, a boolean, a number, or a string.</summary>
    public static JsonNode? ResolvePlain(string text, Mark start)
    {
        if (Nulls.Contains(text))
        {
            return null;
        }

        if (Trues.Contains(text))
        {
            return JsonValue.Create(true);
        }

        if (Falses.Contains(text))
        {
            return JsonValue.Create(false);
        }

        if (text.Length == 0 || !(char.IsAsciiDigit(text[0]) || text[0] is '-' or '+' or '.'))
        {
            return JsonValue.Create(text);
        }

        if (text is ".inf" or ".Inf" or ".INF" or "+.inf" or "+.Inf" or "+.INF" or "-.inf" or "-.Inf" or "-.INF" or ".nan" or ".NaN" or ".NAN")
        {
            throw new YamlJsonException($"\"{text}\" is not a number JSON can hold", start);
        }

        var digits = text.Replace("_", "", StringComparison.Ordinal);
        if (TryParseInteger(digits, out var integer))
        {
            return JsonValue.Create(integer);
        }

        if (Float().IsMatch(digits) && double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number))
        {
            return JsonValue.Create(number);
        }

        return JsonValue.Create(text);
    }

    /// <summary>Writes a JSON value as the body of one YAML document (block style, kubectl's layout).</summary>
    public static string ToYaml(JsonNode? node)
    {
        var writer = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var emitter = new Emitter(writer, new EmitterSettings(2, int.MaxValue, false, 1024, false, false, "\n", false));
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart(null, null, true));
        Emit(emitter, node);
        emitter.Emit(new DocumentEnd(true));
        emitter.Emit(new StreamEnd());
        return writer.ToString();
    }

    /// <summary>True when a reader could take the unquoted <paramref name="text"/> for something other than that string.</summary>
    public static bool NeedsQuotes(string text)
    {
        if (text.Length == 0 || text != text.Trim() || text is "<<" or "=")
        {
            return true;
        }

        JsonNode? resolved;
        try
        {
            resolved = ResolvePlain(text, Mark.Empty);
        }
        catch (YamlJsonException)
        {
            return true;
        }

        // Dates and times are strings to kubectl but timestamps to other YAML readers.
        return resolved?.GetValueKind() != JsonValueKind.String || Timestamp().IsMatch(text) || Sexagesimal().IsMatch(text);
    }

    private static bool TryParseInteger(string digits, out long value)
    {
        value = 0;
        var negative = digits.StartsWith('-');
        var body = digits.TrimStart('-', '+');
        if (digits.Length - body.Length > 1 || body.Length == 0)
        {
            return false;
        }

        var (radix, number) = body switch
        {
            _ when body.StartsWith("0x", StringComparison.Ordinal) => (16, body[2..]),
            _ when body.StartsWith("0o", StringComparison.Ordinal) => (8, body[2..]),
            _ when body.StartsWith("0b", StringComparison.Ordinal) => (2, body[2..]),
            _ when body.Length > 1 && body[0] == '0' => (8, body[1..]),
            _ => (10, body),
        };
        if (number.Length == 0)
        {
            return false;
        }

        try
        {
            var magnitude = radix == 10
                ? long.Parse(number, NumberStyles.None, CultureInfo.InvariantCulture)
                : System.Convert.ToInt64(number, radix);
            value = negative ? -magnitude : magnitude;
            return number.All(c => char.IsAsciiHexDigit(c) && System.Convert.ToInt32(c.ToString(), 16) < radix);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            return false;
        }
    }

    private static JsonNode? Convert(YamlNode node, ref int budget)
    {
        if (--budget < 0)
        {
            throw new YamlJsonException($"more than {MaxNodes} nodes once aliases are expanded", node.Start);
        }

        switch (node)
        {
            case YamlScalarNode scalar:
                return Scalar(scalar);
            case YamlSequenceNode sequence:
                {
                    var array = new JsonArray();
                    foreach (var item in sequence.Children)
                    {
                        array.Add(Convert(item, ref budget));
                    }

                    return array;
                }

            case YamlMappingNode mapping:
                {
                    var obj = new JsonObject();
                    var merges = new List<YamlNode>();
                    foreach (var (keyNode, valueNode) in mapping.Children)
                    {
                        if (keyNode is not YamlScalarNode key)
                        {
                            throw new YamlJsonException("a mapping key is not a scalar; JSON keys are strings", keyNode.Start);
                        }

                        if (key.Value == "<<" && key.Style == ScalarStyle.Plain)
                        {
                            merges.Add(valueNode);
                            continue;
                        }

                        var name = key.Value ?? "";
                        if (obj.ContainsKey(name))
                        {
                            throw new YamlJsonException($"duplicate key \"{name}\"", key.Start);
                        }

                        obj[name] = Convert(valueNode, ref budget);
                    }

                    // Merge keys (YAML 1.1 <<): the mapping's own keys win, then earlier merged mappings.
                    foreach (var merge in merges.SelectMany(m => m is YamlSequenceNode list ? list.Children : [m]))
                    {
                        if (Convert(merge, ref budget) is not JsonObject merged)
                        {
                            throw new YamlJsonException("a merge key (<<) must refer to a mapping", merge.Start);
                        }

                        foreach (var (name, value) in merged.ToList())
                        {
                            if (!obj.ContainsKey(name))
                            {
                                merged.Remove(name);
                                obj[name] = value;
                            }
                        }
                    }

                    return obj;
                }

            default:
                throw new YamlJsonException($"unexpected YAML node {node.NodeType}", node.Start);
        }
    }

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        var tag = scalar.Tag.IsEmpty ? null : scalar.Tag.Value;
        switch (tag)
        {
            case null or "!" when scalar.Style != ScalarStyle.Plain:
            case "!" or "tag:yaml.org,2002:str":
                return JsonValue.Create(text);
            case null:
                return ResolvePlain(text, scalar.Start);
            case "tag:yaml.org,2002:null":
                return null;
            case "tag:yaml.org,2002:bool" or "tag:yaml.org,2002:int" or "tag:yaml.org,2002:float":
                var resolved = ResolvePlain(text, scalar.Start);
                var expected = tag.EndsWith("bool", StringComparison.Ordinal) ? "boolean" : "number";
                var kind = resolved?.GetValueKind();
                if (kind is null || (expected == "boolean" ? kind is not (JsonValueKind.True or JsonValueKind.False) : kind != JsonValueKind.Number))
                {
                    throw new YamlJsonException($"\"{text}\" is not a {expected} ({tag})", scalar.Start);
                }

                return resolved;
            default:
                throw new YamlJsonException($"tag {tag} has no JSON meaning", scalar.Start);
        }
    }

    private static void Emit(IEmitter emitter, JsonNode? node)
    {
        switch (node)
        {
            case null:
                emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "null", ScalarStyle.Plain, true, false));
                break;
            case JsonObject obj:
                emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, true, obj.Count == 0 ? MappingStyle.Flow : MappingStyle.Block));
                foreach (var (name, value) in obj)
                {
                    EmitString(emitter, name);
                    Emit(emitter, value);
                }

                emitter.Emit(new MappingEnd());
                break;
            case JsonArray array:
                emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, true, array.Count == 0 ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in array)
                {
                    Emit(emitter, item);
                }

                emitter.Emit(new SequenceEnd());
                break;
            default:
                switch (node.GetValueKind())
                {
                    case JsonValueKind.String:
                        EmitString(emitter, node.GetValue<string>());
                        break;
                    case JsonValueKind.True or JsonValueKind.False or JsonValueKind.Number:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, node.ToJsonString(), ScalarStyle.Plain, true, false));
                        break;
                    default:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "null", ScalarStyle.Plain, true, false));
                        break;
                }

                break;
        }
    }

    private static void EmitString(IEmitter emitter, string text)
    {
        // Multi-line text (scripts, configs) as a literal block, which YamlDotNet turns into quotes when
        // a block cannot hold it; text that starts with white space or is nothing else is quoted
        // outright (a block would need an indentation indicator, and whitespace-only blocks lose it).
        var style = !text.Contains('\n', StringComparison.Ordinal) ? (NeedsQuotes(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Plain)
            : string.IsNullOrWhiteSpace(text) || char.IsWhiteSpace(text[0]) ? ScalarStyle.DoubleQuoted
            : ScalarStyle.Literal;
        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, text, style, style == ScalarStyle.Plain, style != ScalarStyle.Plain));
    }

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();

    [GeneratedRegex(@"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?$")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")]
    private static partial Regex Sexagesimal();
}
