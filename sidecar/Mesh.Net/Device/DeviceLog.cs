using Microsoft.Extensions.Logging;

namespace Mesh.Net.Device;

internal static partial class DeviceLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Interface {Interface} up: MTU {Mtu}, listening on UDP port {Port}")]
    public static partial void Up(ILogger logger, string @interface, int mtu, int port);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Interface {Interface} down")]
    public static partial void Down(ILogger logger, string @interface);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Debug, Message = "Peer {Peer} moved to {Endpoint}")]
    public static partial void Roamed(ILogger logger, string peer, string endpoint);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Error, Message = "The {Loop} loop of {Interface} failed")]
    public static partial void LoopFailed(ILogger logger, string loop, string @interface, Exception exception);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "Listen port of {Interface} changed to {Port}")]
    public static partial void PortChanged(ILogger logger, string @interface, int port);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Debug, Message = "Handshake message from {Endpoint} answered ({Action})")]
    public static partial void Handshake(ILogger logger, string endpoint, string action);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "Offloads of {Interface}: TUN TSO/GRO {Tun}, UDP GSO {Gso}, UDP GRO {Gro}")]
    public static partial void Offloads(ILogger logger, string @interface, bool tun, bool gso, bool gro);
}
