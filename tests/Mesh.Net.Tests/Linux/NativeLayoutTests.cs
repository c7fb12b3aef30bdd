using System.Runtime.CompilerServices;
using Mesh.Net.Linux;

namespace Mesh.Net.Tests.Linux;

/// <summary>The structures passed to the kernel have the x86_64/arm64 Linux sizes.</summary>
public sealed class NativeLayoutTests
{
    [Fact]
    public void Structs_HaveKernelSizes()
    {
        Assert.Equal(56, Unsafe.SizeOf<MsgHdr>());
        Assert.Equal(64, Unsafe.SizeOf<MMsgHdr>());
        Assert.Equal(16, Unsafe.SizeOf<IoVec>());
        Assert.Equal(28, Unsafe.SizeOf<SockAddrIn6>());
        Assert.Equal(16, Unsafe.SizeOf<SockAddrIn>());
        Assert.Equal(12, Unsafe.SizeOf<SockAddrNl>());
        Assert.Equal(8, Unsafe.SizeOf<PollFd>());
        Assert.Equal(40, Unsafe.SizeOf<IfReqFlags>());
        Assert.Equal(16, Unsafe.SizeOf<TimeVal>());
        Assert.Equal(16, Unsafe.SizeOf<CMsgHdr>());
    }

    [Fact]
    public void NetlinkMessage_AddRouteV4_HasKernelLayout()
    {
        byte[] buffer = new byte[128];
        var m = new NetlinkMessage(buffer, NetlinkMessage.RTM_NEWROUTE,
            NetlinkMessage.NLM_F_REQUEST | NetlinkMessage.NLM_F_ACK | NetlinkMessage.NLM_F_CREATE | NetlinkMessage.NLM_F_REPLACE, seq: 7);
        m.RtMsg(2, 24, NetlinkMessage.RT_TABLE_MAIN, NetlinkMessage.RTPROT_STATIC, NetlinkMessage.RT_SCOPE_LINK, NetlinkMessage.RTN_UNICAST);
        m.AttributeAddress(NetlinkMessage.RTA_DST, System.Net.IPAddress.Parse("100.64.2.0"));
        m.AttributeU32(NetlinkMessage.RTA_OIF, 5);
        byte[] message = m.Finish().ToArray();

        Assert.Equal(
            "2C000000" + "1800" + "0505" + "07000000" + "00000000" // nlmsghdr: length 44, RTM_NEWROUTE, REQUEST|ACK|REPLACE|CREATE, seq 7, pid 0
            + "02180000" + "FE04FD01" + "00000000"               // rtmsg: AF_INET, /24, main table, static, link scope, unicast, flags 0
            + "08000100" + "64400200"                             // RTA_DST 100.64.2.0
            + "08000400" + "05000000",                            // RTA_OIF 5
            Convert.ToHexString(message));
    }
}
