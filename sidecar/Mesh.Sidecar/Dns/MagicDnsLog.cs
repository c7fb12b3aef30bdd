using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Dns;

internal static partial class MagicDnsLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "MagicDNS listening on {Endpoints} ({Transports})")]
    public static partial void Listening(ILogger logger, string endpoints, string transports);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "MagicDNS stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Debug, Message = "MagicDNS records updated: {Nodes} nodes, {ExtraRecords} extra records, upstreams {Upstreams}")]
    public static partial void Updated(ILogger logger, int nodes, int extraRecords, string upstreams);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Debug, Message = "Upstream {Upstream} failed: {Reason}")]
    public static partial void UpstreamFailed(ILogger logger, string upstream, string reason);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Debug, Message = "Upstream {Upstream} query failed")]
    public static partial void UpstreamError(ILogger logger, string upstream, Exception exception);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Debug, Message = "Malformed DNS message dropped")]
    public static partial void Malformed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Warning, Message = "No upstream answered {Name} {Type}; SERVFAIL")]
    public static partial void AllUpstreamsFailed(ILogger logger, string name, string type);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Error, Message = "MagicDNS failed to answer a query")]
    public static partial void QueryFailed(ILogger logger, Exception exception);
}
