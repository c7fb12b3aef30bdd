using System.Runtime.InteropServices;

namespace Mesh.Net.Linux;

/// <summary>
/// A reusable batch of datagram slots for <see cref="BatchUdpSocket"/>: each slot has a fixed buffer,
/// a length and an endpoint (the sender after a receive, the destination for a send). Everything
/// lives in native memory laid out for recvmmsg/sendmmsg, so batches never move and a call
/// allocates nothing.
/// </summary>
/// <remarks>
/// <para>UDP offloads: a slot may hold several datagrams of one size back to back (the last may be
/// shorter), sent as one UDP GSO message (<see cref="SetSegmentSize"/>, UDP_SEGMENT); after a
/// receive on a socket with UDP GRO, <see cref="GetSegmentSize"/> says the size of the coalesced
/// datagrams a slot holds. Both need slots of up to 64 KB.</para>
/// Not thread-safe: one batch belongs to one thread at a time. Slot buffers stay valid until
/// <see cref="Dispose"/>.
/// </remarks>
public sealed unsafe class PacketBatch : IDisposable
{
    // One header block: mmsghdr[count] | iovec[count] | sockaddr_in6[count] | int lengths[count] |
    // int segmentSizes[count] | control[count × ControlSize]; and one buffer block: count × bufferSize bytes.
    private const int ControlSize = 32; // CMSG_SPACE(sizeof(int)) = 24, rounded up
    private const int CMsgHeaderSize = 16;
    private MMsgHdr* _messages;
    private IoVec* _iovecs;
    private SockAddrIn6* _addresses;
    private int* _lengths;
    private int* _segmentSizes;
    private byte* _control;
    private byte* _buffers;

    private PacketBatch(int count, int bufferSize)
    {
        Count = count;
        BufferSize = bufferSize;
        nuint messagesBytes = (nuint)(count * sizeof(MMsgHdr));
        nuint iovecBytes = (nuint)(count * sizeof(IoVec));
        nuint addressBytes = (nuint)(count * sizeof(SockAddrIn6));
        nuint lengthBytes = (nuint)(count * sizeof(int));
        nuint addressOffset = messagesBytes + iovecBytes;
        nuint lengthOffset = (addressOffset + addressBytes + 7) & ~(nuint)7;
        nuint segmentOffset = lengthOffset + lengthBytes;
        nuint controlOffset = (segmentOffset + lengthBytes + 7) & ~(nuint)7;
        nuint total = controlOffset + (nuint)(count * ControlSize);
        byte* headers = (byte*)NativeMemory.AlignedAlloc(total, 64);
        NativeMemory.Clear(headers, total);
        _messages = (MMsgHdr*)headers;
        _iovecs = (IoVec*)(headers + messagesBytes);
        _addresses = (SockAddrIn6*)(headers + addressOffset);
        _lengths = (int*)(headers + lengthOffset);
        _segmentSizes = (int*)(headers + segmentOffset);
        _control = headers + controlOffset;
        _buffers = (byte*)NativeMemory.AlignedAlloc((nuint)count * (nuint)bufferSize, 64);
        for (int i = 0; i < count; i++)
        {
            _iovecs[i].Base = _buffers + (nint)i * bufferSize;
            _messages[i].Header.Name = &_addresses[i];
            _messages[i].Header.Iov = &_iovecs[i];
            _messages[i].Header.IovLength = 1;
            _addresses[i].Family = Native.AF_INET6;
        }
    }

    ~PacketBatch() => Free();

    /// <summary>The number of slots.</summary>
    public int Count { get; }

    /// <summary>The size of each slot's buffer: the largest datagram a slot holds.</summary>
    public int BufferSize { get; }

