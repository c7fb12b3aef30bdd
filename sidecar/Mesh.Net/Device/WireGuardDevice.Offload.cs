using Mesh.Net.Linux;
using Mesh.Net.Offload;
using Mesh.WireGuard;

namespace Mesh.Net.Device;

// The offloading data path: the TUN hands over TCP super-packets (TSO) that are cut here into
// MTU-sized segments, encrypted, and sent in runs as UDP GSO messages; on the way in, UDP GRO
// returns runs of datagrams and decrypted TCP segments are merged back into super-packets for one
// TUN write each (TcpCoalescer). Why: each TUN read and write is one system call and one pass
// through the kernel's stack, which bounded throughput at one per 1,420-byte packet
// (docs/wireguard.md, "Offloads").
public sealed partial class WireGuardDevice
{
    /// <summary>GSO send slots per sendmmsg: each carries up to 64 KB of datagrams.</summary>
    private const int GsoSendSlots = 16;

    private static readonly byte[] ZeroVirtioHeader = new byte[VirtioNetHeader.Size];

    /// <summary>TUN (frames with a virtio-net header) → segment → encrypt → UDP, in GSO runs.</summary>
    private void TunLoopOffload()
    {
        var frame = GC.AllocateUninitializedArray<byte>(VirtioNetHeader.Size + 65535, pinned: true);
        var segment = GC.AllocateUninitializedArray<byte>(65535, pinned: true);
        var maxDatagram = Math.Max(_tun.Mtu, 1280) + 64;
        var gso = Volatile.Read(ref _udp).GsoEnabled;
        using var batcher = gso
            ? new SendBatcher(GsoSendSlots, SendBatcher.MaxMessageBytes, Flush)
            : new SendBatcher(SendBatchSize, maxDatagram, Flush);
        while (!_stop.IsCancellationRequested)
        {
            var n = _tun.Read(frame);
            if (n <= 0)
            {
                return;
            }

            while (true)
            {
                switch (TcpSegmenter.Start(frame.AsSpan(0, n), out var packet, out var segmenter))
                {
                    case SegmentStatus.Single:
                        EncryptTo(batcher, packet, maxDatagram);
                        break;
                    case SegmentStatus.Segmented:
                        int length;
                        while ((length = segmenter.Next(segment)) > 0)
                        {
                            EncryptTo(batcher, segment.AsSpan(0, length), maxDatagram);
                        }

                        break;
                    default:
                        Interlocked.Increment(ref _drops[(int)DropReason.Malformed]);
                        break;
                }

                n = _tun.TryRead(frame);
                if (n <= 0)
                {
                    break;
                }
            }

            batcher.Flush();
        }
    }

    /// <summary>Encrypts one packet into the batcher (or hands it to the relay).</summary>
    private void EncryptTo(SendBatcher batcher, ReadOnlySpan<byte> packet, int maxDatagram)
    {
        Volatile.Read(ref _filter)?.Outbound(packet);
        var output = batcher.Reserve(maxDatagram);
        var result = Engine.Encapsulate(packet, output);
        if (result.Action == TunnelAction.SendToPeer)
        {
            var target = (DevicePeer)result.Peer!.Context!;
            if (target.TryGetEndpoint(out var endpoint))
            {
                batcher.Commit(result.Length, endpoint, Volatile.Read(ref _udp).GsoEnabled);
            }
            else if (target.ViaRelay && Volatile.Read(ref _relay) is { } relay)
            {
                if (relay.Send(target.Peer.PublicKey, output[..result.Length]))
                {
                    Interlocked.Increment(ref _relayedOut);
                    Interlocked.Add(ref _relayTxBytes, result.Length);
                }
            }
            else
            {
                Interlocked.Increment(ref _noEndpointDrops);
            }
        }
        else if (result.Action == TunnelAction.Drop)
        {
            Interlocked.Increment(ref _drops[(int)result.Reason]);
        }
    }

    /// <summary>One ordinary packet to the TUN, behind an all-zero virtio-net header when the TUN wants frames.</summary>
    private bool WritePacketToTun(ReadOnlySpan<byte> packet) =>
        _tun.VirtioHeaders ? _tun.TryWrite(ZeroVirtioHeader, packet) : _tun.TryWrite(packet);

    /// <summary>The coalescer's way to the TUN, counting what the kernel refuses.</summary>
    private sealed class TunFrameWriter(WireGuardDevice device) : ITunFrameWriter
    {
        public void WriteFrame(ReadOnlySpan<byte> frame)
        {
            if (!device._tun.TryWrite(frame))
            {
                Interlocked.Increment(ref device._tunWriteErrors);
            }
        }

        public void WritePacket(ReadOnlySpan<byte> packet)
        {
            if (!device._tun.TryWrite(ZeroVirtioHeader, packet))
            {
                Interlocked.Increment(ref device._tunWriteErrors);
            }
        }
    }
}
