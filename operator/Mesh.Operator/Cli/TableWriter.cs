namespace Mesh.Operator.Cli;

/// <summary>
/// Aligned text tables for the admin verbs, in the shape `headscale nodes list` prints: a header
/// row, then one row per object, cells padded to the widest in their column and joined by " | ".
/// Cells never wrap; a cell's line breaks become spaces so a row stays one line for grep and awk.
/// </summary>
internal sealed class TableWriter
{
    private const string Separator = " | ";

    private readonly string[] _headers;
    private readonly List<string[]> _rows = [];

    public TableWriter(params string[] headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        _headers = headers;
    }

    public TableWriter Row(params string?[] cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (cells.Length != _headers.Length)
        {
            throw new ArgumentException($"expected {_headers.Length} cells, got {cells.Length}", nameof(cells));
        }

        _rows.Add([.. cells.Select(c => (c ?? "").ReplaceLineEndings(" "))]);
        return this;
    }

    public void WriteTo(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var widths = new int[_headers.Length];
        for (var i = 0; i < widths.Length; i++)
        {
            widths[i] = _headers[i].Length;
            foreach (var row in _rows)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        WriteLine(output, _headers, widths);
        foreach (var row in _rows)
        {
            WriteLine(output, row, widths);
        }
    }

    private static void WriteLine(TextWriter output, string[] cells, int[] widths)
    {
        var line = new System.Text.StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            if (i > 0)
            {
                line.Append(Separator);
            }

            line.Append(i == cells.Length - 1 ? cells[i] : cells[i].PadRight(widths[i]));
        }

        output.WriteLine(line.ToString().TrimEnd());
    }
}
