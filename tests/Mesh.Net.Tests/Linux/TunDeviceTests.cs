using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Net.Linux;
using static Mesh.Net.Tests.Linux.LinuxTestSupport;

namespace Mesh.Net.Tests.Linux;

public sealed class TunDeviceTests
{
    /// <summary>
    /// Reads packets until one is a UDP datagram to <paramref name="port"/> (the kernel also routes
    /// its own IPv6 router solicitations and MLD reports into a fresh TUN); disposes the device and
    /// fails at the deadline instead of blocking forever.
    /// </summary>
    private static byte[] ReadUdpTo(TunDevice tun, int port, out IPEndPoint source, out IPEndPoint destination)
    {
        IPEndPoint? src = null, dst = null;
        byte[]? payload = null;
        var reader = new Thread(() =>
        {
            byte[] buffer = new byte[tun.Mtu];
            int n;
            while ((n = tun.Read(buffer)) > 0)
            {
                if (TestPackets.TryParseUdp(buffer.AsSpan(0, n), out var s, out var d, out var p) && d.Port == port)
                {
                    (src, dst, payload) = (s, d, p);
                    return;
                }
            }
        });
        reader.Start();
        if (!reader.Join(Deadline))
        {
            tun.Dispose();
            reader.Join();
            Assert.Fail($"no UDP packet to port {port} came out of {tun.Name} within {Deadline.TotalSeconds} s");
        }
        Assert.NotNull(payload);
        source = src!;
        destination = dst!;
        return payload;
    }

    [Fact]
    public void Create_SetsNameIndexMtuAndBringsLinkUp()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liotun0", mtu: 1420);

