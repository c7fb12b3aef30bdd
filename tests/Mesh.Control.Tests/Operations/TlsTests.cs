using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Mesh.Control.Tests.Coordinator;
using Mesh.Protocol.Control;

namespace Mesh.Control.Tests.Operations;

/// <summary>
/// TLS on listen_addr (tls_cert_path/tls_key_path, PEM): nodes register and stream maps through it
/// when they trust the certificate, and plain HTTP to that port gets nothing.
/// </summary>
public sealed class TlsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Tls_TrustedSelfSignedCertificate_NodeRegistersAndMaps()
    {
        using var tls = TestCertificate.Create();
        await using var coordinator = await StartWithTlsAsync(tls);
        Assert.Equal(Uri.UriSchemeHttps, coordinator.Url.Scheme);
        var key = await coordinator.CreateKeyAsync("alice", reusable: true);
        using var peer = coordinator.NewNode("peer");
        using var node = coordinator.NewNode("secure");
        using var peerClient = new ControlClient(coordinator.Url, peer.MachinePrivate, handler: tls.TrustingHandler());
        using var client = new ControlClient(coordinator.Url, node.MachinePrivate, handler: tls.TrustingHandler());

        var peerId = (await peerClient.RegisterAsync(new RegisterRequest { NodeKey = peer.NodeKey, AuthKey = key, Hostname = "peer" }, Token)).NodeId;
        var registered = await client.RegisterAsync(new RegisterRequest { NodeKey = node.NodeKey, AuthKey = key, Hostname = "secure" }, Token);
        Assert.True(registered.Authorized);

        var map = await client.MapAsync(node.MapRequest(), Token);
        Assert.Equal(registered.NodeId, map.Self!.Id);
        Assert.Contains(map.Peers!, p => p.Id == peerId);

        // A stream works over TLS too: its first message is the full map.
        using var streaming = CancellationTokenSource.CreateLinkedTokenSource(Token);
        await foreach (var first in client.MapStreamAsync(node.MapRequest(), streaming.Token))
        {
            Assert.Equal(registered.NodeId, first.Self!.Id);
            break;
        }

        Assert.Equal(2, (await coordinator.Admin.ListNodesAsync(null, Token)).Count);
    }

    [Fact]
    public async Task Tls_PlainHttpToTheTlsPort_Fails()
    {
        using var tls = TestCertificate.Create();
        await using var coordinator = await StartWithTlsAsync(tls);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        var plain = new UriBuilder(coordinator.Url) { Scheme = Uri.UriSchemeHttp, Path = ControlPaths.Health }.Uri;

        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(plain, Token));
        using var trusted = new HttpClient(tls.TrustingHandler());
        Assert.Equal(HttpStatusCode.OK, (await trusted.GetAsync(new Uri(coordinator.Url, ControlPaths.Health), Token)).StatusCode);
    }

    [Fact]
    public async Task Tls_ClientNotTrustingTheCertificate_RefusesToTalk()
    {
        using var tls = TestCertificate.Create();
        await using var coordinator = await StartWithTlsAsync(tls);
        var key = await coordinator.CreateKeyAsync("alice");
        using var node = coordinator.NewNode("naive");
        using var client = new ControlClient(coordinator.Url, node.MachinePrivate);

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => client.RegisterAsync(new RegisterRequest { NodeKey = node.NodeKey, AuthKey = key, Hostname = "naive" }, Token));

        Assert.IsType<AuthenticationException>(e.InnerException);
        Assert.Empty(await coordinator.Admin.ListNodesAsync(null, Token));
    }

    private static Task<TestCoordinator> StartWithTlsAsync(TestCertificate tls) => TestCoordinator.StartAsync(c =>
    {
        c.ServerUrl = "https://127.0.0.1:0";
        c.TlsCertPath = tls.CertPath;
        c.TlsKeyPath = tls.KeyPath;
    });
}

/// <summary>A self-signed ECDSA P-256 certificate for 127.0.0.1, written as PEM files in a temporary directory.</summary>
internal sealed class TestCertificate : IDisposable
{
    private TestCertificate(X509Certificate2 certificate, string directory)
    {
        Certificate = certificate;
        Directory = directory;
    }

    public X509Certificate2 Certificate { get; }
    public string Directory { get; }
    public string CertPath => Path.Combine(Directory, "tls.crt");
    public string KeyPath => Path.Combine(Directory, "tls.key");

    public static TestCertificate Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=mesh-coordinator-test", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false)); // serverAuth
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        var directory = Path.Combine(Path.GetTempPath(), "mesh-tls-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(directory);
        var result = new TestCertificate(certificate, directory);
        File.WriteAllText(result.CertPath, certificate.ExportCertificatePem());
        File.WriteAllText(result.KeyPath, key.ExportPkcs8PrivateKeyPem());
        return result;
    }

    /// <summary>A handler that trusts this certificate as a root (and nothing else), with the usual name check.</summary>
    public SocketsHttpHandler TrustingHandler()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.Add(Certificate);
        return new SocketsHttpHandler { SslOptions = { CertificateChainPolicy = policy } };
    }

    public void Dispose()
    {
        Certificate.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
