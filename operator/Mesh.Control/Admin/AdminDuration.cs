using System.Globalization;

namespace Mesh.Control.Admin;

/// <summary>
/// Durations as `--expiration` and the admin API take them, in the style of Go's
/// <c>time.ParseDuration</c> (which Headscale's CLI uses) plus days: one or more
/// <c>number unit</c> pairs, units <c>s</c>, <c>m</c>, <c>h</c>, <c>d</c> (24h) and <c>w</c> (7d),
/// decimals allowed: "90m", "24h", "1h30m", "7d", "1.5h". Must be positive. Go's <c>ms</c>,
/// <c>us</c> and <c>ns</c> are not accepted: no key expiry is that short.
/// </summary>
public static class AdminDuration
{
    private static readonly TimeSpan Max = TimeSpan.FromDays(365 * 100);

    public static bool TryParse(string? text, out TimeSpan duration, out string error)
    {
        duration = TimeSpan.Zero;
        error = "";
        var s = text?.Trim() ?? "";
        if (s.Length == 0)
        {
            error = "empty duration (expected e.g. 90m, 24h, 7d)";
            return false;
        }

        var total = 0.0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            if (i == start || !double.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                error = $"invalid duration \"{s}\": expected a number at position {start + 1} (e.g. 90m, 24h, 7d)";
                return false;
            }

            if (i == s.Length)
            {
                error = $"invalid duration \"{s}\": missing unit after {s[start..i]} (s, m, h, d or w)";
                return false;
            }

            var seconds = s[i] switch
            {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86400.0,
                'w' => 604800.0,
                _ => 0.0,
            };
            if (seconds == 0.0 || (i + 1 < s.Length && char.IsAsciiLetter(s[i + 1])))
            {
                error = $"invalid duration \"{s}\": unknown unit at position {i + 1} (use s, m, h, d or w)";
                return false;
            }

            i++;
            total += number * seconds;
        }

        if (total <= 0)
        {
            error = $"invalid duration \"{s}\": must be positive";
            return false;
        }

        if (total > Max.TotalSeconds)
        {
            error = $"invalid duration \"{s}\": longer than 100 years";
            return false;
        }

        duration = TimeSpan.FromSeconds(Math.Round(total));
        return true;
    }

    /// <summary>The shortest text <see cref="TryParse"/> reads back as <paramref name="duration"/> (whole seconds).</summary>
    public static string Format(TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(duration), "must be positive");
        }

        var seconds = (long)Math.Round(duration.TotalSeconds);
        var parts = new System.Text.StringBuilder();
        Append(ref seconds, 86400, 'd', parts);
        Append(ref seconds, 3600, 'h', parts);
        Append(ref seconds, 60, 'm', parts);
        Append(ref seconds, 1, 's', parts);
        return parts.Length == 0 ? "1s" : parts.ToString();

        static void Append(ref long seconds, long unit, char suffix, System.Text.StringBuilder parts)
        {
            if (seconds >= unit)
            {
                parts.Append(CultureInfo.InvariantCulture, $"{seconds / unit}{suffix}");
                seconds %= unit;
            }
        }
    }
}
