using System.Globalization;

namespace Mesh.CoordinatorBench;

/// <summary>
/// What can be read about the coordinator process from outside: its CPU time (/proc/PID/stat) and
/// the policy-compile histogram, push counter and GC figures from its Prometheus endpoint. Used to say where a
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

    /// <summary>
    /// From /metrics: the policy-compile histogram's sum and count, map responses pushed, and the
    /// runtime's GC figures (bytes allocated so far, the heap after the last collection, gen2 collections).
    /// </summary>
    public async Task<Scrape?> ScrapeAsync(CancellationToken cancellationToken)
    {
        if (metrics is null)
        {
            return null;
        }

        try
        {
            var text = await _http.GetStringAsync(metrics, cancellationToken);
            double sum = 0, allocated = 0, heap = 0, loh = 0;
            long count = 0, pushes = 0, gen2 = 0;
            foreach (var line in text.Split('\n'))
            {
                if (line.StartsWith('#') || line.Length == 0)
                {
                    continue;
                }

                var name = line[..line.IndexOfAny([' ', '{'])];
                var value = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
                if (name.StartsWith("mesh_policy_compile", StringComparison.Ordinal) && name.EndsWith("_sum", StringComparison.Ordinal))
                {
                    sum += value;
                }
                else if (name.StartsWith("mesh_policy_compile", StringComparison.Ordinal) && name.EndsWith("_count", StringComparison.Ordinal))
                {
                    count += (long)value;
                }
                else if (name.StartsWith("mesh_map_pushes", StringComparison.Ordinal))
                {
                    pushes += (long)value;
                }
                else if (name == "dotnet_gc_heap_total_allocated_bytes_total")
                {
                    allocated = value;
                }
                else if (name == "dotnet_gc_last_collection_heap_size_bytes")
                {
                    heap += value; // one line per generation
                    loh += line.Contains("\"loh\"", StringComparison.Ordinal) ? value : 0;
                }
                else if (name == "dotnet_gc_collections_total" && line.Contains("\"gen2\"", StringComparison.Ordinal))
                {
                    gen2 = (long)value;
                }
            }

            return new Scrape(sum, count, pushes, allocated, heap, loh, gen2);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>One read of /metrics; the GC figures are 0 when the coordinator does not export the runtime's meter.</summary>
    internal sealed record Scrape(double CompileSeconds, long Compiles, long Pushes, double AllocatedBytes, double HeapBytes, double LargeObjectHeapBytes, long Gen2Collections);

    public void Dispose() => _http.Dispose();
}
