using System.Text.Json.Nodes;
using CsCheck;
using Mesh.Operator.Injection;

namespace Mesh.Operator.Tests.Injection;

/// <summary>
/// JSON Patch: the examples of RFC 6902 Appendix A (https://www.rfc-editor.org/rfc/rfc6902#appendix-A),
/// and <see cref="JsonPatch.Diff"/> checked against <see cref="JsonPatch.Apply"/> on random documents.
/// </summary>
public sealed class JsonPatchTests
{
    [Theory]
    [InlineData("A.1 add an object member", """{"foo":"bar"}""", """[{"op":"add","path":"/baz","value":"qux"}]""", """{"baz":"qux","foo":"bar"}""")]
    [InlineData("A.2 add an array element", """{"foo":["bar","baz"]}""", """[{"op":"add","path":"/foo/1","value":"qux"}]""", """{"foo":["bar","qux","baz"]}""")]
    [InlineData("A.3 remove an object member", """{"baz":"qux","foo":"bar"}""", """[{"op":"remove","path":"/baz"}]""", """{"foo":"bar"}""")]
    [InlineData("A.4 remove an array element", """{"foo":["bar","qux","baz"]}""", """[{"op":"remove","path":"/foo/1"}]""", """{"foo":["bar","baz"]}""")]
    [InlineData("A.5 replace a value", """{"baz":"qux","foo":"bar"}""", """[{"op":"replace","path":"/baz","value":"boo"}]""", """{"baz":"boo","foo":"bar"}""")]
    [InlineData("A.6 move a value", """{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}""", """[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]""", """{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}""")]
    [InlineData("A.7 move an array element", """{"foo":["all","grass","cows","eat"]}""", """[{"op":"move","from":"/foo/1","path":"/foo/3"}]""", """{"foo":["all","cows","eat","grass"]}""")]
    [InlineData("A.8 test a value: success", """{"baz":"qux","foo":["a",2,"c"]}""", """[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]""", """{"baz":"qux","foo":["a",2,"c"]}""")]
    [InlineData("A.10 add a nested member object", """{"foo":"bar"}""", """[{"op":"add","path":"/child","value":{"grandchild":{}}}]""", """{"foo":"bar","child":{"grandchild":{}}}""")]
    [InlineData("A.11 ignore unrecognized elements", """{"foo":"bar"}""", """[{"op":"add","path":"/baz","value":"qux","xyz":123}]""", """{"foo":"bar","baz":"qux"}""")]
    [InlineData("A.14 ~ escape ordering", """{"/":9,"~1":10}""", """[{"op":"test","path":"/~01","value":10}]""", """{"/":9,"~1":10}""")]
    [InlineData("A.16 add an array value", """{"foo":["bar"]}""", """[{"op":"add","path":"/foo/-","value":["abc","def"]}]""", """{"foo":["bar",["abc","def"]]}""")]
    [InlineData("replace the whole document", """{"a":1}""", """[{"op":"replace","path":"","value":[1]}]""", """[1]""")]
    [InlineData("copy", """{"a":{"b":1}}""", """[{"op":"copy","from":"/a","path":"/c"}]""", """{"a":{"b":1},"c":{"b":1}}""")]
    public void Apply_Rfc6902Examples(string name, string document, string patch, string expected)
    {
        var result = JsonPatch.Apply(JsonNode.Parse(document), JsonPatch.Parse(patch));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), result), $"{name}: {result?.ToJsonString()}");
    }

    [Theory]
    [InlineData("A.9 test a value: error", """{"baz":"qux"}""", """[{"op":"test","path":"/baz","value":"bar"}]""")]
    [InlineData("A.12 add to a nonexistent target", """{"foo":"bar"}""", """[{"op":"add","path":"/baz/bat","value":"qux"}]""")]
    [InlineData("A.15 comparing strings and numbers", """{"/":9,"~1":10}""", """[{"op":"test","path":"/~01","value":"10"}]""")]
    [InlineData("index past the end", """{"a":[1]}""", """[{"op":"add","path":"/a/2","value":2}]""")]
    [InlineData("leading zero index", """{"a":[1,2]}""", """[{"op":"remove","path":"/a/01"}]""")]
    [InlineData("remove a missing member", """{"a":1}""", """[{"op":"remove","path":"/b"}]""")]
    [InlineData("replace a missing member", """{"a":1}""", """[{"op":"replace","path":"/b","value":2}]""")]
    [InlineData("move into its own child", """{"a":{"b":1}}""", """[{"op":"move","from":"/a","path":"/a/b/c"}]""")]
    [InlineData("not a pointer", """{"a":1}""", """[{"op":"add","path":"a","value":2}]""")]
    public void Apply_Invalid_Throws(string name, string document, string patch)
    {
        var input = JsonNode.Parse(document);
        Assert.Throws<JsonPatchException>(() => JsonPatch.Apply(input, JsonPatch.Parse(patch)));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(document), input), $"{name}: the input was changed");
    }

    [Fact]
    public void Diff_InsertionsIntoArrays_AreAddsAtTheirIndex()
    {
        var patch = JsonPatch.Diff(JsonNode.Parse("""{"a":["x","y"]}"""), JsonNode.Parse("""{"a":["new","x","mid","y","end"]}"""));
        Assert.Equal(
            ["""{"op":"add","path":"/a/0","value":"new"}""", """{"op":"add","path":"/a/2","value":"mid"}""", """{"op":"add","path":"/a/4","value":"end"}"""],
            patch.Select(op => op.ToString()));
    }

    [Fact]
    public void Diff_KeysWithSlashAndTilde_Escaped()
    {
        var patch = JsonPatch.Diff(JsonNode.Parse("{}"), JsonNode.Parse("""{"a/b~c":1}"""));
        Assert.Equal("/a~1b~0c", Assert.Single(patch).Path);
    }

    [Fact]
    public void Diff_ThenApply_GivesTheTarget_RandomDocuments()
    {
        // Pairs of random documents, and documents with random insertions, removals and edits of
        // one another (what injection does, and what it never does).
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var source = RandomJson(random, 4);
            var target = random.Next(3) == 0 ? RandomJson(random, 4) : Mutate(random, source?.DeepClone(), 4);
            var patch = JsonPatch.Diff(source, target);
            var applied = JsonPatch.Apply(source, patch);
            return JsonNode.DeepEquals(target, applied);
        }, iter: 3000);
    }

    private static readonly string[] Keys = ["a", "b", "c", "a/b", "~", ""];

    private static JsonNode? RandomJson(Random random, int depth)
    {
        switch (depth <= 0 ? random.Next(4) : random.Next(7))
        {
            case 0: return null;
            case 1: return JsonValue.Create(random.Next(4));
            case 2: return JsonValue.Create(Keys[random.Next(Keys.Length)]);
            case 3: return JsonValue.Create(random.Next(2) == 0);
            case 4 or 5:
                {
                    var array = new JsonArray();
                    for (var i = random.Next(5); i > 0; i--)
                    {
                        array.Add(RandomJson(random, depth - 1));
                    }

                    return array;
                }

            default:
                {
                    var obj = new JsonObject();
                    for (var i = random.Next(4); i > 0; i--)
                    {
                        obj[Keys[random.Next(Keys.Length)]] = RandomJson(random, depth - 1);
                    }

                    return obj;
                }
        }
    }

    private static JsonNode? Mutate(Random random, JsonNode? node, int depth)
    {
        switch (node)
        {
            case JsonArray array:
                for (var i = random.Next(3); i > 0; i--)
                {
                    array.Insert(random.Next(array.Count + 1), RandomJson(random, depth - 1));
                }

                if (array.Count > 0 && random.Next(4) == 0)
                {
                    array.RemoveAt(random.Next(array.Count));
                }

                for (var i = 0; i < array.Count; i++)
                {
                    if (random.Next(3) == 0)
                    {
                        array[i] = Mutate(random, array[i]?.DeepClone(), depth - 1);
                    }
                }

                return array;
            case JsonObject obj:
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    switch (random.Next(4))
                    {
                        case 0:
                            obj.Remove(key);
                            break;
                        case 1:
                            obj[key] = Mutate(random, obj[key]?.DeepClone(), depth - 1);
                            break;
                    }
                }

                if (random.Next(2) == 0)
                {
                    obj[Keys[random.Next(Keys.Length)]] = RandomJson(random, depth - 1);
                }

                return obj;
            default:
                return random.Next(2) == 0 ? node : RandomJson(random, depth);
        }
    }
}
