using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ARSoft.Tools.Net.Dns;

namespace Mesh.Sidecar.Tests.Dns;

/// <summary>
/// Hand-built DNS messages for the tests, independent of the library the server uses, so a test
/// controls every byte it sends (RFC 1035 §4.1).
/// </summary>
/// <remarks>
/// <code>
///  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15   (bits, two octets per row)
/// |                      ID                       |
/// |QR|  Opcode   |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
/// |                    QDCOUNT                    |
/// |                    ANCOUNT                    |
/// |                    NSCOUNT                    |
/// |                    ARCOUNT                    |
/// then QDCOUNT questions: QNAME (labels), QTYPE (2), QCLASS (2); then records.
/// </code>
/// </remarks>
internal static class DnsWire
{
    public const int HeaderLength = 12;
    public const ushort TypeA = 1;
    public const ushort TypePtr = 12;
    public const ushort TypeMx = 15;
    public const ushort TypeTxt = 16;
    public const ushort TypeAaaa = 28;
    public const ushort TypeOpt = 41;
    public const ushort ClassIn = 1;

    /// <summary>A standard query with RD set; with <paramref name="ednsPayload"/>, an OPT record advertising it.</summary>
    public static byte[] Query(ushort id, string name, ushort type, ushort? ednsPayload = null)
    {
        var message = new List<byte>(64);
        AddUInt16(message, id);
        AddUInt16(message, 0x0100); // RD
        AddUInt16(message, 1);
        AddUInt16(message, 0);
        AddUInt16(message, 0);
        AddUInt16(message, (ushort)(ednsPayload is null ? 0 : 1));
        AddName(message, name);
        AddUInt16(message, type);
        AddUInt16(message, ClassIn);
        if (ednsPayload is { } payload)
        {
            message.Add(0); // root owner
            AddUInt16(message, TypeOpt);
            AddUInt16(message, payload); // CLASS carries the UDP payload size (RFC 6891 §6.1.2)
            AddUInt16(message, 0);
            AddUInt16(message, 0); // TTL: extended RCODE, version, flags
            AddUInt16(message, 0); // RDLENGTH
        }

        return [.. message];
    }

    public static ushort Id(ReadOnlySpan<byte> message) => BinaryPrimitives.ReadUInt16BigEndian(message);

    public static bool IsTruncated(ReadOnlySpan<byte> message) => (message[2] & 0x02) != 0;

    /// <summary>Offset just past the first question, or -1 when the message is too short.</summary>
    public static int EndOfFirstQuestion(ReadOnlySpan<byte> message)
    {
        var at = HeaderLength;
        while (at < message.Length)
        {
            var length = message[at];
            if (length == 0)
            {
                at += 1 + 4;
                return at <= message.Length ? at : -1;
            }

            if ((length & 0xC0) != 0)
            {
                return -1;
            }

            at += 1 + length;
        }

        return -1;
    }

    /// <summary>The first question's name (dotted, no trailing dot) and type.</summary>
    public static (string Name, ushort Type) FirstQuestion(ReadOnlySpan<byte> message)
    {
        var at = HeaderLength;
        var name = new StringBuilder();
        while (message[at] != 0)
        {
            var length = message[at];
            if (name.Length > 0)
            {
                name.Append('.');
            }

            name.Append(Encoding.ASCII.GetString(message.Slice(at + 1, length)));
            at += 1 + length;
        }

        return (name.ToString(), BinaryPrimitives.ReadUInt16BigEndian(message[(at + 1)..]));
    }

    /// <summary>
    /// A response to <paramref name="query"/>: the query's header and question, QR and RA set,
    /// and one record per address (A or AAAA) with a compression pointer to the question's name.
    /// </summary>
    public static byte[] Answer(ReadOnlySpan<byte> query, int rcode, uint ttl, params IPAddress[] addresses)
    {
        var end = EndOfFirstQuestion(query);
        var message = new List<byte>(end + (addresses.Length * 28));
        message.AddRange(query[..end]);
        message[2] = (byte)(0x80 | (query[2] & 0x01)); // QR, RD copied
        message[3] = (byte)(0x80 | (rcode & 0x0F)); // RA, RCODE
        message[6] = (byte)(addresses.Length >> 8);
        message[7] = (byte)addresses.Length;
        message[8] = message[9] = message[10] = message[11] = 0; // no authority, no additional
        foreach (var address in addresses)
        {
            var bytes = address.GetAddressBytes();
            AddUInt16(message, 0xC000 | HeaderLength); // pointer to the question's name
            AddUInt16(message, bytes.Length == 4 ? TypeA : TypeAaaa);
            AddUInt16(message, ClassIn);
            AddUInt16(message, (ushort)(ttl >> 16));
            AddUInt16(message, (ushort)ttl);
            AddUInt16(message, (ushort)bytes.Length);
            message.AddRange(bytes);
        }

        return [.. message];
    }

    /// <summary>Sends <paramref name="query"/> over UDP and waits up to <paramref name="timeout"/> for the reply with its ID.</summary>
    public static async Task<byte[]?> ExchangeUdpAsync(IPEndPoint server, byte[] query, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Connect(server);
        await socket.SendAsync(query, SocketFlags.None, cancellationToken);
        var buffer = new byte[65535];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
                if (received >= HeaderLength && Id(buffer) == Id(query))
                {
                    return buffer[..received];
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Sends <paramref name="query"/> over TCP (two-octet length prefix, RFC 1035 §4.2.2) and reads one reply.</summary>
    public static async Task<byte[]> ExchangeTcpAsync(IPEndPoint server, byte[] query, CancellationToken cancellationToken)
    {
        using var client = new TcpClient(server.AddressFamily);
        await client.ConnectAsync(server, cancellationToken);
        var stream = client.GetStream();
        var prefix = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(prefix, (ushort)query.Length);
        await stream.WriteAsync(prefix, cancellationToken);
        await stream.WriteAsync(query, cancellationToken);
        await stream.ReadExactlyAsync(prefix, cancellationToken);
        var reply = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await stream.ReadExactlyAsync(reply, cancellationToken);
        return reply;
    }

    /// <summary>Parses a reply with the library, for assertions on its records.</summary>
    public static DnsMessage Parse(byte[] reply) => DnsMessage.Parse(reply);

    private static void AddName(List<byte> message, string name)
    {
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            message.Add((byte)label.Length);
            message.AddRange(Encoding.ASCII.GetBytes(label));
        }

        message.Add(0);
    }

    private static void AddUInt16(List<byte> message, int value)
    {
        message.Add((byte)(value >> 8));
        message.Add((byte)value);
    }
}
