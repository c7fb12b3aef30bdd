using System.Net.Sockets;
using System.Text;

namespace Mesh.Net.Uapi;

/// <summary>How a <see cref="UapiLineReader.ReadLineAsync"/> ended.</summary>
internal enum UapiLineStatus
{
    Line,
    EndOfStream,
    TooLong,
}

/// <summary>
/// Reads <c>\n</c>-terminated lines from a socket with a hard length limit, so a client cannot
/// make the server buffer without bound. Bytes are mapped one to one onto chars (Latin-1): the
/// protocol is ASCII, and anything else fails to parse later as an unknown key or bad value.
/// </summary>
internal sealed class UapiLineReader(Socket socket, int maxLineLength)
{
    private readonly byte[] _buffer = new byte[Math.Max(maxLineLength + 1, 512)];
    private int _start;
    private int _end;

    /// <summary>Returns the next line without its newline. A partial last line counts as end of stream.</summary>
    public async ValueTask<(UapiLineStatus Status, string Line)> ReadLineAsync(CancellationToken cancellationToken)
    {
        var scanFrom = _start;
        while (true)
        {
            var newline = _buffer.AsSpan(scanFrom, _end - scanFrom).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                newline += scanFrom;
                if (newline - _start > maxLineLength)
                {
                    return (UapiLineStatus.TooLong, string.Empty);
                }

                var line = Encoding.Latin1.GetString(_buffer, _start, newline - _start);
                _start = newline + 1;
                return (UapiLineStatus.Line, line);
            }

            if (_end - _start > maxLineLength)
            {
                return (UapiLineStatus.TooLong, string.Empty);
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            scanFrom = _end;
            var read = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return (UapiLineStatus.EndOfStream, string.Empty);
            }

            _end += read;
        }
    }
}
