using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;
using Perfolizer.Metrology;

namespace Mesh.Benchmarks;

/// <summary>
/// The one job every benchmark here runs with: short, in-process, memory diagnoser on.
/// </summary>
/// <remarks>
/// Short because the build machine is shared (two cores, several engineers): 3 warm-up and 5
/// measured iterations of ~200 ms each keep a full <c>micro.sh</c> run to a couple of minutes, at
/// the price of wider error bars than a default BenchmarkDotNet job. In-process so no per-benchmark
/// project is generated and built (which would also inherit the repository's warnings-as-errors
/// build settings). The CSV exporter writes plain nanoseconds and bytes without units so that
/// <c>micro.sh</c> can compute figures from it without parsing "1.23 μs" or "1 KB".
/// </remarks>
internal static class MicroConfig
{
    public const string JobId = "Micro";

    public static IConfig Create()
    {
        var job = Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(5)
            .WithIterationTime(TimeInterval.FromMilliseconds(200))
            .WithId(JobId);

        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        var plain = new SummaryStyle(invariant, printUnitsInHeader: true, sizeUnit: SizeUnit.B, timeUnit: TimeUnit.Nanosecond);
        var unitless = new SummaryStyle(invariant, printUnitsInHeader: true, sizeUnit: SizeUnit.B, timeUnit: TimeUnit.Nanosecond, printUnitsInContent: false, printZeroValuesInContent: true);
        var csv = new CsvExporter(CsvSeparator.Comma, unitless);

        // Not DefaultConfig.Instance: its own CSV exporter would write the same file name.
        return ManualConfig.CreateMinimumViable()
            .AddJob(job)
            .AddExporter(MarkdownExporter.GitHub)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(StatisticColumn.Median)
            .AddExporter(csv)
            .WithSummaryStyle(plain);
    }
}
