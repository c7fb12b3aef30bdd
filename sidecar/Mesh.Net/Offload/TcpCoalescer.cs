using System.Buffers.Binary;

namespace Mesh.Net.Offload;

/// <summary>Where <see cref="TcpCoalescer"/> writes: an offloading TUN (every frame starts with a <see cref="VirtioNetHeader"/>).</summary>
internal interface ITunFrameWriter
{
    /// <summary>Writes one frame: a virtio-net header and the packet after it.</summary>
    void WriteFrame(ReadOnlySpan<byte> frame);

    /// <summary>Writes one ordinary IP packet (the writer puts an all-zero virtio-net header before it).</summary>
    void WritePacket(ReadOnlySpan<byte> packet);
}

/// <summary>
/// Generic receive offload for the TUN write path: consecutive TCP segments of one flow, decrypted
/// from one UDP batch, are merged into one super-packet (one IP and TCP header, payloads back to
/// back, up to 64 KB) and written with a virtio-net header (GSO_TCPV4/6, NEEDS_CSUM), so the
/// kernel takes many segments in one write and one pass through its stack. Everything else is
/// written as it came. Call <see cref="Add"/> for each packet and <see cref="Flush"/> at the end of
/// the batch; packets of one flow keep their order.
/// </summary>
/// <remarks>
/// <para>The merge rules are Linux's <c>tcp_gro_receive</c> (net/ipv4/tcp_offload.c): same
/// addresses, ports, IP header fields (TOS/TTL/DF, or traffic class/flow label/hop limit), same ACK
/// number and identical TCP options; the next segment's sequence number follows on; no SYN, RST,
/// URG or CWR; a segment longer than the first ends the merge before it, a shorter one or one with
/// PSH or FIN ends it after it (its PSH/FIN go onto the super-packet). Packets with IPv4 options or
/// IPv6 extension headers are not merged. wireguard-go's <c>tun/offload_linux.go</c> applies the
/// same rules.</para>
/// <para>The merged packet's TCP checksum is left partial (pseudo-header sum, NEEDS_CSUM), as a
/// NIC doing GRO would: the segments came out of an authenticated WireGuard session, so (like the
/// kernel's WireGuard, which marks them CHECKSUM_UNNECESSARY) their checksums are not re-verified.
/// A lone packet is written unchanged with a zero header, and the kernel checks it as usual.</para>
/// <para>Not thread-safe: one per writer thread. Add and Flush allocate nothing.</para>
/// </remarks>
internal sealed class TcpCoalescer
{
    /// <summary>Flows merged at once; a packet of one more flow writes out the oldest.</summary>
    public const int MaxFlows = 8;

    /// <summary>Largest merged IP packet: the IPv4 total length (and IPv6 payload length) field.</summary>
    public const int MaxPacket = 65535;

    private const byte TcpFin = 0x01;
    private const byte TcpSyn = 0x02;
    private const byte TcpRst = 0x04;
    private const byte TcpPsh = 0x08;
    private const byte TcpAck = 0x10;
    private const byte TcpUrg = 0x20;
    private const byte TcpCwr = 0x80;
    private const int TcpSeqOffset = 4;
    private const int TcpAckOffset = 8;
    private const int TcpDataOffset = 12;
    private const int TcpFlagsOffset = 13;
    private const int TcpChecksumOffset = 16;
    private const int TcpMinHeader = 20;
    private const byte ProtocolTcp = 6;

    private readonly ITunFrameWriter _writer;
    private readonly Flow[] _flows = new Flow[MaxFlows];
    private int _active;
    private int _evict;

    public TcpCoalescer(ITunFrameWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
        for (var i = 0; i < MaxFlows; i++)
        {
            _flows[i] = new Flow();
        }
    }

    /// <summary>Super-packets written (each merged from two or more segments).</summary>
    public long Merged { get; private set; }

    /// <summary>Segments that went into them.</summary>
    public long MergedSegments { get; private set; }

    /// <summary>Takes one decrypted IP packet: merges it, holds it for merging, or writes it.</summary>
    public void Add(ReadOnlySpan<byte> packet)
    {
        if (!TryParse(packet, out var ipHeaderLength, out var tcpHeaderLength, out var v4))
        {
            if (v4 is not null && _active > 0)
            {
                // TCP we do not merge (a SYN, a pure ACK, …): what is held of its flow goes first.
                FlushFlowOf(packet, v4.Value, ipHeaderLength);
            }

            _writer.WritePacket(packet);
            return;
        }

        var headerLength = ipHeaderLength + tcpHeaderLength;
        var payload = packet.Length - headerLength;
        var flags = packet[ipHeaderLength + TcpFlagsOffset];
        for (var i = 0; i < _active; i++)
        {
            var flow = _flows[i];
            if (!flow.SameFlow(packet, v4!.Value, ipHeaderLength))
            {
                continue;
            }

            if (flow.CanAppend(packet, ipHeaderLength, tcpHeaderLength, payload))
            {
                flow.Append(packet.Slice(headerLength, payload), flags);
                if (flow.Closed)
                {
                    WriteAndRemove(i);
                }

                return;
            }

            WriteAndRemove(i);
            break;
        }

        if (_active == MaxFlows)
        {
            WriteAndRemove(_evict);
            _evict = (_evict + 1) % MaxFlows;
        }

        var started = _flows[_active];
        started.Start(packet, v4!.Value, ipHeaderLength, tcpHeaderLength, flags);
        if (started.Closed)
        {
            // PSH or FIN on the first segment: nothing may follow it.
            _writer.WritePacket(packet);
            return;
        }

        _active++;
    }

