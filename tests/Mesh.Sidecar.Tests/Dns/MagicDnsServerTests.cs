using System.Diagnostics;
using System.Net;
using ARSoft.Tools.Net.Dns;
using Mesh.Sidecar.Dns;
using Mesh.Sidecar.Tests.Infrastructure;

namespace Mesh.Sidecar.Tests.Dns;

/// <summary>
/// The server end to end over loopback sockets: raw queries in, library-parsed answers out, and
/// fake upstreams on other loopback ports for everything that is forwarded.
/// </summary>
public sealed class MagicDnsServerTests
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(5);
    private static readonly IPAddress WebV4 = IPAddress.Parse("100.64.0.1");
    private static readonly IPAddress WebV6 = IPAddress.Parse("fd7a:115c:a1e0::1");
    private static readonly IPAddress DbV4 = IPAddress.Parse("100.64.0.2");
    private static readonly IPAddress GrafanaV4 = IPAddress.Parse("100.64.0.9");
    private static readonly IPAddress UpstreamAnswer = IPAddress.Parse("198.18.0.10");

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static MagicDnsRecords Records(IReadOnlyList<IPEndPoint>? nameservers = null, params MagicDnsNode[] extraNodes) => new(
        "mesh.internal",
        [new MagicDnsNode("web", [WebV4, WebV6]), new MagicDnsNode("db", [DbV4]), .. extraNodes],
        [new MagicDnsExtraRecord("grafana.mesh.internal", MagicDnsRecordType.A, GrafanaV4)],
        ["mesh.internal"],
        nameservers ?? []);

    private static async Task<DnsMessage> QueryAsync(IPEndPoint server, string name, ushort type)
    {
        var id = (ushort)Random.Shared.Next(1, ushort.MaxValue);
        var reply = await DnsWire.ExchangeUdpAsync(server, DnsWire.Query(id, name, type), ReplyTimeout, Cancel);
        Assert.NotNull(reply);
        var message = DnsWire.Parse(reply);
        Assert.Equal(id, message.TransactionID);
        return message;
    }

    private static IPAddress[] Addresses(DnsMessage message)
    {
        var addresses = new List<IPAddress>();
        foreach (var record in message.AnswerRecords)
        {
            switch (record)
            {
                case ARecord a:
                    addresses.Add(a.Address);
                    break;
                case AaaaRecord aaaa:
                    addresses.Add(aaaa.Address);
                    break;
            }
        }

        return [.. addresses];
    }

    [Fact]
    public async Task FullName_A_ReturnsNodeIPv4WithMeshTtl()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, "web.mesh.internal", DnsWire.TypeA);

        Assert.Equal(ReturnCode.NoError, reply.ReturnCode);
        Assert.True(reply.IsAuthoritiveAnswer);
        Assert.Equal([WebV4], Addresses(reply));
        Assert.Equal(600, Assert.Single(reply.AnswerRecords).TimeToLive);
    }

    [Fact]
    public async Task FullName_Aaaa_ReturnsNodeIPv6()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, "web.mesh.internal.", DnsWire.TypeAaaa);

        Assert.Equal(ReturnCode.NoError, reply.ReturnCode);
        Assert.Equal([WebV6], Addresses(reply));
    }

    [Theory]
    [InlineData("web", DnsWire.TypeA, "100.64.0.1")]
    [InlineData("web.", DnsWire.TypeA, "100.64.0.1")]
    [InlineData("web", DnsWire.TypeAaaa, "fd7a:115c:a1e0::1")]
    [InlineData("db", DnsWire.TypeA, "100.64.0.2")]
    [InlineData("grafana", DnsWire.TypeA, "100.64.0.9")]
    public async Task ShortName_IsAnsweredAsUnderBaseDomain(string name, ushort type, string expected)
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, name, type);

        Assert.Equal(ReturnCode.NoError, reply.ReturnCode);
        Assert.Equal([IPAddress.Parse(expected)], Addresses(reply));
    }

    [Theory]
    [InlineData("WEB.MESH.INTERNAL")]
    [InlineData("Web.Mesh.Internal.")]
    [InlineData("wEb")]
    public async Task Name_AnyCase_IsAnswered(string name)
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, name, DnsWire.TypeA);

        Assert.Equal([WebV4], Addresses(reply));
    }

    [Fact]
    public async Task ExtraRecord_IsAnswered()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, "grafana.mesh.internal", DnsWire.TypeA);

        Assert.Equal(ReturnCode.NoError, reply.ReturnCode);
        Assert.Equal([GrafanaV4], Addresses(reply));
    }

    [Theory]
    [InlineData("nosuch.mesh.internal")]
    [InlineData("deeper.web.mesh.internal")]
    public async Task UnknownMeshName_IsNxDomain(string name)
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, name, DnsWire.TypeA);

        Assert.Equal(ReturnCode.NxDomain, reply.ReturnCode);
        Assert.Empty(reply.AnswerRecords);
    }

    [Theory]
    [InlineData("db.mesh.internal", DnsWire.TypeAaaa)]
    [InlineData("web.mesh.internal", DnsWire.TypeMx)]
    [InlineData("web.mesh.internal", DnsWire.TypeTxt)]
    [InlineData("mesh.internal", DnsWire.TypeA)]
    public async Task ExistingNameWithoutThatType_IsEmptyNoError(string name, ushort type)
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, name, type);

        Assert.Equal(ReturnCode.NoError, reply.ReturnCode);
        Assert.Empty(reply.AnswerRecords);
    }

    [Fact]
    public async Task ReverseName_OfNodeAddress_ReturnsItsName()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var v4 = await QueryAsync(endpoint, "1.0.64.100.in-addr.arpa", DnsWire.TypePtr);
        var v6 = await QueryAsync(endpoint, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa", DnsWire.TypePtr);
        var unknown = await QueryAsync(endpoint, "77.0.64.100.in-addr.arpa", DnsWire.TypePtr);

        Assert.Equal("web.mesh.internal.", Assert.IsType<PtrRecord>(Assert.Single(v4.AnswerRecords)).PointerDomainName.ToString());
        Assert.Equal("web.mesh.internal.", Assert.IsType<PtrRecord>(Assert.Single(v6.AnswerRecords)).PointerDomainName.ToString());
        Assert.Equal(ReturnCode.NxDomain, unknown.ReturnCode);
    }

    [Fact]
    public async Task OtherName_IsForwardedToFallback_WithUpstreamTtl()
    {
        await using var upstream = FakeUpstream.Answering(UpstreamAnswer);
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint, fallback: [upstream.Endpoint]);

        var reply = await QueryAsync(endpoint, "www.example.test", DnsWire.TypeA);

        Assert.Equal(ReturnCode.NoError, reply.ReturnCode);
        Assert.False(reply.IsAuthoritiveAnswer);
        Assert.Equal([UpstreamAnswer], Addresses(reply));
        Assert.Equal((int)FakeUpstream.Ttl, Assert.Single(reply.AnswerRecords).TimeToLive);
        Assert.Contains($"www.example.test {DnsWire.TypeA}", upstream.Questions);
    }

    [Fact]
    public async Task UnknownShortName_IsForwarded()
    {
        await using var upstream = FakeUpstream.Answering(UpstreamAnswer);
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint, fallback: [upstream.Endpoint]);

        var reply = await QueryAsync(endpoint, "printer", DnsWire.TypeA);

        Assert.Equal([UpstreamAnswer], Addresses(reply));
    }

    [Fact]
    public async Task NetmapNameservers_TakePrecedenceOverFallback()
    {
        await using var fallback = FakeUpstream.Answering(IPAddress.Parse("198.18.0.1"));
        await using var netmap = FakeUpstream.Answering(IPAddress.Parse("198.18.0.2"));
        await using var server = LoopbackDnsServer.Start(Records([netmap.Endpoint]), out var endpoint, fallback: [fallback.Endpoint]);

        var reply = await QueryAsync(endpoint, "example.test", DnsWire.TypeA);

        Assert.Equal([netmap.Address], Addresses(reply));
        Assert.Empty(fallback.Questions);
    }

    [Fact]
    public async Task FirstUpstreamSilent_SecondAnswers()
    {
        await using var dead = FakeUpstream.Silent();
        await using var alive = FakeUpstream.Answering(UpstreamAnswer);
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint, fallback: [dead.Endpoint, alive.Endpoint], upstreamTimeout: TimeSpan.FromMilliseconds(300));

        var reply = await QueryAsync(endpoint, "example.test", DnsWire.TypeA);

        Assert.Equal([UpstreamAnswer], Addresses(reply));
        Assert.NotEmpty(dead.Questions);
    }

    [Fact]
    public async Task FirstUpstreamPortClosed_SecondAnswers()
    {
        await using var alive = FakeUpstream.Answering(UpstreamAnswer);
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint, fallback: [FakeUpstream.ClosedPort(), alive.Endpoint]);

        var reply = await QueryAsync(endpoint, "example.test", DnsWire.TypeA);

        Assert.Equal([UpstreamAnswer], Addresses(reply));
    }

    [Fact]
    public async Task AllUpstreamsDead_IsServFail_WithinBoundedTime()
    {
        await using var silent = FakeUpstream.Silent();
        var timeout = TimeSpan.FromMilliseconds(300);
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint, fallback: [silent.Endpoint, FakeUpstream.ClosedPort()], upstreamTimeout: timeout);

        var started = Stopwatch.GetTimestamp();
        var reply = await QueryAsync(endpoint, "example.test", DnsWire.TypeA);
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.Equal(ReturnCode.ServerFailure, reply.ReturnCode);
        Assert.Empty(reply.AnswerRecords);

        // Two upstreams, each bounded by the timeout (UDP and TCP at most): well under the client's patience.
        Assert.True(elapsed < TimeSpan.FromSeconds(3), $"SERVFAIL took {elapsed}");
    }

    [Fact]
    public async Task NoUpstreams_IsServFail()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);

        var reply = await QueryAsync(endpoint, "example.test", DnsWire.TypeA);

        Assert.Equal(ReturnCode.ServerFailure, reply.ReturnCode);
    }

    [Fact]
    public async Task Update_ChangesAnswersWithoutRestart()
    {
        await using var first = FakeUpstream.Answering(IPAddress.Parse("198.18.0.1"));
        await using var second = FakeUpstream.Answering(IPAddress.Parse("198.18.0.2"));
        await using var server = LoopbackDnsServer.Start(Records([first.Endpoint]), out var endpoint);
        Assert.Equal(ReturnCode.NxDomain, (await QueryAsync(endpoint, "cache.mesh.internal", DnsWire.TypeA)).ReturnCode);
        Assert.Equal([first.Address], Addresses(await QueryAsync(endpoint, "example.test", DnsWire.TypeA)));

        server.Update(new MagicDnsRecords(
            "mesh.internal",
            [new MagicDnsNode("cache", [IPAddress.Parse("100.64.0.7")])],
            [],
            [],
            [second.Endpoint]));

        Assert.Equal([IPAddress.Parse("100.64.0.7")], Addresses(await QueryAsync(endpoint, "cache.mesh.internal", DnsWire.TypeA)));
        Assert.Equal(ReturnCode.NxDomain, (await QueryAsync(endpoint, "web.mesh.internal", DnsWire.TypeA)).ReturnCode);
        Assert.Equal([second.Address], Addresses(await QueryAsync(endpoint, "example.test", DnsWire.TypeA)));
        Assert.Equal([second.Endpoint], server.Upstreams);
    }

    [Fact]
    public async Task Update_NewBaseDomain_OldOneIsForwarded()
    {
        await using var upstream = FakeUpstream.Answering(UpstreamAnswer);
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint, fallback: [upstream.Endpoint]);

        server.Update(new MagicDnsRecords("corp.test", [new MagicDnsNode("web", [WebV4])], [], [], []));

        Assert.Equal([WebV4], Addresses(await QueryAsync(endpoint, "web.corp.test", DnsWire.TypeA)));
        Assert.Equal([UpstreamAnswer], Addresses(await QueryAsync(endpoint, "web.mesh.internal", DnsWire.TypeA)));
    }

    [Fact]
    public async Task MalformedPackets_AreSurvived()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);
        var random = new Random(20240601);
        using (var socket = new System.Net.Sockets.Socket(endpoint.AddressFamily, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp))
        {
            socket.Connect(endpoint);
            var valid = DnsWire.Query(1, "web.mesh.internal", DnsWire.TypeA);
            for (var i = 0; i < 300; i++)
            {
                byte[] packet;
                if (i % 3 == 0)
                {
                    // A valid query cut short, or with random bytes over its tail.
                    packet = valid[..random.Next(0, valid.Length)];
                }
                else
                {
                    packet = new byte[random.Next(0, 600)];
                    random.NextBytes(packet);
                    if (i % 3 == 2 && packet.Length > 12)
                    {
                        valid.AsSpan(0, 12).CopyTo(packet);
                    }
                }

                await socket.SendAsync(packet, System.Net.Sockets.SocketFlags.None, Cancel);
            }
        }

        // The burst can overflow the socket's receive buffer, and the kernel then drops datagrams,
        // ours included; a resolver retries, and so does this check.
        byte[]? reply = null;
        var answered = await Eventually.TryAsync(
            async ct => (reply = await DnsWire.ExchangeUdpAsync(endpoint, DnsWire.Query(4242, "web.mesh.internal", DnsWire.TypeA), TimeSpan.FromMilliseconds(500), ct)) is not null,
            ReplyTimeout,
            Cancel);

        Assert.True(answered);
        Assert.Equal([WebV4], Addresses(DnsWire.Parse(reply!)));
    }

    [Fact]
    public async Task ManyQuestions_IsFormErrOrDropped()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);
        var query = DnsWire.Query(77, "web.mesh.internal", DnsWire.TypeA);
        query[5] = 2; // QDCOUNT 2, but only one question follows

        var reply = await DnsWire.ExchangeUdpAsync(endpoint, query, TimeSpan.FromMilliseconds(500), Cancel);

        if (reply is not null)
        {
            Assert.Equal(ReturnCode.FormatError, DnsWire.Parse(reply).ReturnCode);
        }

        Assert.Equal([WebV4], Addresses(await QueryAsync(endpoint, "web.mesh.internal", DnsWire.TypeA)));
    }

    [Fact]
    public async Task LargeAnswer_IsTruncatedOverUdp_AndCompleteOverTcp()
    {
        var many = new List<MagicDnsExtraRecord>();
        for (var i = 1; i <= 60; i++)
        {
            many.Add(new MagicDnsExtraRecord("big.mesh.internal", MagicDnsRecordType.A, IPAddress.Parse($"100.64.1.{i}")));
        }

        await using var server = LoopbackDnsServer.Start(new MagicDnsRecords("mesh.internal", [], many, [], []), out var endpoint);
        var query = DnsWire.Query(5, "big.mesh.internal", DnsWire.TypeA);

        var udp = await DnsWire.ExchangeUdpAsync(endpoint, query, ReplyTimeout, Cancel);
        var tcp = await DnsWire.ExchangeTcpAsync(endpoint, query, Cancel);

        Assert.NotNull(udp);
        Assert.True(udp.Length <= 512, $"UDP reply of {udp.Length} bytes");
        Assert.True(DnsWire.IsTruncated(udp));
        Assert.False(DnsWire.IsTruncated(tcp));
        Assert.Equal(60, DnsWire.Parse(tcp).AnswerRecords.Count);
    }

    [Fact]
    public async Task LargeAnswer_FitsUdp_WhenClientAdvertisesEdns()
    {
        var many = new List<MagicDnsExtraRecord>();
        for (var i = 1; i <= 60; i++)
        {
            many.Add(new MagicDnsExtraRecord("big.mesh.internal", MagicDnsRecordType.A, IPAddress.Parse($"100.64.1.{i}")));
        }

        await using var server = LoopbackDnsServer.Start(new MagicDnsRecords("mesh.internal", [], many, [], []), out var endpoint);

        var udp = await DnsWire.ExchangeUdpAsync(endpoint, DnsWire.Query(6, "big.mesh.internal", DnsWire.TypeA, ednsPayload: 1232), ReplyTimeout, Cancel);

        Assert.NotNull(udp);
        Assert.False(DnsWire.IsTruncated(udp));
        var reply = DnsWire.Parse(udp);
        Assert.Equal(60, reply.AnswerRecords.Count);
        Assert.True(reply.IsEDnsEnabled);
    }

    [Fact]
    public async Task ConcurrentQueriesDuringUpdates_AllSeeAConsistentZone()
    {
        var v1 = IPAddress.Parse("100.64.2.1");
        var v2 = IPAddress.Parse("100.64.2.2");
        await using var server = LoopbackDnsServer.Start(new MagicDnsRecords("mesh.internal", [new MagicDnsNode("flip", [v1])], [], [], []), out var endpoint);
        var queries = new Task<DnsMessage>[64];
        for (var i = 0; i < queries.Length; i++)
        {
            // Each query is in flight while the zone is swapped under it.
            queries[i] = QueryAsync(endpoint, "flip.mesh.internal", DnsWire.TypeA);
            server.Update(new MagicDnsRecords("mesh.internal", [new MagicDnsNode("flip", [i % 2 == 0 ? v1 : v2])], [], [], []));
        }

        var replies = await Task.WhenAll(queries);

        foreach (var reply in replies)
        {
            var address = Assert.Single(Addresses(reply));
            Assert.True(address.Equals(v1) || address.Equals(v2), $"unexpected {address}");
        }
    }

    [Fact]
    public async Task IPv6Loopback_AnswersOverUdpAndTcp()
    {
        Assert.SkipUnless(System.Net.Sockets.Socket.OSSupportsIPv6, "no IPv6 on this host");
        using var probe = new System.Net.Sockets.TcpListener(IPAddress.IPv6Loopback, 0);
        probe.Start();
        var endpoint = new IPEndPoint(IPAddress.IPv6Loopback, ((IPEndPoint)probe.LocalEndpoint).Port);
        probe.Stop();
        await using var server = new MagicDnsServer(new MagicDnsServerOptions { Endpoints = [endpoint] }, Records());
        server.Start();

        var udp = await QueryAsync(endpoint, "web.mesh.internal", DnsWire.TypeAaaa);
        var tcp = DnsWire.Parse(await DnsWire.ExchangeTcpAsync(endpoint, DnsWire.Query(9, "web", DnsWire.TypeA), Cancel));

        Assert.Equal([WebV6], Addresses(udp));
        Assert.Equal([WebV4], Addresses(tcp));
    }

    [Fact]
    public async Task Start_SecondServerOnSameEndpoint_Throws()
    {
        await using var server = LoopbackDnsServer.Start(Records(), out var endpoint);
        await using var second = new MagicDnsServer(new MagicDnsServerOptions { Endpoints = [endpoint] }, Records());

        Assert.ThrowsAny<System.Net.Sockets.SocketException>(second.Start);
    }

    [Fact]
    public async Task Upstreams_SkipMagicDnsItself()
    {
        await using var server = new MagicDnsServer(
            new MagicDnsServerOptions
            {
                Endpoints = [new IPEndPoint(IPAddress.Loopback, 5353)],
                FallbackNameservers = [new IPEndPoint(MagicDnsAddresses.IPv4, 53), new IPEndPoint(IPAddress.Loopback, 5353), new IPEndPoint(IPAddress.Parse("127.0.0.9"), 53)],
            },
            Records());

        Assert.Equal([new IPEndPoint(IPAddress.Parse("127.0.0.9"), 53)], server.Upstreams);
    }
}
