using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Agent;

/// <summary>
/// The router side of subnet routes and exit nodes: while this node is primary for a subnet route
/// or an approved exit node, the kernel forwards (IPv4 and IPv6 forwarding on) and traffic from the
/// mesh is masqueraded as it leaves, so the local network (or the internet) answers to this node's
/// own address and needs no route back to the mesh.
/// </summary>
/// <remarks>
/// Rules live in chains of their own, named after the TUN (`mesh-nat-mesh0` in the nat table,
/// jumped to from POSTROUTING; `mesh-fwd-mesh0` in the filter table, jumped to from FORWARD), so
/// they are rebuilt wholesale on a change and removed without a trace on shutdown; chains left by
/// an agent that crashed are taken over and flushed. The FORWARD chain accepts what comes out of the
/// TUN and what answers it: the mesh's own packet filter has already decided what may enter.
/// For now the rules are installed by running `iptables`/`ip6tables` (`-w`, either backend) as child
/// processes; programming nftables over netlink is the long-term way. The forwarding sysctls are
/// restored to what they were when the agent turned them on.
/// </remarks>
internal sealed class Forwarding : IDisposable
{
    public static readonly IPNetwork MeshV4 = IPNetwork.Parse("100.64.0.0/10");
    public static readonly IPNetwork MeshV6 = IPNetwork.Parse("fd7a:115c:a1e0::/48");

    private const string V4Forwarding = "/proc/sys/net/ipv4/ip_forward";
    private const string V6Forwarding = "/proc/sys/net/ipv6/conf/all/forwarding";

    private readonly string _tun;
    private readonly ILogger _logger;
    private readonly Func<string, IReadOnlyList<string>, (int ExitCode, string Output)> _run;
    private readonly Dictionary<string, string> _sysctlsBefore = new(StringComparer.Ordinal);
    private readonly HashSet<string> _installedFamilies = new(StringComparer.Ordinal);
    private string _applied = "";
    private bool _warnedNoIptables;

    public Forwarding(string tun, ILogger logger, Func<string, IReadOnlyList<string>, (int, string)>? run = null)
    {
        _tun = tun;
        _logger = logger;
        _run = run ?? Run;
    }

    private string NatChain => $"mesh-nat-{_tun}";
    private string ForwardChain => $"mesh-fwd-{_tun}";

    /// <summary>The routes this node forwards for now, and whether it is an exit node (empty, false: nothing).</summary>
    public void Update(IReadOnlyList<string> primaryRoutes, bool exitNode)
    {
        var routes = primaryRoutes.Select(IPNetwork.Parse).Where(r => r.PrefixLength > 0).Distinct().OrderBy(r => r.ToString(), StringComparer.Ordinal).ToList();
        var key = $"{string.Join(',', routes)}|{exitNode}";
        if (key == _applied)
        {
            return;
        }

        _applied = key;
        foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            var mine = routes.Where(r => r.BaseAddress.AddressFamily == family).ToList();
            if (mine.Count == 0 && !exitNode)
            {
                Remove(family);
                continue;
            }

            EnableForwarding(family);
            Install(family, mine, exitNode);
        }

