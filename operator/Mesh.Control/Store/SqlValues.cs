using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

/// <summary>How values are written to and read from columns; see <see cref="StoreMigrations"/> for the conventions.</summary>
internal static class SqlValues
{
    // Fixed width so that text order is time order (for ORDER BY and comparisons in SQL).
    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";

    public static object ToDb(object? value) => value switch
    {
        null => DBNull.Value,
        DateTimeOffset time => FormatTime(time),
        bool flag => flag ? 1L : 0L,
        IReadOnlyList<string> list => FormatList(list),
        _ => value,
    };

    public static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseTime(string text) =>
        new(DateTime.ParseExact(text, TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal), TimeSpan.Zero);

    public static string FormatList(IReadOnlyList<string> list)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var item in list)
            {
                writer.WriteStringValue(item);
            }

            writer.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static IReadOnlyList<string> ParseList(string json)
    {
        using var document = JsonDocument.Parse(json);
        var items = new string[document.RootElement.GetArrayLength()];
        var i = 0;
        foreach (var element in document.RootElement.EnumerateArray())
        {
            items[i++] = element.GetString() ?? "";
        }

        return Array.AsReadOnly(items);
    }

    public static string? String(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    public static long? Long(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);

    public static bool Bool(SqliteDataReader reader, int ordinal) => reader.GetInt64(ordinal) != 0;

    public static DateTimeOffset Time(SqliteDataReader reader, int ordinal) => ParseTime(reader.GetString(ordinal));

    public static DateTimeOffset? TimeOrNull(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : ParseTime(reader.GetString(ordinal));

    public static IReadOnlyList<string> List(SqliteDataReader reader, int ordinal) => ParseList(reader.GetString(ordinal));

    public static byte[] Blob(SqliteDataReader reader, int ordinal) => (byte[])reader.GetValue(ordinal);
}
