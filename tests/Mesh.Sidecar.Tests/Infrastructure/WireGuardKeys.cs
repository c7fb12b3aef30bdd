namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>A WireGuard key pair in base64, made by the reference tool (<c>wg genkey</c>, <c>wg pubkey</c>).</summary>
internal sealed record WireGuardKeyPair(string PrivateKey, string PublicKey)
{
    public override string ToString() => $"WireGuardKeyPair {{ PublicKey = {PublicKey} }}";
}

internal static class WireGuardKeys
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static async Task<WireGuardKeyPair> GenerateAsync(CancellationToken cancellationToken)
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        var privateKey = (await ChildProcess.RunAsync("wg", ["genkey"], Timeout, cancellationToken)).EnsureSuccess().Stdout.Trim();
        var publicKey = (await ChildProcess.RunAsync("wg", ["pubkey"], Timeout, cancellationToken, stdin: privateKey + "\n")).EnsureSuccess().Stdout.Trim();
        return new WireGuardKeyPair(privateKey, publicKey);
    }

    public static async Task<string> GeneratePresharedKeyAsync(CancellationToken cancellationToken)
    {
        Requirements.SkipUnlessNetworkTestsCanRun();
        return (await ChildProcess.RunAsync("wg", ["genpsk"], Timeout, cancellationToken)).EnsureSuccess().Stdout.Trim();
    }
}