        if (routes.Count > 0 || exitNode)
        {
            _logger.LogInformation("Forwarding from the mesh{Exit}{Routes}", exitNode ? " to everywhere (exit node)" : "", routes.Count > 0 ? $" to {string.Join(", ", routes)}" : "");
        }
    }

    public void Dispose()
    {
        Remove(AddressFamily.InterNetwork);
        Remove(AddressFamily.InterNetworkV6);
        _applied = "";
    }

    private static string Tool(AddressFamily family) => family == AddressFamily.InterNetwork ? "iptables" : "ip6tables";

    private static string SysctlOf(AddressFamily family) => family == AddressFamily.InterNetwork ? V4Forwarding : V6Forwarding;

    private void EnableForwarding(AddressFamily family)
    {
        var path = SysctlOf(family);
        try
        {
            var before = File.ReadAllText(path).Trim();
            if (before != "1")
            {
                _sysctlsBefore.TryAdd(path, before);
                File.WriteAllText(path, "1");
                _logger.LogInformation("Turned on {Sysctl}", path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Cannot turn on forwarding ({Sysctl}): {Error}; routed traffic will not pass", path, e.Message);
        }
    }

    private void Install(AddressFamily family, List<IPNetwork> routes, bool exitNode)
    {
        var tool = Tool(family);
        var mesh = (family == AddressFamily.InterNetwork ? MeshV4 : MeshV6).ToString();
        _installedFamilies.Add(tool);
        if (!EnsureChain(tool, "nat", NatChain, "POSTROUTING", insert: false) || !EnsureChain(tool, "filter", ForwardChain, "FORWARD", insert: true))
        {
            return;
        }

        var rules = new List<string[]>();
        if (exitNode)
        {
            rules.Add(["-t", "nat", "-A", NatChain, "-s", mesh, "!", "-o", _tun, "-j", "MASQUERADE"]);
        }
        else
        {
            rules.AddRange(routes.Select(r => new[] { "-t", "nat", "-A", NatChain, "-s", mesh, "-d", r.ToString(), "-j", "MASQUERADE" }));
        }

        rules.Add(["-t", "filter", "-A", ForwardChain, "-i", _tun, "-j", "ACCEPT"]);
        rules.Add(["-t", "filter", "-A", ForwardChain, "-o", _tun, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]);
        foreach (var rule in rules)
        {
            Iptables(tool, rule, warn: true);
        }
    }

    /// <summary>Creates the chain (or flushes the one a previous run left) and makes sure the built-in chain jumps to it.</summary>
    private bool EnsureChain(string tool, string table, string chain, string from, bool insert)
    {
        if (!Iptables(tool, ["-t", table, "-N", chain], warn: false) && !Iptables(tool, ["-t", table, "-F", chain], warn: true))
        {
            return false;
        }

        if (!Iptables(tool, ["-t", table, "-C", from, "-j", chain], warn: false))
        {
            return Iptables(tool, insert ? ["-t", table, "-I", from, "1", "-j", chain] : ["-t", table, "-A", from, "-j", chain], warn: true);
        }

        return true;
    }

    private void Remove(AddressFamily family)
    {
        var tool = Tool(family);
        if (_installedFamilies.Remove(tool))
        {
            foreach (var (table, chain, from) in new[] { ("nat", NatChain, "POSTROUTING"), ("filter", ForwardChain, "FORWARD") })
            {
                while (Iptables(tool, ["-t", table, "-D", from, "-j", chain], warn: false))
                {
                }

                Iptables(tool, ["-t", table, "-F", chain], warn: false);
                Iptables(tool, ["-t", table, "-X", chain], warn: false);
            }
        }

        var path = SysctlOf(family);
        if (_sysctlsBefore.Remove(path, out var before))
        {
            try
            {
                File.WriteAllText(path, before);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("Cannot restore {Sysctl} to {Value}: {Error}", path, before, e.Message);
            }
        }
    }

    private bool Iptables(string tool, IReadOnlyList<string> args, bool warn)
    {
        var (code, output) = _run(tool, ["-w", .. args]);
        if (code == 127)
        {
            if (!_warnedNoIptables)
            {
                _warnedNoIptables = true;
                _logger.LogWarning("{Tool} is not installed: routed traffic leaves without masquerading, so the networks behind this node need a route back to the mesh", tool);
            }

            return false;
        }

        if (code != 0 && warn)
        {
            _logger.LogWarning("{Tool} {Args}: {Output}", tool, string.Join(' ', args), output.Trim());
        }

        return code == 0;
    }

    /// <summary>Runs a tool to completion; exit code 127 when it cannot be started.</summary>
    private static (int, string) Run(string tool, IReadOnlyList<string> args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        try
        {
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                process.Kill();
                return (1, $"{tool} did not finish in 20 s");
            }

            return (process.ExitCode, stdout + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (127, e.Message);
        }
    }
}
