using System.Net;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sidecar.Dns;

/// <summary>
/// MagicDNS: the resolver a mesh node's applications use, at <see cref="MagicDnsAddresses.IPv4"/>
/// and <see cref="MagicDnsAddresses.IPv6"/> inside the node. It answers for mesh names
/// (<c>host.base_domain</c>, the short <c>host</c>, extra records, reverse names of node
/// addresses) from the latest <see cref="MagicDnsRecords"/>, and forwards every other question to
/// the upstream resolvers: the netmap's nameservers, or else the ones the host had before.
/// </summary>
/// <remarks>
/// <para>It is not a recursive resolver and not a cache: upstream answers pass through with their
/// TTLs, and mesh answers carry <see cref="MagicDnsServerOptions.Ttl"/>.</para>
/// <para>Transports: UDP on every endpoint, and TCP on the same endpoints unless
/// <see cref="MagicDnsServerOptions.EnableTcp"/> is off. ARSoft.Tools.Net's server does the framing:
/// a UDP answer larger than the client's limit (512 bytes, or its EDNS payload size, RFC 6891 §6.2.5)
/// goes out truncated with TC set, and the client retries over TCP (RFC 7766).</para>
/// <para>Thread-safety: queries are answered concurrently; <see cref="Update"/> swaps one immutable
/// state, so a query sees either the old records or the new ones, never a mix.</para>
/// <para>Malformed messages never reach the handler: the library's parser rejects them and they are
/// dropped (logged at Debug).</para>
/// </remarks>
public sealed class MagicDnsServer : IAsyncDisposable
{
    private readonly MagicDnsServerOptions _options;
    private readonly ILogger _logger;
    private readonly DnsServer _server;
    private readonly CancellationTokenSource _stopping = new();
    private readonly int _ttlSeconds;
    private readonly Lock _updateLock = new();
    private State _state;
    private int _started;
    private volatile bool _listening;
    private int _disposed;

    /// <summary>Prepares a server; nothing is bound until <see cref="Start"/>.</summary>
    public MagicDnsServer(MagicDnsServerOptions options, MagicDnsRecords records, ILogger<MagicDnsServer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(options.Endpoints);
        ArgumentNullException.ThrowIfNull(options.FallbackNameservers);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("MagicDNS needs at least one endpoint to listen on.", nameof(options));
        }

        if (options.UpstreamTimeout <= TimeSpan.Zero || options.Ttl < TimeSpan.Zero)
        {
            throw new ArgumentException("The upstream timeout must be positive and the TTL not negative.", nameof(options));
        }

        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _ttlSeconds = (int)Math.Min(options.Ttl.TotalSeconds, int.MaxValue);
        _state = BuildState(records, previous: null);

        var transports = new List<IServerTransport>(options.Endpoints.Count * 2);
        var timeoutMs = (int)Math.Ceiling(options.UpstreamTimeout.TotalMilliseconds);
        foreach (var endpoint in options.Endpoints)
        {
            transports.Add(new UdpServerTransport(endpoint, timeoutMs));
            if (options.EnableTcp)
            {
                // The timeout bounds an idle connection's wait for its next query; keep-alive as RFC 7766 §6.2 suggests.
                transports.Add(new TcpServerTransport(endpoint, TcpIdleTimeoutMs, TcpIdleTimeoutMs));
            }
        }

