using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.Protocol;
using Mesh.WireGuard.Crypto;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// What a node keeps across restarts in its state directory (state.json, mode 0600): its machine
/// key (identity towards the coordinator), its node key (its WireGuard key) and the coordinator key
/// it pinned on first contact. Keeping them is what lets a restarted agent keep its mesh IPs.
/// </summary>
internal sealed class AgentState
{
    public const string FileName = "state.json";

    public required string MachinePrivateKey { get; set; }
    public required string NodePrivateKey { get; set; }
    public string? ServerKey { get; set; }
    public string? LoginServer { get; set; }

    [JsonIgnore]
    public byte[] MachineKeyBytes => Convert.FromBase64String(MachinePrivateKey);

    [JsonIgnore]
    public byte[] NodeKeyBytes => Convert.FromBase64String(NodePrivateKey);

    /// <summary>Loads the state, or makes new keys (and saves them) on first start.</summary>
    public static AgentState LoadOrCreate(string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            var state = JsonSerializer.Deserialize(File.ReadAllText(path), AgentJson.Default.AgentState)
                ?? throw new InvalidDataException($"{path} is empty");
            return state;
        }

        var created = new AgentState { MachinePrivateKey = NewKey(), NodePrivateKey = NewKey() };
        created.Save(directory);
        return created;
    }

    public void Save(string directory)
    {
        var path = Path.Combine(directory, FileName);
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, AgentJson.Default.AgentState));
        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }

    [JsonIgnore]
    public MachineKey? PinnedServerKey => ServerKey is null ? null : MachineKey.Parse(ServerKey);

    private static string NewKey()
    {
        var key = new byte[32];
        X25519.GeneratePrivateKey(key);
        return Convert.ToBase64String(key);
    }
}

/// <summary>Source-generated JSON for the agent's own files and local API (the agent is AOT-compiled).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false)]
[JsonSerializable(typeof(AgentState))]
[JsonSerializable(typeof(LocalRequest))]
[JsonSerializable(typeof(LocalResponse))]
[JsonSerializable(typeof(StatusReport))]
[JsonSerializable(typeof(PingReport))]
internal sealed partial class AgentJson : JsonSerializerContext;
