using System.Globalization;

namespace Mesh.Control.Tests.Operations;

/// <summary>
/// One scrape of the coordinator's /metrics in the Prometheus text exposition format
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): `# TYPE name kind` lines and
/// samples `name{label="value",…} number [timestamp]`. Only what the tests need: types and sample
/// values looked up by name and a subset of labels.
/// </summary>
internal sealed class PrometheusScrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];
    private readonly Dictionary<string, string> _types = new(StringComparer.Ordinal);

    private PrometheusScrape(string text)
    {
        Text = text;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                _types[parts[2]] = parts[3];
                continue;
            }

            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            string name;
            string rest;
            var brace = line.IndexOf('{', StringComparison.Ordinal);
            if (brace >= 0)
            {
                name = line[..brace];
                var close = line.LastIndexOf('}');
                foreach (var pair in SplitLabels(line[(brace + 1)..close]))
                {
                    var eq = pair.IndexOf('=', StringComparison.Ordinal);
                    labels[pair[..eq].Trim()] = pair[(eq + 1)..].Trim().Trim('"');
                }

                rest = line[(close + 1)..].Trim();
            }
            else
            {
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }

            var number = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
            _samples.Add((name, labels, number switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(number, NumberStyles.Float, CultureInfo.InvariantCulture),
            }));
        }
    }

    public string Text { get; }

    public static async Task<PrometheusScrape> GetAsync(HttpClient http, Uri url)
    {
        using var response = await http.GetAsync(url, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"GET {url}: {(int)response.StatusCode}\n{body}");
        return new PrometheusScrape(body);
    }

    /// <summary>The `# TYPE` of a metric family, or null.</summary>
    public string? TypeOf(string family) => _types.GetValueOrDefault(family);

    /// <summary>The value of the one sample named <paramref name="name"/> carrying the given labels (others may be present), or null.</summary>
    public double? Value(string name, params (string Label, string Value)[] labels)
    {
        var matches = _samples.Where(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Label) == l.Value)).ToList();
        return matches.Count switch
        {
            0 => null,
            1 => matches[0].Value,
            _ => throw new InvalidOperationException($"{matches.Count} samples of {name} match; be more specific\n{Text}"),
        };
    }

    /// <summary>The label values of <paramref name="label"/> over every sample named <paramref name="name"/> (say, a histogram's `le` bounds).</summary>
    public IReadOnlyList<string> LabelValues(string name, string label) =>
        [.. _samples.Where(s => s.Name == name && s.Labels.ContainsKey(label)).Select(s => s.Labels[label])];

    public override string ToString() => Text;

    /// <summary>Splits `a="x",b="y,z"` at the commas outside quotes (label values may hold commas and escaped quotes).</summary>
    private static IEnumerable<string> SplitLabels(string text)
    {
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\')
            {
                i++;
            }
            else if (text[i] == '"')
            {
                quoted = !quoted;
            }
            else if (text[i] == ',' && !quoted)
            {
                yield return text[start..i];
                start = i + 1;
            }
        }

        if (start < text.Length && text[start..].Trim().Length > 0)
        {
            yield return text[start..];
        }
    }
}