        _server = new DnsServer([.. transports]);
        _server.QueryReceived += OnQueryReceivedAsync;
        _server.ExceptionThrown += OnExceptionThrownAsync;
    }

    private const int TcpIdleTimeoutMs = 10_000;

    /// <summary>The records in force.</summary>
    public MagicDnsRecords Records => Volatile.Read(ref _state).Records;

    /// <summary>The upstream resolvers in force, in the order they are tried.</summary>
    public IReadOnlyList<IPEndPoint> Upstreams => [.. Volatile.Read(ref _state).Forwarder.Upstreams];

    /// <summary>Binds every endpoint and starts answering.</summary>
    /// <exception cref="System.Net.Sockets.SocketException">An endpoint could not be bound.</exception>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("MagicDNS is already started.");
        }

        try
        {
            _server.Start();
        }
        catch
        {
            // Release whatever transports did bind; this instance cannot be started again.
            StopQuietly();
            throw;
        }

        _listening = true;
        MagicDnsLog.Listening(_logger, string.Join(", ", _options.Endpoints), _options.EnableTcp ? "UDP, TCP" : "UDP");
    }

    /// <summary>Replaces the records (and, when the netmap's nameservers changed, the upstreams) without a restart.</summary>
    public void Update(MagicDnsRecords records)
    {
        ArgumentNullException.ThrowIfNull(records);
        lock (_updateLock)
        {
            var state = BuildState(records, _state);
            Volatile.Write(ref _state, state);
            MagicDnsLog.Updated(_logger, records.Nodes.Count, records.ExtraRecords.Count, string.Join(", ", state.Forwarder.Upstreams));
        }
    }

    /// <summary>Stops listening and abandons queries still waiting for an upstream.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_listening)
        {
            StopQuietly();
            MagicDnsLog.Stopped(_logger);
        }

        _server.QueryReceived -= OnQueryReceivedAsync;
        _server.ExceptionThrown -= OnExceptionThrownAsync;
        _stopping.Dispose();
    }

    private void StopQuietly()
    {
        try
        {
            _server.Stop();
        }
        catch (AggregateException e)
        {
            // ARSoft's Stop waits for its accept loops, which end cancelled; that is the expected way out.
            e.Handle(inner => inner is OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException);
        }
    }

    private State BuildState(MagicDnsRecords records, State? previous)
    {
        var zone = new MagicDnsZone(records);
        var upstreams = ChooseUpstreams(records.Nameservers.Count > 0 ? records.Nameservers : _options.FallbackNameservers);
        var forwarder = previous is not null && previous.Forwarder.SameUpstreams(upstreams)
            ? previous.Forwarder
            : new DnsForwarder(upstreams, _options.UpstreamTimeout, _logger);
        return new State(records, zone, forwarder);
    }

    /// <summary>The candidates minus MagicDNS itself, so a resolver that already points here cannot make a loop.</summary>
    private List<IPEndPoint> ChooseUpstreams(IReadOnlyList<IPEndPoint> candidates)
    {
        var upstreams = new List<IPEndPoint>(candidates.Count);
        foreach (var candidate in candidates)
        {
            if (MagicDnsAddresses.IsMagicDns(candidate.Address) || upstreams.Contains(candidate) || IsOwnEndpoint(candidate))
            {
                continue;
            }

            upstreams.Add(candidate);
        }

        return upstreams;
    }

    private bool IsOwnEndpoint(IPEndPoint candidate)
    {
        foreach (var endpoint in _options.Endpoints)
        {
            if (endpoint.Equals(candidate))
            {
                return true;
            }
        }

        return false;
    }

    private async Task OnQueryReceivedAsync(object sender, QueryReceivedEventArgs e)
    {
        if (e.Query is not DnsMessage query)
        {
            // Dynamic updates (RFC 2136) and other opcodes: ARSoft answers NOTIMP when no response is set.
            return;
        }

        try
        {
            e.Response = await AnswerAsync(query, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down: no answer.
        }
        catch (Exception exception)
        {
            MagicDnsLog.QueryFailed(_logger, exception);
            var response = query.CreateResponseInstance();
            response.ReturnCode = ReturnCode.ServerFailure;
            e.Response = response;
        }
    }

    private Task OnExceptionThrownAsync(object sender, ExceptionEventArgs e)
    {
        MagicDnsLog.Malformed(_logger, e.Exception);
        return Task.CompletedTask;
    }

    private async Task<DnsMessage> AnswerAsync(DnsMessage query, CancellationToken cancellationToken)
    {
        var response = query.CreateResponseInstance();
        response.IsRecursionAllowed = true;
        if (query.OperationCode != OperationCode.Query)
        {
            response.ReturnCode = ReturnCode.NotImplemented;
            return response;
        }

        // RFC 9619: a query carries exactly one question.
        if (query.Questions.Count != 1)
        {
            response.ReturnCode = ReturnCode.FormatError;
            return response;
        }

        var state = Volatile.Read(ref _state);
        var question = query.Questions[0];
        var result = question.RecordClass is RecordClass.INet or RecordClass.Any
            ? state.Zone.Lookup(question.Name.ToString(), ToZoneType(question.RecordType))
            : ZoneResult.NotOurs;

        switch (result.Kind)
        {
            case ZoneResultKind.Answer:
                response.IsAuthoritiveAnswer = true;
                AddAnswers(response, question.Name, result);
                return response;
            case ZoneResultKind.NoData:
                response.IsAuthoritiveAnswer = true;
                return response;
            case ZoneResultKind.NxDomain:
                response.IsAuthoritiveAnswer = true;
                response.ReturnCode = ReturnCode.NxDomain;
                return response;
        }

        var upstream = await state.Forwarder.ForwardAsync(query, cancellationToken).ConfigureAwait(false);
        if (upstream is null)
        {
            MagicDnsLog.AllUpstreamsFailed(_logger, question.Name.ToString(), question.RecordType.ToString());
            response.ReturnCode = ReturnCode.ServerFailure;
            return response;
        }

        response.ReturnCode = upstream.ReturnCode;
        response.IsAuthenticData = upstream.IsAuthenticData;
        response.AnswerRecords.AddRange(upstream.AnswerRecords);
        response.AuthorityRecords.AddRange(upstream.AuthorityRecords);
        foreach (var record in upstream.AdditionalRecords)
        {
            // The OPT pseudo-record is per hop (RFC 6891 §6.1.1); ours comes from the query.
            if (record is not OptRecord)
            {
                response.AdditionalRecords.Add(record);
            }
        }

        return response;
    }

    private void AddAnswers(DnsMessage response, DomainName owner, ZoneResult result)
    {
        if (result.PtrTarget is not null)
        {
            response.AnswerRecords.Add(new PtrRecord(owner, _ttlSeconds, DomainName.Parse(result.PtrTarget)));
            return;
        }

        foreach (var address in result.Addresses)
        {
            response.AnswerRecords.Add(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
                ? new ARecord(owner, _ttlSeconds, address)
                : new AaaaRecord(owner, _ttlSeconds, address));
        }
    }

    private static ZoneQueryType ToZoneType(RecordType type) => type switch
    {
        RecordType.A => ZoneQueryType.A,
        RecordType.Aaaa => ZoneQueryType.Aaaa,
        RecordType.Ptr => ZoneQueryType.Ptr,
        RecordType.Any => ZoneQueryType.Any,
        _ => ZoneQueryType.Other,
    };

    private sealed record State(MagicDnsRecords Records, MagicDnsZone Zone, DnsForwarder Forwarder);
}

