using System.Globalization;

namespace Mesh.CoordinatorBench;

/// <summary>
/// What can be read about the coordinator process from outside: its CPU time (/proc/PID/stat) and
/// the policy-compile histogram and push counter from its Prometheus endpoint. Used to say where a
/// phase's time went (the coordinator, or this client) without attaching a profiler.
/// </summary>
internal sealed class CoordinatorProbe(int? pid, Uri? metrics) : IDisposable
{
    // /proc/PID/stat counts in clock ticks; USER_HZ is 100 on every Linux this runs on.
    private const double TicksPerSecond = 100;

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>User + system CPU seconds the coordinator used so far; null when unknown.</summary>
    public double? CpuSeconds()
    {
        if (pid is not { } p)
        {
            return null;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{p}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // After "pid (comm) ", field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Sum and count of the coordinator's policy compiles, and map responses pushed, from /metrics.</summary>
    public async Task<(double CompileSeconds, long Compiles, long Pushes)?> ScrapeAsync(CancellationToken cancellationToken)
    {
        if (metrics is null)
        {
            return null;
        }

        try
        {
            var text = await _http.GetStringAsync(metrics, cancellationToken);
            double sum = 0;
            long count = 0, pushes = 0;
            foreach (var line in text.Split('\n'))
            {
                if (line.StartsWith('#') || line.Length == 0)
                {
                    continue;
                }

                var name = line[..line.IndexOfAny([' ', '{'])];
                var value = line[(line.LastIndexOf(' ') + 1)..];
                if (name.StartsWith("mesh_policy_compile", StringComparison.Ordinal) && name.EndsWith("_sum", StringComparison.Ordinal))
                {
                    sum += double.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (name.StartsWith("mesh_policy_compile", StringComparison.Ordinal) && name.EndsWith("_count", StringComparison.Ordinal))
                {
                    count += (long)double.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (name.StartsWith("mesh_map_pushes", StringComparison.Ordinal))
                {
                    pushes += (long)double.Parse(value, CultureInfo.InvariantCulture);
                }
            }

            return (sum, count, pushes);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    public void Dispose() => _http.Dispose();
}
