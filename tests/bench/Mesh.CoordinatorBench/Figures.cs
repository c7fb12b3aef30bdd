using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Mesh.CoordinatorBench;

/// <summary>The figures a run collects, printed as one table at the end (and each as it is measured).</summary>
internal sealed class Figures
{
    private readonly List<(string Phase, string Figure, string Value)> _rows = [];

    public void Add(string phase, string figure, string value)
    {
        _rows.Add((phase, figure, value));
        Console.WriteLine($"  {phase,-12} {figure,-46} {value}");
    }

    public void Latencies(string phase, string figure, IReadOnlyList<double> seconds, int expected)
    {
        if (seconds.Count == 0)
        {
            Add(phase, figure, $"none of {expected} arrived");
            return;
        }

        var sorted = seconds.Order().ToArray();
        var missing = expected - sorted.Length;
        Add(phase, figure, $"p50 {Ms(Percentile(sorted, 0.50))}  p99 {Ms(Percentile(sorted, 0.99))}  max {Ms(sorted[^1])}"
            + (missing > 0 ? $"  ({missing} of {expected} never arrived)" : string.Empty));
    }

    public string Table()
    {
        var text = new StringBuilder();
        var phaseWidth = Math.Max(5, _rows.Max(r => r.Phase.Length));
        var figureWidth = Math.Max(6, _rows.Max(r => r.Figure.Length));
        text.AppendLine(CultureInfo.InvariantCulture, $"| {"phase".PadRight(phaseWidth)} | {"figure".PadRight(figureWidth)} | value");
        text.AppendLine(CultureInfo.InvariantCulture, $"|-{new string('-', phaseWidth)}-|-{new string('-', figureWidth)}-|------");
        foreach (var (phase, figure, value) in _rows)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {phase.PadRight(phaseWidth)} | {figure.PadRight(figureWidth)} | {value}");
        }

        return text.ToString();
    }

    /// <summary>Nearest-rank percentile of an ascending array.</summary>
    public static double Percentile(double[] sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public static string Ms(double seconds) => seconds switch
    {
        >= 10 => string.Create(CultureInfo.InvariantCulture, $"{seconds:F1} s"),
        >= 0.01 => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:F0} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:F2} ms"),
    };

    public static string Seconds(double seconds) => string.Create(CultureInfo.InvariantCulture, $"{seconds:F2} s");

    public static double Since(long timestamp) => Stopwatch.GetElapsedTime(timestamp).TotalSeconds;

    public static double Between(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    /// <summary>VmRSS and VmHWM of a process from /proc/PID/status, in MiB; null when it cannot be read.</summary>
    public static (double Rss, double Peak)? Memory(int pid)
    {
        try
        {
            double rss = 0, peak = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = Kib(line) / 1024.0;
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    peak = Kib(line) / 1024.0;
                }
            }

            return (rss, peak);
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static string MemoryText(int? pid)
    {
        if (pid is not { } p || Memory(p) is not { } m)
        {
            return "n/a";
        }

        return string.Create(CultureInfo.InvariantCulture, $"RSS {m.Rss:F0} MiB (peak {m.Peak:F0} MiB)");
    }

    private static long Kib(string line) =>
        long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}
