using System.Globalization;

namespace Mesh.Operator.Cli;

/// <summary>How the admin tables show values: ISO 8601 UTC times, relative "last seen", yes/no.</summary>
internal static class CliFormat
{
    /// <summary>"2025-06-01T12:00:00Z", or <paramref name="none"/> when there is no time.</summary>
    public static string Time(DateTimeOffset? time, string none = "") =>
        time is { } t ? t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) : none;

    /// <summary>An expiration: "never", or its time, marked "(expired)" once past.</summary>
    public static string Expiration(DateTimeOffset? expiration, DateTimeOffset now) =>
        expiration is { } t ? t <= now ? Time(t) + " (expired)" : Time(t) : "never";

    /// <summary>"just now", "5m ago", "3h ago", "2d ago", "in 4h"; "never" when there is no time.</summary>
    public static string Relative(DateTimeOffset? time, DateTimeOffset now)
    {
        if (time is not { } t)
        {
            return "never";
        }

        var delta = now - t;
        var future = delta < TimeSpan.Zero;
        var span = future ? -delta : delta;
        if (span < TimeSpan.FromSeconds(10))
        {
            return "just now";
        }

        var amount = span.TotalMinutes < 1 ? $"{(int)span.TotalSeconds}s"
            : span.TotalHours < 1 ? $"{(int)span.TotalMinutes}m"
            : span.TotalDays < 1 ? $"{(int)span.TotalHours}h"
            : $"{(int)span.TotalDays}d";
        return future ? "in " + amount : amount + " ago";
    }

    public static string YesNo(bool value) => value ? "yes" : "no";

    public static string List(IReadOnlyList<string>? values) => values is null ? "" : string.Join(", ", values);
}
