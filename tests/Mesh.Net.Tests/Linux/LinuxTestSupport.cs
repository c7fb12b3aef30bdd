using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using Mesh.Net.Linux;

namespace Mesh.Net.Tests.Linux;

/// <summary>
/// Shared plumbing for the Linux I/O tests: skipping when the machine cannot run them, running a
/// body in a private network namespace, reading state back with `ip -j`, and waiting with deadlines.
/// </summary>
internal static class LinuxTestSupport
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>Skips unless the test can create namespaces and TUN devices.</summary>
    public static void RequireRootAndTun()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("needs Linux: TUN devices, netlink and network namespaces are Linux-only");
        }
        if (!IsEffectiveRoot())
        {
            Assert.Skip("needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create a network namespace and TUN devices");
        }
        if (!File.Exists("/dev/net/tun"))
        {
            Assert.Skip("/dev/net/tun is missing: load the tun module or give the container the device");
        }
        if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip"))
        {
            Assert.Skip("needs iproute2's `ip` to read kernel state back (apt-get install iproute2)");
        }
    }

    private static bool IsEffectiveRoot()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                {
                    string[] fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                    return fields.Length > 2 && fields[2] == "0";
                }
            }
        }
        catch (IOException)
        {
        }
        return false;
    }

    /// <summary>
    /// Runs <paramref name="body"/> on a dedicated thread that has unshared its network namespace:
    /// interfaces, addresses and routes it makes are invisible to everyone else and vanish with the
    /// thread. Loopback is brought up first. Fds opened there keep working from other threads, and
    /// processes it starts (`ip`) inherit the namespace.
    /// </summary>
    public static void InNetworkNamespace(Action body)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Native.Unshare(Native.CLONE_NEWNET) != 0)
                {
                    throw new SystemCallException("unsharing the network namespace", Marshal.GetLastPInvokeError());
                }
                using (var netlink = new RtNetlink())
                {
                    netlink.SetLinkUp(netlink.GetInterfaceIndex("lo"), true);
                }
                body();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        { IsBackground = true, Name = "lio-netns" };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(60)))
        {
            Assert.Fail("the namespaced test body did not finish within 60 s");
        }
        failure?.Throw();
    }

    /// <summary>Runs `ip -j ARGS` (in the calling thread's namespace) and parses its JSON.</summary>
    public static JsonElement IpJson(params string[] arguments)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-j");
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start ip");
        string output = process.StandardOutput.ReadToEnd();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"ip -j {string.Join(' ', arguments)} failed: {error}");
        return JsonDocument.Parse(string.IsNullOrWhiteSpace(output) ? "[]" : output).RootElement.Clone();
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or the deadline passes.</summary>
    public static bool WaitUntil(Func<bool> condition, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        var spin = new SpinWait();
        while (!condition())
        {
            if (clock.Elapsed > (timeout ?? Deadline))
            {
                return false;
            }
            spin.SpinOnce(sleep1Threshold: 10);
        }
        return true;
    }

    /// <summary>
    /// True once the thread with kernel id <paramref name="tid"/> is inside poll/ppoll (x86_64 7/271,
    /// arm64 73), i.e. really blocked, not merely about to block.
    /// </summary>
    public static bool IsBlockedInPoll(int tid)
    {
        try
        {
            string text = File.ReadAllText($"/proc/self/task/{tid}/syscall");
            string number = text.Split(' ', 2)[0];
            return number is "7" or "271" or "73";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
