using System.Net;
using System.Net.Sockets;
using Mesh.Net.Linux;
using Mesh.Net.Offload;
using Mesh.Net.Tests.Offload;
using static Mesh.Net.Tests.Linux.LinuxTestSupport;

namespace Mesh.Net.Tests.Linux;

public sealed class TunOffloadTests
{
    [Theory]
    [InlineData("100.64.0.1", 24, "100.64.0.2")]
    [InlineData("fd7a:115c:a1e0::1", 64, "fd7a:115c:a1e0::2")]
    public void Read_WithOffloads_FramesCarryAVirtioHeaderAndChecksumsComplete(string local, int prefixLength, string remote)
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liooff0", 1420, offloads: true);
            Assert.True(tun.VirtioHeaders, "the kernel refused IFF_VNET_HDR/TUNSETOFFLOAD");
            using (var netlink = new RtNetlink())
            {
                netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse(local), prefixLength);
            }

            using var socket = new Socket(IPAddress.Parse(remote).AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(local), 0));
            var payload = OffloadPackets.Payload(333, 1);
            socket.SendTo(payload, new IPEndPoint(IPAddress.Parse(remote), 5555));

            var frame = new byte[VirtioNetHeader.Size + 65535];
            var deadline = DateTime.UtcNow + Deadline;
            while (DateTime.UtcNow < deadline)
            {
                var n = tun.TryRead(frame);
                if (n < 0)
                {
                    Thread.Yield();
                    continue;
                }

                Assert.True(n > VirtioNetHeader.Size);
                Assert.Equal(VirtioNetHeader.GsoNone, frame[1]);
                Assert.Equal(SegmentStatus.Single, TcpSegmenter.Start(frame.AsSpan(0, n), out var packet, out _));
                var udpAt = OffloadPackets.IpHeaderLength(packet);
                var protocol = OffloadPackets.IsV4(packet) ? packet[9] : packet[6];
                if (protocol != 17 || (packet[udpAt + 2] << 8 | packet[udpAt + 3]) != 5555)
                {
                    continue; // router solicitations, MLD reports
                }

                Assert.True(OffloadPackets.TransportChecksumValid(packet), "the UDP checksum is not complete");
                Assert.Equal(payload, packet[(udpAt + 8)..].ToArray());
                return;
            }

            Assert.Fail("no UDP packet to port 5555 came out of the TUN");
        });
    }

    [Fact]
    public void Write_WithOffloads_ZeroHeaderPacketReachesLocalSocket()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liooff1", 1420, offloads: true);
            Assert.True(tun.VirtioHeaders);
            using (var netlink = new RtNetlink())
            {
                netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.0.1"), 24);
            }

            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Parse("100.64.0.1"), 0));
            socket.ReceiveTimeout = (int)Deadline.TotalMilliseconds;
            var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
            var packet = TestPackets.Udp(new IPEndPoint(IPAddress.Parse("100.64.0.2"), 7777), new IPEndPoint(IPAddress.Parse("100.64.0.1"), port), "framed"u8);

            Assert.True(tun.TryWrite(new byte[VirtioNetHeader.Size], packet));

            var buffer = new byte[100];
            var n = socket.Receive(buffer);
            Assert.Equal("framed"u8.ToArray(), buffer[..n]);
        });
    }
}
