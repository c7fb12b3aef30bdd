using System.Text;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// Thread-safe text sink for a child's stdout or stderr. Keeps the head and the tail when the
/// output grows past <see cref="Limit"/>, so a chatty child cannot exhaust memory while a failure
/// message still shows how it started and how it ended.
/// </summary>
internal sealed class CapturedOutput
{
    internal const int Limit = 256 * 1024;

    private readonly Lock _lock = new();
    private readonly StringBuilder _head = new();
    private readonly Queue<string> _tail = new();
    private int _tailChars;
    private long _droppedLines;

    public void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            if (_head.Length < Limit / 2)
            {
                _head.Append(line).Append('\n');
                return;
            }

            _tail.Enqueue(line);
            _tailChars += line.Length + 1;
            while (_tailChars > Limit / 2 && _tail.Count > 1)
            {
                _tailChars -= _tail.Dequeue().Length + 1;
                _droppedLines++;
            }
        }
    }

    public override string ToString()
    {
        lock (_lock)
        {
            var text = new StringBuilder(_head.Length + _tailChars + 64).Append(_head);
            if (_droppedLines > 0)
            {
                text.Append("… ").Append(_droppedLines).Append(" lines dropped …\n");
            }

            foreach (var line in _tail)
            {
                text.Append(line).Append('\n');
            }

            return text.ToString();
        }
    }
}
