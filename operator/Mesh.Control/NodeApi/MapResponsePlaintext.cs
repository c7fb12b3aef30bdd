using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Mesh.Protocol.Control;

namespace Mesh.Control.NodeApi;

/// <summary>
/// A <see cref="MapResponse"/> as the JSON the node receives — byte for byte what
/// <c>JsonSerializer.SerializeToUtf8Bytes(map, ControlJsonContext.Default.MapResponse)</c> gives — but
/// never built in one piece: <see cref="ControlFraming.WriteSealedAsync"/> reads it chunk by chunk.
/// <para>
/// A peer entry (<see cref="MapNode"/>) is serialized once per instance and its bytes are shared by
/// every stream that sends it: a snapshot makes one <see cref="MapNode"/> per node and every map built
/// from it, full or delta, holds that instance (<see cref="State.NetmapSnapshot.MapNodeOf"/>). So a
/// full map of 10,000 peers is the list of peers plus a few hundred bytes of its own (sequence, filter,
/// DNS, relay map), instead of about 6 MB of JSON, a sealed copy and a copy in the HTTP stream per
/// stream — what made the coordinator's memory grow with streams × peers (docs/coordinator.md).
/// </para>
/// The object's own properties are written in the order and with the names of the source-generated
/// metadata, null ones left out as <see cref="ControlJsonContext"/> says; nested values other than peer
/// lists go through the same metadata. Not thread-safe; dispose it to return its buffer.
/// </summary>
internal sealed class MapResponsePlaintext : ISealedPlaintext, IDisposable
{
    private static readonly JsonSerializerOptions Options = ControlJsonContext.Default.Options;
    private static readonly JsonTypeInfo<MapNode> NodeInfo = ControlJsonContext.Default.MapNode;
    private static readonly (JsonPropertyInfo Property, JsonTypeInfo Type)[] Properties = Describe();
    private static readonly ConditionalWeakTable<MapNode, byte[]> NodeJson = new();
    private static readonly ConditionalWeakTable<MapNode, byte[]>.CreateValueCallback SerializeNode = static node => JsonSerializer.SerializeToUtf8Bytes(node, NodeInfo);

    private readonly PooledBufferWriter _inline = new();
    private readonly List<Part> _parts = [];
    private int _part;
    private int _offset;
    private int _node;
    private bool _commaWritten;

    private MapResponsePlaintext(MapResponse map)
    {
        var inlineStart = 0;
        using (var writer = new Utf8JsonWriter(_inline, new JsonWriterOptions { Encoder = Options.Encoder, SkipValidation = true }))
        {
            writer.WriteStartObject();
            foreach (var (property, type) in Properties)
            {
                var value = property.Get!(map);
                if (value is null || (property.ShouldSerialize is { } should && !should(map, value)))
                {
                    continue;
                }

                writer.WritePropertyName(property.Name);
                switch (value)
                {
                    case IReadOnlyList<MapNode> nodes:
                        // The array's brackets are the writer's; its elements are the shared bytes, in between.
                        writer.WriteStartArray();
                        writer.Flush();
                        _parts.Add(new Part(inlineStart, _inline.WrittenCount, null));
                        _parts.Add(new Part(0, 0, nodes));
                        Length += NodesLength(nodes);
                        inlineStart = _inline.WrittenCount;
                        writer.WriteEndArray();
                        break;
                    case MapNode node:
                        writer.WriteRawValue(JsonOf(node), skipInputValidation: true);
                        break;
                    default:
                        JsonSerializer.Serialize(writer, value, type);
                        break;
                }
            }

            writer.WriteEndObject();
        }

        _parts.Add(new Part(inlineStart, _inline.WrittenCount, null));
        Length += _inline.WrittenCount;
    }

    /// <summary>Whether the JSON would differ from the serializer's: a JsonIgnoreCondition other than WhenWritingNull would make it.</summary>
    internal static bool Supported => Options.DefaultIgnoreCondition == JsonIgnoreCondition.WhenWritingNull && !Options.WriteIndented;

    public int Length { get; }

    public static MapResponsePlaintext Create(MapResponse map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return new MapResponsePlaintext(map);
    }

    /// <summary>The JSON of one peer entry, made once per <see cref="MapNode"/> instance.</summary>
    internal static byte[] JsonOf(MapNode node) => NodeJson.GetValue(node, SerializeNode);

    public int Read(Span<byte> destination)
    {
        var written = 0;
        while (written < destination.Length && _part < _parts.Count)
        {
            var part = _parts[_part];
            if (part.Nodes is not { } nodes)
            {
                var source = _inline.WrittenSpan[(part.Start + _offset)..part.End];
                var n = Math.Min(source.Length, destination.Length - written);
                source[..n].CopyTo(destination[written..]);
                written += n;
                _offset += n;
                if (n == source.Length)
                {
                    (_part, _offset) = (_part + 1, 0);
                }

                continue;
            }

            if (_node == nodes.Count)
            {
                (_part, _node, _offset) = (_part + 1, 0, 0);
                continue;
            }

            if (_node > 0 && !_commaWritten)
            {
                destination[written++] = (byte)',';
                _commaWritten = true;
                continue;
            }

            var json = JsonOf(nodes[_node]).AsSpan(_offset);
            var m = Math.Min(json.Length, destination.Length - written);
            json[..m].CopyTo(destination[written..]);
            written += m;
            _offset += m;
            if (m == json.Length)
            {
                (_node, _offset, _commaWritten) = (_node + 1, 0, false);
            }
        }

        return written;
    }

    public void Dispose() => _inline.Dispose();

    private static int NodesLength(IReadOnlyList<MapNode> nodes)
    {
        var length = Math.Max(0, nodes.Count - 1); // the commas
        foreach (var node in nodes)
        {
            length += JsonOf(node).Length;
        }

        return length;
    }

    private static (JsonPropertyInfo, JsonTypeInfo)[] Describe()
    {
        if (!Supported)
        {
            throw new InvalidOperationException("ControlJsonContext's options changed: MapResponsePlaintext writes WhenWritingNull, unindented JSON only");
        }

        var info = ControlJsonContext.Default.MapResponse;
        return [.. info.Properties.Select(p => (p, ControlJsonContext.Default.GetTypeInfo(p.PropertyType)
            ?? throw new InvalidOperationException($"no JSON metadata for {p.PropertyType} ({p.Name})")))];
    }

    /// <summary>A run of the inline buffer (<see cref="Nodes"/> null), or a list of shared peer entries.</summary>
    private readonly record struct Part(int Start, int End, IReadOnlyList<MapNode>? Nodes);

    /// <summary>An <see cref="IBufferWriter{T}"/> on arrays from the shared pool.</summary>
    private sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
    {
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(1024);

        public int WrittenCount { get; private set; }

        public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, WrittenCount);

        public void Advance(int count) => WrittenCount += count;

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            Grow(sizeHint);
            return _buffer.AsMemory(WrittenCount);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Grow(sizeHint);
            return _buffer.AsSpan(WrittenCount);
        }

        private void Grow(int sizeHint)
        {
            var need = WrittenCount + Math.Max(sizeHint, 1);
            if (need > _buffer.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(need, _buffer.Length * 2));
                _buffer.AsSpan(0, WrittenCount).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
        }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
