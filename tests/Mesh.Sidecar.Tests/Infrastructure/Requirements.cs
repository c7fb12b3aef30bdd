namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// What the namespace tests need from the machine. A test calls <see cref="SkipUnlessNetworkTestsCanRun"/>
/// first, so a machine without root, TUN or the reference tools reports a skip naming what is
/// missing instead of a confusing failure.
/// </summary>
internal static class Requirements
{
    private static readonly string[] Tools = ["ip", "wg", "wireguard-go", "ping"];

    public static void SkipUnlessNetworkTestsCanRun(params string[] extraTools)
    {
        var missing = new List<string>();
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("network namespace tests need Linux");
        }

        if (Native.GetEffectiveUserId() != 0)
        {
            missing.Add("root (network namespaces and TUN devices need CAP_NET_ADMIN; run as root)");
        }

        if (!File.Exists("/dev/net/tun"))
        {
            missing.Add("/dev/net/tun");
        }

        foreach (var tool in Tools.Concat(extraTools))
        {
            if (FindOnPath(tool) is null)
            {
                missing.Add($"`{tool}` on PATH");
            }
        }

        if (missing.Count > 0)
        {
            Assert.Skip($"missing: {string.Join(", ", missing)} (Debian: apt-get install wireguard-tools wireguard-go iproute2 iputils-ping)");
        }
    }

    private static string? FindOnPath(string tool)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => System.IO.Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);
    }
}
