using System.Globalization;
using Mesh.CoordinatorBench;

// Coordinator scale benchmark: many simulated nodes in this one process against a coordinator
// running as its own process (so its memory can be read from /proc). Prints figures; it never
// passes or fails on them. tests/bench/coordinator.sh starts the coordinator and runs this.
//   SERVER=http://127.0.0.1:PORT ADMIN_SOCKET=PATH [COORDINATOR_PID=PID] [METRICS=URL]
//   NODES=3000 STREAMS=300 PARALLEL=32 OPEN_PARALLEL=16 ROUNDS=3 USERS=10
//   COMPILE_NODES=10000 COMPILE_RULES=1000 PROBE_TIMEOUT=90  (as environment or NAME=VALUE arguments)
var options = BenchOptions.Parse(args);
var figures = new Figures();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"coordinator bench: {options.Nodes} nodes, {options.Streams} streams, {options.Rounds} rounds, against {options.Server} (pid {options.CoordinatorPid?.ToString(CultureInfo.InvariantCulture) ?? "?"}); {Environment.ProcessorCount} cores"));

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

var failed = false;
try
{
    await using var run = new CoordinatorBenchRun(options, figures);
    await run.RunAsync(cancel.Token);
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    // Keep what was measured: the table below still prints, with the failure as its last row.
    figures.Add("error", e.GetType().Name, e.Message);
    failed = true;
}

if (!cancel.IsCancellationRequested)
{
    PolicyCompileBench.Run(options.CompileNodes, options.CompileRules, figures);
}

var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
Console.WriteLine();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"==== MeshOperator coordinator scale ({options.Nodes} nodes, {options.Streams} streams; {Environment.ProcessorCount} cores; loadavg {load}) ===="));
Console.Write(figures.Table());
return failed ? 1 : 0;
