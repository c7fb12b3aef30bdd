using Microsoft.Extensions.Logging;

namespace Mesh.Control.Admin;

/// <summary>
/// The admin API's log lines. None carries a secret: no API key, no pre-auth key, no
/// Authorization header, only ids, prefixes and user names.
/// </summary>
internal static partial class AdminLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Warning, Message = "Admin request {Method} {Path} from {Remote} refused: {Reason}")]
    public static partial void Unauthorized(ILogger logger, string method, string path, string remote, string reason);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "Admin request {Method} {Path} refused with {Status}: {Message}")]
    public static partial void Refused(ILogger logger, string method, string path, int status, string message);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Admin request {Method} {Path} failed")]
    public static partial void Failed(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Created pre-auth key {Id} ({Prefix}…) for user {User}")]
    public static partial void PreAuthKeyCreated(ILogger logger, long id, string prefix, string user);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "Created API key {Id} ({Prefix}…)")]
    public static partial void ApiKeyCreated(ILogger logger, long id, string prefix);
}