    /// <summary>Writes everything held (the end of a receive batch).</summary>
    public void Flush()
    {
        for (var i = 0; i < _active; i++)
        {
            Write(_flows[i]);
        }

        _active = 0;
        _evict = 0;
    }

    private void FlushFlowOf(ReadOnlySpan<byte> packet, bool v4, int ipHeaderLength)
    {
        for (var i = 0; i < _active; i++)
        {
            if (_flows[i].SameFlow(packet, v4, ipHeaderLength))
            {
                WriteAndRemove(i);
                return;
            }
        }
    }

    private void WriteAndRemove(int index)
    {
        var flow = _flows[index];
        Write(flow);

        // Keep the held flows in 0.._active-1; the order between flows does not matter.
        _active--;
        _flows[index] = _flows[_active];
        _flows[_active] = flow;
        if (_evict >= _active)
        {
            _evict = 0;
        }
    }

    private void Write(Flow flow)
    {
        if (flow.Segments == 1)
        {
            _writer.WritePacket(flow.Packet);
            return;
        }

        Merged++;
        MergedSegments += flow.Segments;
        _writer.WriteFrame(flow.Finish());
    }

    /// <summary>
    /// TCP a merge can start from or extend: IPv4 without options and not a fragment, or IPv6 with
    /// TCP right after the fixed header; ACK set, no SYN/RST/URG/CWR, some payload. <paramref name="v4"/>
    /// is null for anything that is not TCP at all.
    /// </summary>
    private static bool TryParse(ReadOnlySpan<byte> packet, out int ipHeaderLength, out int tcpHeaderLength, out bool? v4)
    {
        ipHeaderLength = 0;
        tcpHeaderLength = 0;
        v4 = null;
        if (packet.Length < 40)
        {
            return false;
        }

        var version = packet[0] >> 4;
        if (version == 4)
        {
            if (packet[9] != ProtocolTcp)
            {
                return false;
            }

            ipHeaderLength = (packet[0] & 0xf) * 4;
            v4 = true;
            if (ipHeaderLength != 20 || BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != packet.Length
                || (BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & 0x3fff) != 0)
            {
                return false; // options, a length that disagrees, or a fragment (MF or an offset)
            }
        }
        else if (version == 6)
        {
            if (packet[6] != ProtocolTcp || packet.Length < 60)
            {
                return false;
            }

            ipHeaderLength = 40;
            v4 = false;
            if (BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) != packet.Length - 40)
            {
                return false;
            }
        }
        else
        {
            return false;
        }

