namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// Our implementation: <c>dotnet mesh-sidecar.dll wg --config FILE --interface NAME</c> in a
/// namespace, from a <c>wg-quick</c> file. The sidecar itself must create the TUN, add the addresses
/// and the routes for AllowedIPs, bring the link up and serve the UAPI socket; this class only
/// waits for that (socket, then link UP with every address) and never patches it up.
/// </summary>
internal sealed class MeshSidecarPeer : WireGuardPeer
{
    /// <summary>Generous: a cold .NET start on a loaded two-core machine.</summary>
    private static readonly TimeSpan SocketDeadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan InterfaceDeadline = TimeSpan.FromSeconds(10);

    private MeshSidecarPeer(NetNs ns, string interfaceName, WireGuardConfig config)
        : base(ns, interfaceName, config)
    {
    }

    public override string Implementation => "mesh-sidecar";

    /// <summary>
    /// The sidecar built next to the tests (the test project references Mesh.Sidecar), or the one
    /// named by <c>MESH_SIDECAR_DLL</c> (for example a Release build) when set.
    /// </summary>
    public static string AssemblyPath =>
        Environment.GetEnvironmentVariable("MESH_SIDECAR_DLL") is { Length: > 0 } path
            ? path
            : Path.Combine(AppContext.BaseDirectory, "mesh-sidecar.dll");

    /// <param name="offloads">False starts it with <c>MESH_OFFLOADS=off</c> (the plain, one-packet-per-syscall path).</param>
    public static Task<MeshSidecarPeer> StartAsync(NetNs ns, string interfaceName, WireGuardConfig config, CancellationToken cancellationToken, bool offloads = true) =>
        StartOrCleanUpAsync(new MeshSidecarPeer(ns, interfaceName, config), peer => peer.StartCoreAsync(offloads, cancellationToken));

    private async Task StartCoreAsync(bool offloads, CancellationToken cancellationToken)
    {
        if (!File.Exists(AssemblyPath))
        {
            throw new FileNotFoundException($"{AssemblyPath} is missing; build tests/Mesh.Sidecar.Tests", AssemblyPath);
        }

        var file = WriteConfigFile($"{Interface}.conf", Config.ToWgQuick());
        Process = Namespace.Start(["dotnet", AssemblyPath, "wg", "--config", file, "--interface", Interface],
            offloads ? null : new Dictionary<string, string> { ["MESH_OFFLOADS"] = "off" });
        await WaitForSocketAsync(SocketDeadline, cancellationToken);
        string missing = "";
        var configured = await Eventually.TryAsync(
            async ct =>
            {
                missing = await MissingInterfaceStateAsync(ct);
                return missing.Length == 0;
            },
            InterfaceDeadline,
            cancellationToken,
            TimeSpan.FromMilliseconds(100));
        if (!configured)
        {
            throw new TimeoutException($"mesh-sidecar served {SocketPath} but {Interface} is not ready within {InterfaceDeadline.TotalSeconds:0} s: {missing}\n{await DescribeAsync()}");
        }
    }

    private async Task<string> MissingInterfaceStateAsync(CancellationToken cancellationToken)
    {
        if (Process is { HasExited: true } process)
        {
            return $"mesh-sidecar exited with {process.ExitCode}";
        }

        var link = await Namespace.ExecAsync(["ip", "-o", "link", "show", Interface], cancellationToken);
        if (!link.Succeeded)
        {
            return $"no interface {Interface}";
        }

        var flags = link.Stdout.Split('<', '>') is [_, var inside, ..] ? inside.Split(',') : [];
        if (!flags.Contains("UP"))
        {
            return $"{Interface} is not UP ({link.Stdout.Trim()})";
        }

        var addresses = (await Namespace.ExecAsync(["ip", "-o", "addr", "show", "dev", Interface], cancellationToken)).Stdout;
        var absent = Config.Addresses.Where(a => !addresses.Contains($" {a} ", StringComparison.Ordinal)).ToList();
        return absent.Count == 0 ? "" : $"addresses missing on {Interface}: {string.Join(", ", absent)}";
    }
}
