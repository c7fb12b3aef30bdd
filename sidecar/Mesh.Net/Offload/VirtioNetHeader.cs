using System.Buffers.Binary;

namespace Mesh.Net.Offload;

/// <summary>
/// The <c>struct virtio_net_hdr</c> a TUN device opened with IFF_VNET_HDR puts in front of every
/// packet, in both directions: it says whether the packet is a GSO super-packet (and how to cut it)
/// and whether its transport checksum is still to be computed. Host byte order (little-endian on
/// the platforms we run on: the TUN uses native order unless TUNSETVNETBE is set).
/// </summary>
/// <remarks>
/// Layout (virtio spec 1.2 §5.1.6 "Device Operation", <c>include/uapi/linux/virtio_net.h</c>):
/// <code>
///  0        1          2          4          6            8             10
///  | flags  | gso_type | hdr_len  | gso_size | csum_start | csum_offset |
/// </code>
/// https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html
/// </remarks>
internal readonly struct VirtioNetHeader
{
    public const int Size = 10;

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at CsumStart+CsumOffset holds only the pseudo-header sum.</summary>
    public const byte FlagNeedsChecksum = 1;

    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    public const byte GsoUdp = 3;
    public const byte GsoTcpV6 = 4;
    public const byte GsoUdpL4 = 5;
    public const byte GsoEcn = 0x80;

    private const int FlagsOffset = 0;
    private const int GsoTypeOffset = 1;
    private const int HdrLenOffset = 2;
    private const int GsoSizeOffset = 4;
    private const int CsumStartOffset = 6;
    private const int CsumOffsetOffset = 8;

    public VirtioNetHeader(byte flags, byte gsoType, ushort headerLength, ushort gsoSize, ushort checksumStart, ushort checksumOffset)
    {
        Flags = flags;
        GsoType = gsoType;
        HeaderLength = headerLength;
        GsoSize = gsoSize;
        ChecksumStart = checksumStart;
        ChecksumOffset = checksumOffset;
    }

    public byte Flags { get; }
    public byte GsoType { get; }
    public ushort HeaderLength { get; }
    public ushort GsoSize { get; }
    public ushort ChecksumStart { get; }
    public ushort ChecksumOffset { get; }

    public bool NeedsChecksum => (Flags & FlagNeedsChecksum) != 0;

    /// <summary>Reads the first <see cref="Size"/> bytes of <paramref name="frame"/> (which must hold them).</summary>
    public static VirtioNetHeader Read(ReadOnlySpan<byte> frame) => new(
        frame[FlagsOffset],
        frame[GsoTypeOffset],
        BinaryPrimitives.ReadUInt16LittleEndian(frame[HdrLenOffset..]),
        BinaryPrimitives.ReadUInt16LittleEndian(frame[GsoSizeOffset..]),
        BinaryPrimitives.ReadUInt16LittleEndian(frame[CsumStartOffset..]),
        BinaryPrimitives.ReadUInt16LittleEndian(frame[CsumOffsetOffset..]));

    public void Write(Span<byte> frame)
    {
        frame[FlagsOffset] = Flags;
        frame[GsoTypeOffset] = GsoType;
        BinaryPrimitives.WriteUInt16LittleEndian(frame[HdrLenOffset..], HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(frame[GsoSizeOffset..], GsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(frame[CsumStartOffset..], ChecksumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(frame[CsumOffsetOffset..], ChecksumOffset);
    }
}
