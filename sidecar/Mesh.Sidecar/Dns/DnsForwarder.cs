using System.Net;
using ARSoft.Tools.Net.Dns;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Dns;

/// <summary>
/// Sends the questions MagicDNS does not own to upstream resolvers, in order: each gets one
/// bounded try (UDP, then TCP if the answer came back truncated), and a timeout, an unreachable
/// port, SERVFAIL or REFUSED moves on to the next. Null when every upstream failed.
/// </summary>
/// <remarks>
/// One instance per upstream list; the server builds a new one when the list changes and lets the
/// old one finish its in-flight queries. Thread-safe: ARSoft's client opens a socket per query.
/// </remarks>
internal sealed class DnsForwarder
{
    private readonly Upstream[] _upstreams;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    public DnsForwarder(IReadOnlyList<IPEndPoint> upstreams, TimeSpan timeout, ILogger logger)
    {
        _timeout = timeout;
        _logger = logger;
        _upstreams = new Upstream[upstreams.Count];
        var timeoutMs = (int)Math.Ceiling(timeout.TotalMilliseconds);
        for (var i = 0; i < _upstreams.Length; i++)
        {
            var endpoint = upstreams[i];
            var transports = new IClientTransport[] { new UdpClientTransport(endpoint.Port), new TcpClientTransport(endpoint.Port) };
            var client = new DnsClient([endpoint.Address], transports, disposeTransport: true, timeoutMs)
            {
                // A forwarder passes answers on as they came; it does not second-guess the upstream.
                Is0x20ValidationEnabled = false,
            };
            _upstreams[i] = new Upstream(endpoint, client);
        }
    }

    /// <summary>The upstreams, in the order they are tried.</summary>
    public IEnumerable<IPEndPoint> Upstreams => _upstreams.Select(u => u.Endpoint);

    /// <summary>True when both forwarders would send to the same upstreams in the same order.</summary>
    public bool SameUpstreams(IReadOnlyList<IPEndPoint> upstreams)
    {
        if (upstreams.Count != _upstreams.Length)
        {
            return false;
        }

        for (var i = 0; i < upstreams.Count; i++)
        {
            if (!upstreams[i].Equals(_upstreams[i].Endpoint))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The first usable upstream answer to <paramref name="query"/>'s question, or null.</summary>
    public async Task<DnsMessage?> ForwardAsync(DnsMessage query, CancellationToken cancellationToken)
    {
        var question = query.Questions[0];
        var options = new DnsQueryOptions
        {
            IsRecursionDesired = query.IsRecursionDesired,
            IsCheckingDisabled = query.IsCheckingDisabled,

            // Ask upstream for large UDP answers whatever the client asked; the server truncates
            // for the client's own limit.
            IsEDnsEnabled = true,
            IsDnsSecOk = query.IsDnsSecOk,
        };

        foreach (var upstream in _upstreams)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

            // The client's own timeout covers each transport; this bounds the UDP+TCP pair.
            timeout.CancelAfter(_timeout * 2);
            DnsMessage? response;
            try
            {
                response = await upstream.Client.ResolveAsync(question.Name, question.RecordType, question.RecordClass, options, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                response = null;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                MagicDnsLog.UpstreamError(_logger, upstream.Endpoint.ToString(), e);
                response = null;
            }

            if (response is null)
            {
                MagicDnsLog.UpstreamFailed(_logger, upstream.Endpoint.ToString(), "no answer");
                continue;
            }

            if (response.ReturnCode is ReturnCode.ServerFailure or ReturnCode.Refused)
            {
                MagicDnsLog.UpstreamFailed(_logger, upstream.Endpoint.ToString(), response.ReturnCode.ToString());
                continue;
            }

            return response;
        }

        return null;
    }

    private sealed record Upstream(IPEndPoint Endpoint, DnsClient Client);
}
