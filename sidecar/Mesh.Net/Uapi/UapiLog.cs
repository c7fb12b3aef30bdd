using Microsoft.Extensions.Logging;

namespace Mesh.Net.Uapi;

/// <summary>
/// UAPI server log messages. Event IDs are stable (12xx is the UAPI range). Nothing here takes a key:
/// request errors carry only the parser's message, which never quotes key material.
/// </summary>
internal static partial class UapiLog
{
    [LoggerMessage(EventId = 1200, Level = LogLevel.Information, Message = "UAPI listening on {SocketPath}")]
    public static partial void Listening(ILogger logger, string socketPath);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "UAPI stopped listening on {SocketPath}")]
    public static partial void Stopped(ILogger logger, string socketPath);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "UAPI removed stale socket {SocketPath}")]
    public static partial void RemovedStaleSocket(ILogger logger, string socketPath);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Debug, Message = "UAPI connection {ConnectionId} opened")]
    public static partial void ConnectionOpened(ILogger logger, long connectionId);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Debug, Message = "UAPI connection {ConnectionId} closed")]
    public static partial void ConnectionClosed(ILogger logger, long connectionId);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Warning, Message = "UAPI connection {ConnectionId}: invalid operation; closing")]
    public static partial void InvalidOperation(ILogger logger, long connectionId);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Warning, Message = "UAPI connection {ConnectionId}: line longer than {MaxLineLength} bytes; closing")]
    public static partial void LineTooLong(ILogger logger, long connectionId, int maxLineLength);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Warning, Message = "UAPI connection {ConnectionId}: set request larger than {MaxRequestBytes} bytes; closing")]
    public static partial void RequestTooLarge(ILogger logger, long connectionId, int maxRequestBytes);

    [LoggerMessage(EventId = 1208, Level = LogLevel.Warning, Message = "UAPI connection {ConnectionId}: {Operation} refused with errno {Errno}: {Reason}")]
    public static partial void RequestRefused(ILogger logger, long connectionId, string operation, int errno, string reason);

    [LoggerMessage(EventId = 1209, Level = LogLevel.Error, Message = "UAPI connection {ConnectionId}: device failed during {Operation}")]
    public static partial void DeviceFailed(ILogger logger, long connectionId, string operation, Exception exception);

    [LoggerMessage(EventId = 1210, Level = LogLevel.Debug, Message = "UAPI connection {ConnectionId}: I/O error")]
    public static partial void ConnectionError(ILogger logger, long connectionId, Exception exception);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Warning, Message = "UAPI connection refused: {MaxConnections} connections already open")]
    public static partial void TooManyConnections(ILogger logger, int maxConnections);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Information, Message = "UAPI connection {ConnectionId}: set applied ({PeerCount} peer changes)")]
    public static partial void SetApplied(ILogger logger, long connectionId, int peerCount);

    [LoggerMessage(EventId = 1213, Level = LogLevel.Debug, Message = "UAPI connection {ConnectionId}: set request truncated before its blank line; not applied")]
    public static partial void SetTruncated(ILogger logger, long connectionId);

    [LoggerMessage(EventId = 1215, Level = LogLevel.Error, Message = "UAPI connection {ConnectionId}: unexpected failure; connection dropped")]
    public static partial void ConnectionFailed(ILogger logger, long connectionId, Exception exception);

    [LoggerMessage(EventId = 1214, Level = LogLevel.Error, Message = "UAPI accept loop failed on {SocketPath}")]
    public static partial void AcceptFailed(ILogger logger, string socketPath, Exception exception);
}