/// <summary>How a <see cref="MagicDnsServer"/> listens and forwards.</summary>
public sealed class MagicDnsServerOptions
{
    /// <summary>Where to listen; in a node, <see cref="MagicDnsAddresses.DefaultEndpoints"/>.</summary>
    public required IReadOnlyList<IPEndPoint> Endpoints { get; init; }

    /// <summary>Listen on TCP too, on the same endpoints (default on).</summary>
    public bool EnableTcp { get; init; } = true;

    /// <summary>
    /// The resolvers the host had before the agent took over (<see cref="ResolvConf.Upstreams"/>), used
    /// while the netmap names no nameservers.
    /// </summary>
    public IReadOnlyList<IPEndPoint> FallbackNameservers { get; init; } = [];

    /// <summary>How long one upstream gets before the next is tried (default 2 s).</summary>
    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The TTL of mesh answers (default 600 s, as Tailscale's MagicDNS).</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromSeconds(600);
}

/// <summary>The addresses MagicDNS has inside every node.</summary>
public static class MagicDnsAddresses
{
    /// <summary>The DNS port.</summary>
    public const int Port = 53;

    /// <summary>MagicDNS's IPv4 address, 100.100.100.100 (inside the mesh's 100.64.0.0/10).</summary>
    public static IPAddress IPv4 { get; } = IPAddress.Parse("100.100.100.100");

    /// <summary>MagicDNS's IPv6 address, fd7a:115c:a1e0::53 (inside the mesh's IPv6 prefix).</summary>
    public static IPAddress IPv6 { get; } = IPAddress.Parse("fd7a:115c:a1e0::53");

    /// <summary>Both addresses on port 53.</summary>
    public static IReadOnlyList<IPEndPoint> DefaultEndpoints { get; } = [new(IPv4, Port), new(IPv6, Port)];

    /// <summary>True for either MagicDNS address.</summary>
    public static bool IsMagicDns(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var plain = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return plain.Equals(IPv4) || plain.Equals(IPv6);
    }
}