    public static PacketBatch Create(int count, int bufferSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 1024); // UIO_MAXIOV: sendmmsg/recvmmsg take no more
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bufferSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bufferSize, 65535);
        return new PacketBatch(count, bufferSize);
    }

    /// <summary>Slot <paramref name="index"/>: <c>batch[i].Buffer</c>, <c>batch[i].Datagram</c>, <c>batch[i].Length</c>, <c>batch[i].Endpoint</c>.</summary>
    public PacketSlot this[int index]
    {
        get
        {
            CheckIndex(index);
            return new PacketSlot(this, index);
        }
    }

    /// <summary>The slot's whole buffer (<see cref="BufferSize"/> bytes): fill it before a send.</summary>
    public Span<byte> GetBuffer(int index)
    {
        CheckIndex(index);
        return new Span<byte>(_iovecs[index].Base, BufferSize);
    }

    /// <summary>The slot's datagram: the first <see cref="GetLength"/> bytes of its buffer.</summary>
    public Span<byte> GetDatagram(int index)
    {
        CheckIndex(index);
        return new Span<byte>(_iovecs[index].Base, _lengths[index]);
    }

    public int GetLength(int index)
    {
        CheckIndex(index);
        return _lengths[index];
    }

    public void SetLength(int index, int length)
    {
        CheckIndex(index);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, BufferSize);
        _lengths[index] = length;
    }

    /// <summary>
    /// After a receive: the size of each datagram the kernel coalesced into this slot (UDP GRO; the
    /// last may be shorter), or 0 when the slot holds one datagram.
    /// </summary>
    public int GetSegmentSize(int index)
    {
        CheckIndex(index);
        return _segmentSizes[index];
    }

    /// <summary>
    /// Before a send: the slot holds datagrams of <paramref name="size"/> bytes back to back (the last
    /// may be shorter), sent as one UDP GSO message; 0 (the default) sends the slot as one datagram.
    /// Only for sockets where <see cref="BatchUdpSocket.GsoEnabled"/> holds.
    /// </summary>
    public void SetSegmentSize(int index, int size)
    {
        CheckIndex(index);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, ushort.MaxValue);
        _segmentSizes[index] = size;
    }

    public UdpEndpoint GetEndpoint(int index)
    {
        CheckIndex(index);
        return UdpEndpoint.FromSockAddr(&_addresses[index]);
    }

    public void SetEndpoint(int index, in UdpEndpoint endpoint)
    {
        CheckIndex(index);
        endpoint.WriteTo(&_addresses[index]);
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>Resets slots 0..count-1 to receive: full buffers, room for any sockaddr.</summary>
    internal MMsgHdr* PrepareReceive(int count)
    {
        ObjectDisposedException.ThrowIf(_messages == null, this);
        for (int i = 0; i < count; i++)
        {
            _iovecs[i].Length = (nuint)BufferSize;
            _messages[i].Header.NameLength = (uint)sizeof(SockAddrIn6);
            _messages[i].Header.Control = _control + i * ControlSize;
            _messages[i].Header.ControlLength = ControlSize;
            _messages[i].Header.Flags = 0;
            _messages[i].Length = 0;
        }
        return _messages;
    }

    /// <summary>Records what recvmmsg filled in: each slot's length (a truncated datagram keeps what fit).</summary>
    internal void CompleteReceive(int received)
    {
        for (int i = 0; i < received; i++)
        {
            _lengths[i] = (int)Math.Min(_messages[i].Length, (uint)BufferSize);
            _segmentSizes[i] = 0;
            if (_messages[i].Header.ControlLength >= CMsgHeaderSize + sizeof(int))
            {
                var cmsg = (CMsgHdr*)_messages[i].Header.Control;
                if (cmsg->Level == Native.SOL_UDP && cmsg->Type == Native.UDP_GRO)
                {
                    int size = *(int*)((byte*)cmsg + CMsgHeaderSize);
                    _segmentSizes[i] = size > 0 && size < _lengths[i] ? size : 0;
                }
            }
        }
    }

    /// <summary>Datagrams slot <paramref name="index"/> carries as sent: its GSO segments, or 1.</summary>
    internal int DatagramsIn(int index)
    {
        int size = _segmentSizes[index];
        return size > 0 && size < _lengths[index] ? (_lengths[index] + size - 1) / size : 1;
    }

    internal byte* BufferPointer(int index) => (byte*)_iovecs[index].Base;

    /// <summary>Points slots 0..count-1 at their lengths and destinations for sendmmsg.</summary>
    internal MMsgHdr* PrepareSend(int count)
    {
        ObjectDisposedException.ThrowIf(_messages == null, this);
        for (int i = 0; i < count; i++)
        {
            _iovecs[i].Length = (nuint)_lengths[i];
            _messages[i].Header.NameLength = (uint)sizeof(SockAddrIn6);
            _messages[i].Header.Flags = 0;
            if (_segmentSizes[i] > 0 && _segmentSizes[i] < _lengths[i])
            {
                var cmsg = (CMsgHdr*)(_control + i * ControlSize);
                cmsg->Length = (nuint)(CMsgHeaderSize + sizeof(ushort));
                cmsg->Level = Native.SOL_UDP;
                cmsg->Type = Native.UDP_SEGMENT;
                *(ushort*)((byte*)cmsg + CMsgHeaderSize) = (ushort)_segmentSizes[i];
                _messages[i].Header.Control = cmsg;
                _messages[i].Header.ControlLength = CMsgHeaderSize + 8; // CMSG_SPACE(sizeof(uint16_t))
            }
            else
            {
                _messages[i].Header.Control = null;
                _messages[i].Header.ControlLength = 0;
            }
        }
        return _messages;
    }

    private void CheckIndex(int index)
    {
        ObjectDisposedException.ThrowIf(_messages == null, this);
        if ((uint)index >= (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the batch has {Count} slots");
        }
    }

    private void Free()
    {
        if (_messages != null)
        {
            NativeMemory.AlignedFree(_messages);
            NativeMemory.AlignedFree(_buffers);
            _messages = null;
            _iovecs = null;
            _addresses = null;
            _lengths = null;
            _segmentSizes = null;
            _control = null;
            _buffers = null;
        }
    }
}

/// <summary>
/// A read view of one slot of a <see cref="PacketBatch"/>, valid while the batch is; set a slot with
/// <see cref="PacketBatch.SetLength"/> and <see cref="PacketBatch.SetEndpoint"/>.
/// </summary>
public readonly ref struct PacketSlot
{
    private readonly PacketBatch _batch;
    private readonly int _index;

    internal PacketSlot(PacketBatch batch, int index)
    {
        _batch = batch;
        _index = index;
    }

    /// <summary>The whole buffer, <see cref="PacketBatch.BufferSize"/> bytes.</summary>
    public Span<byte> Buffer => _batch.GetBuffer(_index);

    /// <summary>The datagram: the first <see cref="Length"/> bytes of <see cref="Buffer"/>.</summary>
    public Span<byte> Datagram => _batch.GetDatagram(_index);

    public int Length => _batch.GetLength(_index);

    /// <summary>The sender after a receive; the destination for a send.</summary>
    public UdpEndpoint Endpoint => _batch.GetEndpoint(_index);
}
