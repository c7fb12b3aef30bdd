using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mesh.Operator.Injection;

/// <summary>
/// The value of <c>mesh.meshoperator.io/status</c>: what injection added, so a second pass changes
/// nothing, a future version can tell what to upgrade or remove, and a person can see it with
/// <c>kubectl get pod -o yaml</c>. Shaped after Istio's <c>sidecar.istio.io/status</c>.
/// </summary>
internal sealed record InjectionStatus
{
    /// <summary>The injection template's version: bumped whenever what gets added changes.</summary>
    public const string CurrentVersion = "1";

    [JsonPropertyName("version")]
    public string Version { get; init; } = CurrentVersion;

    [JsonPropertyName("network")]
    public required string Network { get; init; }

    [JsonPropertyName("image")]
    public required string Image { get; init; }

    [JsonPropertyName("initContainers")]
    public IReadOnlyList<string> InitContainers { get; init; } = [SidecarTemplate.ContainerName];

    [JsonPropertyName("volumes")]
    public IReadOnlyList<string> Volumes { get; init; } = SidecarTemplate.VolumeNames;

    /// <summary>The pod's dnsPolicy before injection (null: left alone), so the change can be undone.</summary>
    [JsonPropertyName("dnsPolicy")]
    public string? DnsPolicy { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, InjectionStatusJson.Default.InjectionStatus);

    public static InjectionStatus? TryParse(string? json)
    {
        try
        {
            return json is null ? null : JsonSerializer.Deserialize(json, InjectionStatusJson.Default.InjectionStatus);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InjectionStatus))]
internal sealed partial class InjectionStatusJson : JsonSerializerContext;
