using System.Net;
using Mesh.Protocol;
using Mesh.Protocol.Relay;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.Relay;

internal static partial class RelayLog
{
    [LoggerMessage(EventId = 3500, Level = LogLevel.Information, Message = "Relay client {Node} connected from {Remote}")]
    public static partial void Connected(ILogger logger, NodeKey node, IPAddress? remote);

    [LoggerMessage(EventId = 3501, Level = LogLevel.Information, Message = "Relay client {Node} disconnected")]
    public static partial void Disconnected(ILogger logger, NodeKey node);

    [LoggerMessage(EventId = 3502, Level = LogLevel.Warning, Message = "Relay connection from {Remote} refused ({Code}): {Reason}")]
    public static partial void Refused(ILogger logger, IPAddress? remote, RelayErrorCode code, string reason);

    [LoggerMessage(EventId = 3503, Level = LogLevel.Information, Message = "Relay client {Node} replaced by a newer connection")]
    public static partial void Replaced(ILogger logger, NodeKey node);

    [LoggerMessage(EventId = 3504, Level = LogLevel.Warning, Message = "Relay client {Node} closed for a protocol error: {Reason}")]
    public static partial void ProtocolError(ILogger logger, NodeKey node, string reason);

    [LoggerMessage(EventId = 3505, Level = LogLevel.Debug, Message = "Relay connection I/O ended")]
    public static partial void ConnectionIoEnded(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3506, Level = LogLevel.Error, Message = "Relay connection failed unexpectedly")]
    public static partial void ConnectionFailed(ILogger logger, Exception exception);
}
