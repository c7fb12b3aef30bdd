namespace Mesh.WireGuard.Tests;

/// <summary>
/// Reads the known-answer files under Vectors/: '#' lines are comments (each file's header names
/// its source), records are runs of "name = value" lines separated by blank lines. Values are hex
/// unless a test reads them as text or decimal.
/// </summary>
internal sealed class VectorRecord(string file, int line, Dictionary<string, string> fields)
{
    public string File { get; } = file;

    public int Line { get; } = line;

    public bool Has(string name) => fields.ContainsKey(name);

    public string Text(string name) =>
        fields.TryGetValue(name, out var value)
            ? value
            : throw new KeyNotFoundException($"{File}:{Line}: record has no field '{name}'");

    public byte[] Bytes(string name) => Convert.FromHexString(Text(name));

    public ulong UInt64(string name) => ulong.Parse(Text(name), System.Globalization.CultureInfo.InvariantCulture);

    public int Int32(string name) => int.Parse(Text(name), System.Globalization.CultureInfo.InvariantCulture);

    public override string ToString() => $"{File}:{Line}";
}

internal static class VectorFile
{
    public static IReadOnlyList<VectorRecord> Read(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Vectors", name);
        var records = new List<VectorRecord>();
        Dictionary<string, string>? fields = null;
        var start = 0;
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.StartsWith('#'))
            {
                continue;
            }

            if (line.Length == 0)
            {
                if (fields is not null)
                {
                    records.Add(new VectorRecord(name, start, fields));
                    fields = null;
                }

                continue;
            }

            var equals = line.IndexOf('=');
            if (equals < 0)
            {
                throw new FormatException($"{name}:{lineNumber}: expected 'name = value'");
            }

            if (fields is null)
            {
                fields = [];
                start = lineNumber;
            }

            fields.Add(line[..equals].Trim(), line[(equals + 1)..].Trim());
        }

        if (fields is not null)
        {
            records.Add(new VectorRecord(name, start, fields));
        }

        if (records.Count == 0)
        {
            throw new InvalidDataException($"{name}: no records");
        }

        return records;
    }
}

internal static class VectorAssert
{
    /// <summary>Asserts <paramref name="actual"/> equals <paramref name="expectedHex"/>, naming the record's file and line.</summary>
    public static void Hex(string expectedHex, ReadOnlySpan<byte> actual, VectorRecord record, string? detail = null)
    {
        var actualHex = Convert.ToHexStringLower(actual);
        Assert.True(
            string.Equals(expectedHex, actualHex, StringComparison.OrdinalIgnoreCase),
            $"{record}{(detail is null ? "" : " (" + detail + ")")}: expected {expectedHex}, got {actualHex}");
    }
}