            Assert.Equal("liotun0", tun.Name);
            Assert.Equal(1420, tun.Mtu);
            var link = IpJson("link", "show", "dev", "liotun0")[0];
            Assert.Equal(tun.InterfaceIndex, link.GetProperty("ifindex").GetInt32());
            Assert.Equal(1420, link.GetProperty("mtu").GetInt32());
            Assert.Contains("UP", link.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        });
    }

    [Fact]
    public void Create_NameWithPattern_ReportsKernelChosenName()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("lio%d");
            Assert.Matches("^lio[0-9]+$", tun.Name);
            Assert.Equal(tun.Name, IpJson("link", "show", "dev", tun.Name)[0].GetProperty("ifname").GetString());
        });
    }

    [Theory]
    [InlineData("100.64.0.1", 24, "100.64.0.2")]
    [InlineData("fd7a:115c:a1e0::1", 64, "fd7a:115c:a1e0::2")]
    public void Read_ReturnsUdpDatagramRoutedIntoTun(string local, int prefixLength, string remote)
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liotun1");
            using (var netlink = new RtNetlink())
            {
                netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse(local), prefixLength);
            }
            IPAddress remoteAddress = IPAddress.Parse(remote);
            using var socket = new Socket(remoteAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(local), 0));
            byte[] payload = Encoding.ASCII.GetBytes("into the tunnel");
            socket.SendTo(payload, new IPEndPoint(remoteAddress, 5555));

            byte[] read = ReadUdpTo(tun, 5555, out IPEndPoint source, out IPEndPoint destination);

            Assert.Equal(payload, read);
            Assert.Equal(remoteAddress, destination.Address);
            Assert.Equal(IPAddress.Parse(local), source.Address);
            Assert.Equal(((IPEndPoint)socket.LocalEndPoint!).Port, source.Port);
        });
    }

    [Theory]
    [InlineData("100.64.0.1", 24, "100.64.0.2")]
    [InlineData("fd7a:115c:a1e0::1", 64, "fd7a:115c:a1e0::2")]
    public void Write_WhileAnotherThreadReads_DeliversPacketToLocalSocket(string local, int prefixLength, string remote)
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liotun2");
            using (var netlink = new RtNetlink())
            {
                netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse(local), prefixLength);
            }
            var reader = new Thread(() =>
            {
                byte[] buffer = new byte[tun.Mtu];
                while (tun.Read(buffer) > 0)
                {
                }
            });
            reader.Start();

            using var socket = new Socket(IPAddress.Parse(local).AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(local), 0));
            socket.ReceiveTimeout = (int)Deadline.TotalMilliseconds;
            var localEndPoint = (IPEndPoint)socket.LocalEndPoint!;
            var remoteEndPoint = new IPEndPoint(IPAddress.Parse(remote), 7777);
            byte[] payload = Encoding.ASCII.GetBytes("out of the tunnel");

            tun.Write(TestPackets.Udp(remoteEndPoint, localEndPoint, payload));

            byte[] received = new byte[2048];
            EndPoint from = new IPEndPoint(localEndPoint.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
            int n = socket.ReceiveFrom(received, ref from);
            Assert.Equal(payload, received[..n]);
            Assert.Equal(remoteEndPoint, from);

            tun.Dispose();
            Assert.True(reader.Join(Deadline), "Dispose did not release the reader");
        });
    }

    [Fact]
    public void Write_NotAnIpPacket_ThrowsAndTryWriteReturnsFalse()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liotun3");
            byte[] garbage = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13];
            var e = Assert.Throws<SystemCallException>(() => tun.Write(garbage));
            Assert.Equal("EINVAL", e.ErrnoName);
            Assert.False(tun.TryWrite(garbage));
        });
    }

    [Fact]
    public void Dispose_UnblocksBlockedRead_AndDeletesInterface()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            var tun = TunDevice.Create("liotun4");
            int tid = 0;
            int result = -1;
            var reader = new Thread(() =>
            {
                Volatile.Write(ref tid, Native.GetTid());
                byte[] buffer = new byte[tun.Mtu];
                int n;
                while ((n = tun.Read(buffer)) > 0)
                {
                }
                result = n;
            });
            reader.Start();
            Assert.True(WaitUntil(() => Volatile.Read(ref tid) != 0 && IsBlockedInPoll(Volatile.Read(ref tid))),
                "the reader never blocked in poll");

            tun.Dispose();

            Assert.True(reader.Join(TimeSpan.FromSeconds(2)), "Read was still blocked 2 s after Dispose");
            Assert.Equal(0, result);
            Assert.DoesNotContain("liotun4", IpJson("link", "show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString()));
            Assert.Equal(0, tun.Read(new byte[100]));
            Assert.Throws<ObjectDisposedException>(() => tun.Write(new byte[20]));
            tun.Dispose(); // twice is fine
        });
    }

    [Fact]
    public void ReadAndWrite_DoNotAllocate()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liotun5");
            using (var netlink = new RtNetlink())
            {
                netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.0.1"), 24);
            }
            // Written packets go to a port nobody listens on; the kernel's ICMP replies come back
            // out of the TUN, which gives Read something to read.
            byte[] packet = TestPackets.Udp(new IPEndPoint(IPAddress.Parse("100.64.0.2"), 7777),
                new IPEndPoint(IPAddress.Parse("100.64.0.1"), 9), "x"u8);
            byte[] buffer = new byte[tun.Mtu];
            tun.Write(packet);
            Assert.True(tun.Read(buffer) > 0);

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 100; i++)
            {
                tun.Write(packet);
            }
            long afterWrites = GC.GetAllocatedBytesForCurrentThread();
            int reads = 0;
            for (int i = 0; i < 5; i++)
            {
                // ICMP errors are rate-limited, so only a few are sure to come back.
                if (tun.Read(buffer) > 0)
                {
                    reads++;
                }
            }
            long afterReads = GC.GetAllocatedBytesForCurrentThread();

            Assert.Equal(0, afterWrites - before);
            Assert.Equal(0, afterReads - afterWrites);
            Assert.Equal(5, reads);
        });
    }

    [Fact]
    public void MultiQueue_TwoQueuesReadInParallel_AndDisposeReleasesBoth()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            var tun = TunDevice.CreateMultiQueue("liotun6");
            TunDevice second = tun.OpenQueue();
            Assert.Equal(tun.InterfaceIndex, second.InterfaceIndex);
            using (var netlink = new RtNetlink())
            {
                netlink.AddAddress(tun.InterfaceIndex, IPAddress.Parse("100.64.0.1"), 24);
            }
            const int Flows = 64;
            int received = 0;
            Thread Reader(TunDevice queue) => new(() =>
            {
                byte[] buffer = new byte[queue.Mtu];
                int n;
                while ((n = queue.Read(buffer)) > 0)
                {
                    if (TestPackets.TryParseUdp(buffer.AsSpan(0, n), out _, out var d, out _) && d.Port == 5555)
                    {
                        Interlocked.Increment(ref received);
                    }
                }
            });
            Thread[] readers = [Reader(tun), Reader(second)];
            foreach (Thread reader in readers)
            {
                reader.Start();
            }
            var sockets = new List<Socket>();
            try
            {
                for (int i = 0; i < Flows; i++)
                {
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                    sockets.Add(socket);
                    socket.SendTo("flow"u8.ToArray(), new IPEndPoint(IPAddress.Parse("100.64.0.2"), 5555));
                }
                Assert.True(WaitUntil(() => Volatile.Read(ref received) == Flows), $"{received} of {Flows} packets read");
            }
            finally
            {
                foreach (Socket socket in sockets)
                {
                    socket.Dispose();
                }
                tun.Dispose();
            }
            foreach (Thread reader in readers)
            {
                Assert.True(reader.Join(TimeSpan.FromSeconds(2)), "a queue's reader was not released by Dispose");
            }
            Assert.DoesNotContain("liotun6", IpJson("link", "show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString()));
        });
    }

    [Fact]
    public void Create_NameLongerThan15Bytes_ThrowsSayingSo()
    {
        var e = Assert.Throws<ArgumentException>(() => TunDevice.Create("lio-name-too-long"));
        Assert.Contains("17 bytes long; Linux allows at most 15", e.Message);
    }

    [Fact]
    public void Create_DeviceMissing_ThrowsSayingItIsMissing()
    {
        var e = Assert.Throws<SystemCallException>(() => TunDevice.Create("liotun7", 1420, "/nonexistent/lio/tun", multiQueue: false));
        Assert.StartsWith("/nonexistent/lio/tun is missing: ", e.Message);
        Assert.Equal("ENOENT", e.ErrnoName);
    }

    [Fact]
    public void OpenQueue_OnSingleQueueDevice_Throws()
    {
        RequireRootAndTun();
        InNetworkNamespace(() =>
        {
            using var tun = TunDevice.Create("liotun8");
            Assert.Throws<InvalidOperationException>(() => tun.OpenQueue());
        });
    }
}
