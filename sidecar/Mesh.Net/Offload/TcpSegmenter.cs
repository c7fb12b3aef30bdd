using System.Buffers.Binary;

namespace Mesh.Net.Offload;

/// <summary>What <see cref="TcpSegmenter"/> made of a frame read from an offloading TUN.</summary>
internal enum SegmentStatus : byte
{
    /// <summary>One ordinary packet, checksum complete (computed here when the kernel left it partial).</summary>
    Single,

    /// <summary>A TCP super-packet: call <see cref="TcpSegmenter.Next"/> until it returns 0.</summary>
    Segmented,

    /// <summary>A header or GSO type this code does not handle, or lengths that do not add up: drop it.</summary>
    Malformed,
}

/// <summary>
/// Cuts the TCP super-packets an offloading TUN hands us (TSO: up to 64 KB of one flow, with one
/// IP and TCP header and a <see cref="VirtioNetHeader"/> saying the segment size) into the
/// MTU-sized packets that go on the wire, one by one into the caller's buffer, the way a NIC's TSO
/// engine would: every segment gets the headers with its IP length, IPv4 ID (+1 per segment),
/// TCP sequence number and flags (CWR on the first only, FIN and PSH on the last only) fixed and
/// its TCP checksum computed in full (the kernel leaves only the pseudo-header sum, CHECKSUM_PARTIAL).
/// Also completes the partial checksum of an ordinary packet (TUN_F_CSUM). Not here: UDP
/// segmentation (USO is not enabled on the TUN), IPv6 extension headers before TCP (dropped; the
/// kernel does not produce them for TSO of a plain TCP socket).
/// </summary>
/// <remarks>
/// Reference for the behaviour: Linux <c>tcp_gso_segment</c> (net/ipv4/tcp_offload.c) and
/// <c>inet_gso_segment</c>; wireguard-go <c>tun/offload_linux.go</c> (gsoSplit) does the same job.
/// Allocation-free; one instance per reader thread.
/// </remarks>
internal ref struct TcpSegmenter
{
    private const byte TcpFin = 0x01;
    private const byte TcpPsh = 0x08;
    private const byte TcpCwr = 0x80;
    private const int TcpSeqOffset = 4;
    private const int TcpDataOffset = 12;
    private const int TcpFlagsOffset = 13;
    private const int TcpChecksumOffset = 16;
    private const int TcpMinHeader = 20;
    private const int V4HeaderLength = 20;
    private const int V4TotalLength = 2;
    private const int V4Id = 4;
    private const int V4Checksum = 10;
    private const int V4Protocol = 9;
    private const int V4Source = 12;
    private const int V6HeaderLength = 40;
    private const int V6PayloadLength = 4;
    private const int V6NextHeader = 6;
    private const int V6Source = 8;
    private const byte ProtocolTcp = 6;

    private readonly ReadOnlySpan<byte> _packet;
    private readonly int _ipHeaderLength;
    private readonly int _headerLength;
    private readonly int _segmentSize;
    private readonly bool _v4;
    private int _payloadOffset;
    private int _index;

    private TcpSegmenter(ReadOnlySpan<byte> packet, int ipHeaderLength, int headerLength, int segmentSize, bool v4)
    {
        _packet = packet;
        _ipHeaderLength = ipHeaderLength;
        _headerLength = headerLength;
        _segmentSize = segmentSize;
        _v4 = v4;
        _payloadOffset = headerLength;
        _index = 0;
    }

    /// <summary>The largest segment <see cref="Next"/> writes: headers plus one segment of payload.</summary>
    public readonly int MaxSegmentLength => _headerLength + _segmentSize;

    /// <summary>
    /// Looks at one frame (virtio-net header + packet) read from the TUN. For an ordinary packet it
    /// completes the checksum in place and sets <paramref name="packet"/> to the IP packet
    /// (<see cref="SegmentStatus.Single"/>); for a TCP super-packet it returns a segmenter to drain.
    /// </summary>
    public static SegmentStatus Start(Span<byte> frame, out Span<byte> packet, out TcpSegmenter segmenter)
    {
        segmenter = default;
        packet = default;
        if (frame.Length < VirtioNetHeader.Size)
        {
            return SegmentStatus.Malformed;
        }

        var header = VirtioNetHeader.Read(frame);
        packet = frame[VirtioNetHeader.Size..];
        switch (header.GsoType)
        {
            case VirtioNetHeader.GsoNone:
                return !header.NeedsChecksum || CompleteChecksum(packet, header.ChecksumStart, header.ChecksumOffset)
                    ? SegmentStatus.Single
                    : SegmentStatus.Malformed;
            case VirtioNetHeader.GsoTcpV4:
            case VirtioNetHeader.GsoTcpV6:
                return StartTcp(packet, header, out segmenter);
            default:
                return SegmentStatus.Malformed;
        }
    }

    /// <summary>
    /// Completes a CHECKSUM_PARTIAL packet: the field at <paramref name="start"/>+<paramref name="offset"/>
    /// holds the pseudo-header sum; the checksum covers everything from <paramref name="start"/> on.
    /// </summary>
    public static bool CompleteChecksum(Span<byte> packet, int start, int offset)
    {
        if (start + offset + 2 > packet.Length || offset < 0)
        {
            return false;
        }

        var sum = InternetChecksum.Add(0, packet[start..]);
        BinaryPrimitives.WriteUInt16BigEndian(packet[(start + offset)..], InternetChecksum.Finish(sum));
        return true;
    }

    private static SegmentStatus StartTcp(ReadOnlySpan<byte> packet, VirtioNetHeader header, out TcpSegmenter segmenter)
    {
        segmenter = default;
        var v4 = header.GsoType == VirtioNetHeader.GsoTcpV4;
        int ipHeaderLength;
        if (v4)
        {
            ipHeaderLength = (packet.Length > 0 ? packet[0] & 0xf : 0) * 4;
            if (packet.Length < V4HeaderLength || packet[0] >> 4 != 4 || ipHeaderLength < V4HeaderLength || packet[V4Protocol] != ProtocolTcp)
            {
                return SegmentStatus.Malformed;
            }
        }
        else
        {
            if (packet.Length < V6HeaderLength || packet[0] >> 4 != 6 || packet[V6NextHeader] != ProtocolTcp)
            {
                return SegmentStatus.Malformed;
            }

            ipHeaderLength = V6HeaderLength;
        }

        if (packet.Length < ipHeaderLength + TcpMinHeader || header.GsoSize == 0)
        {
            return SegmentStatus.Malformed;
        }

        var tcpHeaderLength = (packet[ipHeaderLength + TcpDataOffset] >> 4) * 4;
        var headerLength = ipHeaderLength + tcpHeaderLength;
        if (tcpHeaderLength < TcpMinHeader || packet.Length <= headerLength)
        {
            return SegmentStatus.Malformed;
        }

        segmenter = new TcpSegmenter(packet, ipHeaderLength, headerLength, header.GsoSize, v4);
        return SegmentStatus.Segmented;
    }

    /// <summary>Writes the next segment into <paramref name="output"/> and returns its length; 0 when done (or when output is too small).</summary>
    public int Next(Span<byte> output)
    {
        var remaining = _packet.Length - _payloadOffset;
        if (remaining <= 0)
        {
            return 0;
        }

        var payload = Math.Min(remaining, _segmentSize);
        var length = _headerLength + payload;
        if (output.Length < length)
        {
            return 0;
        }

        var first = _index == 0;
        var last = payload == remaining;
        _packet[.._headerLength].CopyTo(output);
        _packet.Slice(_payloadOffset, payload).CopyTo(output[_headerLength..]);

        var ip = output[.._ipHeaderLength];
        if (_v4)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[V4TotalLength..], (ushort)length);
            var id = BinaryPrimitives.ReadUInt16BigEndian(_packet[V4Id..]);
            BinaryPrimitives.WriteUInt16BigEndian(ip[V4Id..], (ushort)(id + _index));
            ip[V4Checksum] = 0;
            ip[V4Checksum + 1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[V4Checksum..], InternetChecksum.Finish(InternetChecksum.Add(0, ip)));
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[V6PayloadLength..], (ushort)(length - V6HeaderLength));
        }

        var tcp = output[_ipHeaderLength..length];
        var seq = BinaryPrimitives.ReadUInt32BigEndian(_packet[(_ipHeaderLength + TcpSeqOffset)..]);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[TcpSeqOffset..], seq + (uint)(_payloadOffset - _headerLength));
        var flags = tcp[TcpFlagsOffset];
        if (!last)
        {
            flags &= unchecked((byte)~(TcpFin | TcpPsh));
        }

        if (!first)
        {
            flags &= unchecked((byte)~TcpCwr);
        }

        tcp[TcpFlagsOffset] = flags;
        tcp[TcpChecksumOffset] = 0;
        tcp[TcpChecksumOffset + 1] = 0;
        var addressLength = _v4 ? 4 : 16;
        var addresses = _v4 ? ip.Slice(V4Source, 8) : ip.Slice(V6Source, 32);
        var sum = InternetChecksum.PseudoHeader(addresses[..addressLength], addresses[addressLength..], ProtocolTcp, tcp.Length);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpChecksumOffset..], InternetChecksum.Finish(InternetChecksum.Add(sum, tcp)));

        _payloadOffset += payload;
        _index++;
        return length;
    }
}
