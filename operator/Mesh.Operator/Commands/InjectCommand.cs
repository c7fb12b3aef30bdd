using System.CommandLine;
using System.Net;
using Mesh.Operator.Injection;

namespace Mesh.Operator.Commands;

/// <summary>
/// <c>mesh-operator inject -f FILE|-</c>: prints the given manifests with the sidecar injected, exactly
/// as the webhook would (the same <see cref="SidecarInjector"/> and the same JSON Patch), like
/// <c>istioctl kube-inject</c>. Offline: the network's coordinator URL and auth key Secret come from
/// flags instead of a MeshNetwork, and every pod is injected unless it opts out, since a manifest
/// cannot show its namespace's label.
/// </summary>
internal static class InjectCommand
{
    /// <summary>The settings the flags give, before they are checked.</summary>
    internal sealed record Options
    {
        public required string File { get; init; }
        public string Image { get; init; } = InjectionSettings.DefaultImage;
        public string Network { get; init; } = "default";
        public string? LoginServer { get; init; }
        public string AuthKeySecret { get; init; } = "mesh-authkey";
        public string AuthKeySecretKey { get; init; } = "authkey";
        public string BaseDomain { get; init; } = "mesh.internal";
        public bool MagicDns { get; init; } = true;
        public string? ClusterDns { get; init; }
        public string ClusterDomain { get; init; } = InjectionSettings.DefaultClusterDomain;
        public string? Namespace { get; init; }
    }

    /// <summary>The command; <paramref name="stdin"/> is read for <c>-f -</c> (default: the console's).</summary>
    public static Command Create(TextReader? stdin = null)
    {
        var file = new Option<string>("--filename", "-f") { Description = "the manifests to inject (multi-document YAML); - reads standard input", Required = true };
        var image = new Option<string>("--image") { Description = "the sidecar image", DefaultValueFactory = _ => InjectionSettings.DefaultImage };
        var network = new Option<string>("--network") { Description = "the MeshNetwork the pods join (a pod's mesh.meshoperator.io/network must match)", DefaultValueFactory = _ => "default" };
        var loginServer = new Option<string>("--login-server") { Description = "the coordinator's URL as pods reach it (MESH_LOGIN_SERVER)", Required = true };
        var secret = new Option<string>("--authkey-secret") { Description = "the Secret, in each pod's namespace, that holds the pre-auth key (MESH_AUTHKEY)", DefaultValueFactory = _ => "mesh-authkey" };
        var secretKey = new Option<string>("--authkey-secret-key") { Description = "the key of that Secret", DefaultValueFactory = _ => "authkey" };
        var baseDomain = new Option<string>("--base-domain") { Description = "the network's MagicDNS domain, added to the pods' DNS search list", DefaultValueFactory = _ => "mesh.internal" };
        var magicDns = new Option<bool>("--magic-dns") { Description = "point the pods' resolv.conf at MagicDNS (dnsConfig); --magic-dns=false leaves their DNS alone", DefaultValueFactory = _ => true };
        var clusterDns = new Option<string?>("--cluster-dns") { Description = "the cluster DNS Service's IP (kubectl -n kube-system get svc kube-dns), kept as MagicDNS's upstream; comma-separate a second one" };
        var clusterDomain = new Option<string>("--cluster-domain") { Description = "the cluster's DNS domain", DefaultValueFactory = _ => InjectionSettings.DefaultClusterDomain };
        var ns = new Option<string?>("--namespace", "-n") { Description = "the namespace of documents that name none (for the pods' DNS search list)" };
        var command = new Command("inject", "print the manifests with the mesh sidecar injected, as the admission webhook would (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, List)")
        {
            file, image, network, loginServer, secret, secretKey, baseDomain, magicDns, clusterDns, clusterDomain, ns,
        };
        command.SetAction(parse => Run(
            new Options
            {
                File = parse.GetValue(file)!,
                Image = parse.GetValue(image)!,
                Network = parse.GetValue(network)!,
                LoginServer = parse.GetValue(loginServer),
                AuthKeySecret = parse.GetValue(secret)!,
                AuthKeySecretKey = parse.GetValue(secretKey)!,
                BaseDomain = parse.GetValue(baseDomain)!,
                MagicDns = parse.GetValue(magicDns),
                ClusterDns = parse.GetValue(clusterDns),
                ClusterDomain = parse.GetValue(clusterDomain)!,
                Namespace = parse.GetValue(ns),
            },
            stdin ?? Console.In,
            parse.InvocationConfiguration.Output,
            parse.InvocationConfiguration.Error));
        return command;
    }

    /// <summary>Reads, injects, prints; 0, or 1 with every problem on <paramref name="stderr"/> and nothing on <paramref name="stdout"/>.</summary>
    internal static int Run(Options options, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        if (!TrySettings(options, out var settings, out var problems))
        {
            foreach (var problem in problems)
            {
                stderr.WriteLine($"error: {problem}");
            }

            return 1;
        }

        string yaml;
        try
        {
            yaml = options.File == "-" ? stdin.ReadToEnd() : File.ReadAllText(options.File);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }

        var result = new ManifestInjector(new SidecarInjector(settings), options.Namespace).Inject(yaml);
        foreach (var warning in result.Warnings)
        {
            stderr.WriteLine($"warning: {warning}");
        }

        foreach (var error in result.Errors)
        {
            stderr.WriteLine($"error: {error}");
        }

        if (result.Errors.Count > 0)
        {
            return 1;
        }

        stdout.Write(result.Output);
        return 0;
    }

    private static bool TrySettings(Options options, out InjectionSettings settings, out List<string> problems)
    {
        problems = [];
        settings = null!;
        if (string.IsNullOrEmpty(options.LoginServer) || !Uri.TryCreate(options.LoginServer, UriKind.Absolute, out var loginServer))
        {
            problems.Add($"--login-server \"{options.LoginServer}\": expected the coordinator's http(s) URL, e.g. http://mesh-coordinator.mesh-system.svc:8080");
            return false;
        }

        var clusterDns = new List<IPAddress>();
        foreach (var text in (options.ClusterDns ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // IPAddress.TryParse takes inet_aton's short forms ("10.96.0" is 10.96.0.0); a typo must not pass.
            if (IPAddress.TryParse(text, out var address) && (text.Contains(':', StringComparison.Ordinal) || text.Count(c => c == '.') == 3))
            {
                clusterDns.Add(address);
            }
            else
            {
                problems.Add($"--cluster-dns \"{text}\": not an IP address");
            }
        }

        settings = new InjectionSettings
        {
            Network = new MeshNetworkTarget(options.Network, loginServer, options.AuthKeySecret, options.AuthKeySecretKey, options.BaseDomain),
            Image = options.Image,
            MagicDns = options.MagicDns,
            ClusterDns = clusterDns,
            ClusterDomain = options.ClusterDomain,
        };
        problems.AddRange(settings.Validate());
        return problems.Count == 0;
    }
}
