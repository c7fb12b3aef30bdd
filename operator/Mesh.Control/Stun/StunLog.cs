using System.Net;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.Stun;

internal static partial class StunLog
{
    [LoggerMessage(EventId = 3400, Level = LogLevel.Information, Message = "STUN listening on udp {EndPoint}")]
    public static partial void Listening(ILogger logger, EndPoint endPoint);

    [LoggerMessage(EventId = 3401, Level = LogLevel.Information, Message = "STUN stopped on udp {EndPoint}")]
    public static partial void Stopped(ILogger logger, EndPoint endPoint);

    [LoggerMessage(EventId = 3402, Level = LogLevel.Debug, Message = "STUN receive on {EndPoint} failed; continuing")]
    public static partial void ReceiveFailed(ILogger logger, EndPoint endPoint, Exception exception);

    [LoggerMessage(EventId = 3403, Level = LogLevel.Debug, Message = "STUN reply to {Remote} failed")]
    public static partial void SendFailed(ILogger logger, EndPoint remote, Exception exception);

    [LoggerMessage(EventId = 3404, Level = LogLevel.Error, Message = "STUN loop on {EndPoint} failed; that socket no longer answers")]
    public static partial void LoopFailed(ILogger logger, EndPoint endPoint, Exception exception);
}
