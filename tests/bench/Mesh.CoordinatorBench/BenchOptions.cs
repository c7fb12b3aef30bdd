using System.Globalization;

namespace Mesh.CoordinatorBench;

/// <summary>
/// What to run against which coordinator. Every value comes from an environment variable
/// (tests/bench/coordinator.sh passes them through) or from a NAME=VALUE argument, which wins.
/// </summary>
internal sealed record BenchOptions
{
    /// <summary>
    /// Nodes to register (phase 1). The size is 10,000 nodes and 1,000 streams; the default
    /// is the largest that ran in about five minutes on a shared 2-core machine: registration is
    /// quadratic (a policy compile per node) and opening streams re-sends whole peer lists, so
    /// 5,000/500 already took about seven (see tests/bench/coordinator.sh).
    /// </summary>
    public int Nodes { get; init; } = DefaultNodes;

    /// <summary>Map streams to hold open, on nodes 1..Streams (phase 2).</summary>
    public int Streams { get; init; } = DefaultStreams;

    public const int DefaultNodes = 3_000;
    public const int DefaultStreams = 300;

    /// <summary>Registrations in flight at once.</summary>
    public int Parallel { get; init; } = 32;

    /// <summary>Map streams being opened at once (each first map is a full netmap of every peer).</summary>
    public int OpenParallel { get; init; } = 16;

    /// <summary>Policy changes (there and back) and node joins to measure.</summary>
    public int Rounds { get; init; } = 3;

    /// <summary>Users the nodes are spread over, round-robin; the user-based policy gives each its own rule.</summary>
    public int Users { get; init; } = 10;

    /// <summary>Nodes and rules of the in-process policy compile (phase 5).</summary>
    public int CompileNodes { get; init; } = 10_000;

    public int CompileRules { get; init; } = 1_000;

    /// <summary>How long a probe waits for every stream before giving up on the ones still missing.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(90);

    public required Uri Server { get; init; }
    public required string AdminSocket { get; init; }
    public int? CoordinatorPid { get; init; }
    public Uri? Metrics { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            values[(string)e.Key] = (string)e.Value!;
        }

        foreach (var arg in args)
        {
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ArgumentException($"argument \"{arg}\": expected NAME=VALUE (NODES=3000 STREAMS=300 ...)");
            }

            values[arg[..eq]] = arg[(eq + 1)..];
        }

        int Int(string name, int fallback) =>
            values.TryGetValue(name, out var text) && text.Length > 0 ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

        string Required(string name) =>
            values.TryGetValue(name, out var text) && text.Length > 0 ? text : throw new ArgumentException($"{name} is required (tests/bench/coordinator.sh sets it)");

        var options = new BenchOptions
        {
            Server = new Uri(Required("SERVER")),
            AdminSocket = Required("ADMIN_SOCKET"),
            CoordinatorPid = values.TryGetValue("COORDINATOR_PID", out var pid) && pid.Length > 0 ? int.Parse(pid, CultureInfo.InvariantCulture) : null,
            Metrics = values.TryGetValue("METRICS", out var metrics) && metrics.Length > 0 ? new Uri(metrics) : null,
            Nodes = Int("NODES", DefaultNodes),
            Streams = Int("STREAMS", DefaultStreams),
            Parallel = Int("PARALLEL", 32),
            OpenParallel = Int("OPEN_PARALLEL", 16),
            Rounds = Int("ROUNDS", 3),
            Users = Int("USERS", 10),
            CompileNodes = Int("COMPILE_NODES", 10_000),
            CompileRules = Int("COMPILE_RULES", 1_000),
            ProbeTimeout = TimeSpan.FromSeconds(Int("PROBE_TIMEOUT", 90)),
        };

        if (options.Streams > options.Nodes)
        {
            throw new ArgumentException($"STREAMS={options.Streams} is more than NODES={options.Nodes}");
        }

        return options;
    }
}
