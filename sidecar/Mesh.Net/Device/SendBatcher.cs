using Mesh.Net.Linux;

namespace Mesh.Net.Device;

/// <summary>
/// Collects the encrypted datagrams of one TUN burst for one sendmmsg, packing runs of same-size
/// datagrams to one endpoint into one slot, sent as one UDP GSO message (UDP_SEGMENT): the kernel
/// then walks its UDP/IP stack once per run instead of once per datagram, and a receiver with UDP
/// GRO gets the run back as one read. Without GSO every slot holds one datagram, as before.
/// </summary>
/// <remarks>
/// Use: <see cref="Reserve"/> a buffer, encrypt into it, then <see cref="Commit"/> what was written
/// (or nothing, when the datagram went elsewhere), and <see cref="Flush"/> at the end of the burst.
/// A run ends at a change of endpoint, a datagram longer than the run's first, after a shorter one
/// (the kernel lets only the last segment be short), at <see cref="MaxSegments"/>, or when the next
/// datagram could take the message past <see cref="MaxMessageBytes"/>. One thread; no allocation.
/// </remarks>
internal sealed class SendBatcher : IDisposable
{
    /// <summary>Segments per GSO message: the kernel's UDP_MAX_SEGMENTS was 64 before 6.x raised it.</summary>
    public const int MaxSegments = 64;

    /// <summary>Bytes per GSO message: below the 65,507 a UDP payload may have over IPv4.</summary>
    public const int MaxMessageBytes = 65000;

    private readonly PacketBatch _batch;
    private readonly int _capacity;
    private readonly Action<PacketBatch, int> _send;
    private int _slot;
    private int _offset;
    private int _segments;
    private int _segmentSize;
    private bool _short;
    private UdpEndpoint _endpoint;

    /// <param name="slots">Messages per sendmmsg.</param>
    /// <param name="slotBytes">Bytes per slot: <see cref="MaxMessageBytes"/> or more for GSO runs, else one datagram's worth.</param>
    /// <param name="send">Sends slots 0..count-1 of the batch (called from Flush, and when the slots run out).</param>
    public SendBatcher(int slots, int slotBytes, Action<PacketBatch, int> send)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 2);
        ArgumentNullException.ThrowIfNull(send);
        _batch = PacketBatch.Create(slots, slotBytes);
        _capacity = Math.Min(slotBytes, MaxMessageBytes);
        _send = send;
    }

    /// <summary>Datagrams committed since the last flush, in runs or alone.</summary>
    public int Pending { get; private set; }

    /// <summary>Room for one datagram of up to <paramref name="maxLength"/> bytes, after what the current slot holds.</summary>
    public Span<byte> Reserve(int maxLength)
    {
        if (_segments > 0 && (_short || _segments == MaxSegments || _offset + maxLength > _capacity))
        {
            CloseSlot();
        }

        if (_slot == _batch.Count)
        {
            Flush();
        }

        return _batch.GetBuffer(_slot).Slice(_offset, Math.Min(maxLength, _batch.BufferSize - _offset));
    }

    /// <summary>
    /// The last <see cref="Reserve"/>d buffer now holds a datagram of <paramref name="length"/> bytes
    /// for <paramref name="endpoint"/>; <paramref name="gso"/> false keeps it alone in its slot.
    /// </summary>
    public void Commit(int length, in UdpEndpoint endpoint, bool gso)
    {
        Pending++;
        if (_segments > 0 && gso && endpoint == _endpoint && length <= _segmentSize)
        {
            _offset += length;
            _segments++;
            _short = length < _segmentSize;
            return;
        }

        if (_segments > 0)
        {
            // It cannot join the run: it opens the next slot (rare: another peer, or a longer datagram).
            var from = _slot;
            var at = _offset;
            CloseSlot();
            if (_slot == _batch.Count)
            {
                Flush();
                Pending = 1;
            }

            _batch.GetBuffer(from).Slice(at, length).CopyTo(_batch.GetBuffer(_slot));
        }

        _endpoint = endpoint;
        _segmentSize = length;
        _segments = 1;
        _offset = length;
        _short = false;
        if (!gso)
        {
            CloseSlot();
        }
    }

    /// <summary>Sends everything committed.</summary>
    public void Flush()
    {
        CloseSlot();
        if (_slot > 0)
        {
            _send(_batch, _slot);
        }

        _slot = 0;
        Pending = 0;
    }

    public void Dispose() => _batch.Dispose();

    private void CloseSlot()
    {
        if (_segments == 0)
        {
            return;
        }

        _batch.SetLength(_slot, _offset);
        _batch.SetEndpoint(_slot, _endpoint);
        _batch.SetSegmentSize(_slot, _segments > 1 ? _segmentSize : 0);
        _slot++;
        _offset = 0;
        _segments = 0;
        _short = false;
    }
}
