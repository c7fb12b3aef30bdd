using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using Mesh.Operator.Injection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.Operator.Tests.Injection;

/// <summary>YAML scalars read as kubectl (go-yaml v2) reads them, and strings written so that they read back as strings.</summary>
public sealed class YamlJsonTests
{
    [Theory]
    [InlineData("~", "null")]
    [InlineData("null", "null")]
    [InlineData("true", "true")]
    [InlineData("yes", "true")]
    [InlineData("On", "true")]
    [InlineData("n", "false")]
    [InlineData("OFF", "false")]
    [InlineData("42", "42")]
    [InlineData("-7", "-7")]
    [InlineData("0644", "420")]
    [InlineData("0o17", "15")]
    [InlineData("0x1F", "31")]
    [InlineData("0b101", "5")]
    [InlineData("1_000", "1000")]
    [InlineData("1.5", "1.5")]
    [InlineData("1e3", "1000")]
    [InlineData("08", "8")]
    [InlineData("64Mi", "\"64Mi\"")]
    [InlineData("100m", "\"100m\"")]
    [InlineData("1.2.3", "\"1.2.3\"")]
    [InlineData("0x", "\"0x\"")]
    [InlineData("-", "\"-\"")]
    [InlineData("nginx:1.27", "\"nginx:1.27\"")]
    public void ResolvePlain_AsKubectlReadsIt(string plain, string json)
    {
        Assert.Equal(json, YamlJson.ResolvePlain(plain, Mark.Empty)?.ToJsonString() ?? "null");
    }

    [Theory]
    [InlineData("'yes'", "\"yes\"")]
    [InlineData("\"0644\"", "\"0644\"")]
    [InlineData("!!str 42", "\"42\"")]
    [InlineData("!!int \"42\"", "42")]
    [InlineData("|\n  text\n", "\"text\\n\"")]
    public void Scalar_QuotedOrTagged(string yaml, string json)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader("v: " + yaml));
        Assert.Equal(json, YamlJson.ToJson(stream.Documents[0].RootNode)!["v"]!.ToJsonString());
    }

    [Theory]
    [InlineData(".inf")]
    [InlineData("!!int abc")]
    [InlineData("!custom x")]
    public void Scalar_NotJson_Throws(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader("v: " + yaml));
        Assert.Throws<YamlJsonException>(() => YamlJson.ToJson(stream.Documents[0].RootNode));
    }

    [Fact]
    public void Aliases_ExpandedBeyondTheLimit_Refused()
    {
        // "Billion laughs": nine levels of ten aliases each.
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
        for (var i = 1; i <= 9; i++)
        {
            yaml += $"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]\n";
        }

        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var e = Assert.Throws<YamlJsonException>(() => YamlJson.ToJson(stream.Documents[0].RootNode));
        Assert.Contains("aliases", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("0644")]
    [InlineData("1.29")]
    [InlineData("2024-01-02")]
    [InlineData("12:30")]
    [InlineData("null")]
    [InlineData("")]
    [InlineData(" padded ")]
    [InlineData("<<")]
    [InlineData("- item")]
    [InlineData("key: value")]
    [InlineData("#comment")]
    [InlineData("line one\nline two\n")]
    [InlineData("trailing space \nnext")]
    [InlineData("  indented\nblock")]
    public void ToYaml_String_ReadsBackAsTheSameString(string text)
    {
        Assert.Equal(text, RoundTrip(new JsonObject { ["k"] = text, [text] = "v" })?["k"]?.GetValue<string>());
        Assert.Equal("v", RoundTrip(new JsonObject { [text] = "v" })?[text]?.GetValue<string>());
    }

    [Fact]
    public void ToYaml_RandomStrings_ReadBackTheSame()
    {
        char[] alphabet = [' ', '\n', '\t', ':', '#', '-', '\'', '"', '{', '[', ',', '&', '*', '!', '|', '>', '%', '@', '`', '0', '1', '.', 'e', 'y', 'n', 'o', 'x', '~', '\\', 'é'];
        Gen.Int[0, alphabet.Length - 1].Select(i => alphabet[i]).Array[0, 12].Select(c => new string(c)).Sample(text =>
        {
            var back = RoundTrip(new JsonObject { ["k"] = text, ["l"] = new JsonArray(text) });
            Assert.Equal(text, back?["k"]?.GetValue<string>());
            Assert.Equal(text, back?["l"]?[0]?.GetValue<string>());
        }, iter: 5000);
    }

    [Fact]
    public void ToYaml_NumbersBooleansNullAndEmptyCollections_KeepTheirTypes()
    {
        var json = JsonNode.Parse("""{"i":420,"f":0.5,"t":true,"n":null,"o":{},"a":[],"big":12345678901234}""")!;
        var yaml = YamlJson.ToYaml(json);
        Assert.Equal("i: 420\nf: 0.5\nt: true\n\"n\": null\no: {}\na: []\nbig: 12345678901234\n", yaml);
        Assert.True(JsonNode.DeepEquals(json, RoundTrip(json)));
    }

    private static JsonNode? RoundTrip(JsonNode node)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(YamlJson.ToYaml(node)));
        return YamlJson.ToJson(stream.Documents[0].RootNode);
    }
}