        tcpHeaderLength = (packet[ipHeaderLength + TcpDataOffset] >> 4) * 4;
        var flags = packet[ipHeaderLength + TcpFlagsOffset];
        return tcpHeaderLength >= TcpMinHeader
            && packet.Length > ipHeaderLength + tcpHeaderLength
            && (flags & TcpAck) != 0
            && (flags & (TcpSyn | TcpRst | TcpUrg | TcpCwr)) == 0;
    }

    /// <summary>One flow being merged: its super-packet, built in place after room for the virtio-net header.</summary>
    private sealed class Flow
    {
        private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(VirtioNetHeader.Size + MaxPacket, pinned: true);
        private int _length;
        private bool _v4;
        private int _ipHeaderLength;
        private int _tcpHeaderLength;
        private int _segmentSize;
        private uint _nextSeq;
        private bool _lastShort;

        public int Segments { get; private set; }

        public bool Closed { get; private set; }

        public ReadOnlySpan<byte> Packet => _buffer.AsSpan(VirtioNetHeader.Size, _length);

        public void Start(ReadOnlySpan<byte> packet, bool v4, int ipHeaderLength, int tcpHeaderLength, byte flags)
        {
            packet.CopyTo(_buffer.AsSpan(VirtioNetHeader.Size));
            _length = packet.Length;
            _v4 = v4;
            _ipHeaderLength = ipHeaderLength;
            _tcpHeaderLength = tcpHeaderLength;
            _segmentSize = packet.Length - ipHeaderLength - tcpHeaderLength;
            _nextSeq = BinaryPrimitives.ReadUInt32BigEndian(packet[(ipHeaderLength + TcpSeqOffset)..]) + (uint)_segmentSize;
            _lastShort = false;
            Segments = 1;
            Closed = (flags & (TcpPsh | TcpFin)) != 0;
        }

        /// <summary>Same IP version, addresses and ports (IPv4: bytes 12-19; IPv6: 8-39; then the port pair).</summary>
        public bool SameFlow(ReadOnlySpan<byte> packet, bool v4, int ipHeaderLength)
        {
            if (v4 != _v4 || ipHeaderLength != _ipHeaderLength || packet.Length < ipHeaderLength + 4)
            {
                return false;
            }

            var held = Packet;
            var addresses = v4 ? 12..20 : 8..40;
            return packet[addresses].SequenceEqual(held[addresses])
                && packet.Slice(ipHeaderLength, 4).SequenceEqual(held.Slice(ipHeaderLength, 4));
        }

        public bool CanAppend(ReadOnlySpan<byte> packet, int ipHeaderLength, int tcpHeaderLength, int payload)
        {
            var held = Packet;
            if (tcpHeaderLength != _tcpHeaderLength || _lastShort || payload > _segmentSize || _length + payload > MaxPacket)
            {
                return false;
            }

            if (_v4)
            {
                // TOS (ECN marks included), the DF bit and TTL must agree (tcp_gro_receive via inet_gro_receive).
                if (packet[1] != held[1] || (packet[6] & 0x40) != (held[6] & 0x40) || packet[8] != held[8])
                {
                    return false;
                }
            }
            else if (!packet[..4].SequenceEqual(held[..4]) || packet[7] != held[7])
            {
                return false; // traffic class and flow label, hop limit
            }

            var tcp = packet[ipHeaderLength..];
            var heldTcp = held[ipHeaderLength..];
            return BinaryPrimitives.ReadUInt32BigEndian(tcp[TcpSeqOffset..]) == _nextSeq
                && tcp.Slice(TcpAckOffset, 4).SequenceEqual(heldTcp.Slice(TcpAckOffset, 4))
                && ((tcp[TcpFlagsOffset] ^ heldTcp[TcpFlagsOffset]) & ~(TcpPsh | TcpFin)) == 0
                && tcp[TcpMinHeader..tcpHeaderLength].SequenceEqual(heldTcp[TcpMinHeader..tcpHeaderLength]);
        }

        public void Append(ReadOnlySpan<byte> payload, byte flags)
        {
            payload.CopyTo(_buffer.AsSpan(VirtioNetHeader.Size + _length));
            _length += payload.Length;
            _nextSeq += (uint)payload.Length;
            _lastShort = payload.Length < _segmentSize;
            Segments++;
            if ((flags & (TcpPsh | TcpFin)) != 0)
            {
                _buffer[VirtioNetHeader.Size + _ipHeaderLength + TcpFlagsOffset] |= (byte)(flags & (TcpPsh | TcpFin));
                Closed = true;
            }
        }

        /// <summary>Fixes the IP length (and IPv4 header checksum), leaves the TCP checksum partial, writes the virtio-net header: the frame to write.</summary>
        public ReadOnlySpan<byte> Finish()
        {
            var packet = _buffer.AsSpan(VirtioNetHeader.Size, _length);
            var tcpLength = _length - _ipHeaderLength;
            ulong pseudo;
            if (_v4)
            {
                BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)_length);
                packet[10] = 0;
                packet[11] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(packet[10..], InternetChecksum.Finish(InternetChecksum.Add(0, packet[..20])));
                pseudo = InternetChecksum.PseudoHeader(packet[12..16], packet[16..20], ProtocolTcp, tcpLength);
            }
            else
            {
                BinaryPrimitives.WriteUInt16BigEndian(packet[4..], (ushort)tcpLength);
                pseudo = InternetChecksum.PseudoHeader(packet[8..24], packet[24..40], ProtocolTcp, tcpLength);
            }

            BinaryPrimitives.WriteUInt16BigEndian(packet[(_ipHeaderLength + TcpChecksumOffset)..], InternetChecksum.Fold(pseudo));
            new VirtioNetHeader(
                VirtioNetHeader.FlagNeedsChecksum,
                _v4 ? VirtioNetHeader.GsoTcpV4 : VirtioNetHeader.GsoTcpV6,
                (ushort)(_ipHeaderLength + _tcpHeaderLength),
                (ushort)_segmentSize,
                (ushort)_ipHeaderLength,
                TcpChecksumOffset).Write(_buffer);
            return _buffer.AsSpan(0, VirtioNetHeader.Size + _length);
        }
    }
}
