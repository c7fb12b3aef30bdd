using System.Text;
using System.Text.RegularExpressions;

namespace Mesh.Operator.Injection;

/// <summary>One document of a multi-document YAML stream, as it was written.</summary>
/// <param name="FirstLine">The 1-based line of the input where the document's text starts.</param>
/// <param name="Text">The document's text, verbatim, without its <c>---</c> separator line.</param>
internal sealed record ManifestChunk(int FirstLine, string Text)
{
    public bool IsBlank => string.IsNullOrWhiteSpace(Text);
}

/// <summary>
/// Splits a YAML stream into its documents the way kubectl does (apimachinery's <c>YAMLReader</c>):
/// at lines that read <c>---</c>, optionally followed by spaces or a comment. Splitting the text
/// (rather than re-serializing what a parser saw) lets documents that injection does not touch
/// pass through byte for byte, comments and all.
/// </summary>
internal static partial class ManifestDocuments
{
    public static IReadOnlyList<ManifestChunk> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chunks = new List<ManifestChunk>();
        var current = new StringBuilder();
        var firstLine = 1;
        var lineNumber = 0;
        var position = 0;
        while (position < text.Length)
        {
            var end = text.IndexOf('\n', position);
            var next = end < 0 ? text.Length : end + 1;
            var line = text[position..next];
            lineNumber++;
            if (Separator().IsMatch(line.TrimEnd('\n', '\r')))
            {
                chunks.Add(new ManifestChunk(firstLine, current.ToString()));
                current.Clear();
                firstLine = lineNumber + 1;
            }
            else
            {
                current.Append(line);
            }

            position = next;
        }

        chunks.Add(new ManifestChunk(firstLine, current.ToString()));
        return chunks;
    }

    /// <summary>Joins documents with <c>---</c> lines; each ends with a newline.</summary>
    public static string Join(IEnumerable<string> documents)
    {
        var output = new StringBuilder();
        foreach (var document in documents)
        {
            if (output.Length > 0)
            {
                output.Append("---\n");
            }

            output.Append(document);
            if (!document.EndsWith('\n'))
            {
                output.Append('\n');
            }
        }

        return output.ToString();
    }

    [GeneratedRegex(@"^---(\s*|\s+#.*)$")]
    private static partial Regex Separator();
}
