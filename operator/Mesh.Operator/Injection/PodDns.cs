using System.Net;
using k8s.Models;

namespace Mesh.Operator.Injection;

/// <summary>
/// Points an injected pod's resolv.conf at MagicDNS (100.100.100.100, served by the sidecar on the
/// pod's loopback) while keeping cluster DNS working: the agent forwards every name it does not
/// own to the other nameservers of that same file (docs/agent.md, "MagicDNS").
/// </summary>
/// <remarks>
/// <para>The kubelet appends a pod's <c>dnsConfig.nameservers</c> after the cluster DNS of
/// <c>ClusterFirst</c>, and glibc asks the second nameserver only when the first does not answer,
/// so <c>ClusterFirst</c> + <c>dnsConfig</c> would never reach MagicDNS (cluster DNS answers
/// NXDOMAIN for mesh names). A <c>ClusterFirst</c> pod is therefore rewritten to
/// <c>dnsPolicy: None</c> with what the kubelet would have written, MagicDNS first:
/// nameservers 100.100.100.100 then the cluster DNS; search <c>NS.svc.DOMAIN svc.DOMAIN DOMAIN</c>,
/// the pod's own searches, then the mesh's base domain (last, so cluster names win);
/// <c>ndots:5</c> merged with the pod's options. What that loses: the node's own search domains,
/// which the kubelet would have appended and a pod spec cannot know.</para>
/// <para>A <c>None</c> pod keeps its own configuration with MagicDNS put first and the base domain
/// appended. A <c>Default</c> pod (the node's resolv.conf) is left alone with a warning: its
/// resolvers are not in the pod spec, so there would be nothing to forward to.</para>
/// </remarks>
internal static class PodDns
{
    public static readonly IPAddress MagicDnsAddress = IPAddress.Parse("100.100.100.100");

    /// <summary>Kubernetes' limits (core validation: MaxDNSNameservers, MaxDNSSearchPaths).</summary>
    public const int MaxNameservers = 3;
    public const int MaxSearches = 32;

    /// <summary>Rewrites <paramref name="spec"/>'s DNS for MagicDNS; adds to <paramref name="errors"/> or <paramref name="warnings"/> when it cannot.</summary>
    public static void Apply(V1PodSpec spec, InjectionSettings settings, string? podNamespace, List<string> errors, List<string> warnings)
    {
        if (!settings.MagicDns)
        {
            return;
        }

        var baseDomain = settings.Network.BaseDomain;
        var policy = spec.DnsPolicy ?? "ClusterFirst";
        var own = spec.DnsConfig;
        switch (policy)
        {
            // Without hostNetwork (such pods are not injected), ClusterFirstWithHostNet is ClusterFirst.
            case "ClusterFirst" or "ClusterFirstWithHostNet":
                {
                    if (settings.ClusterDns.Count == 0)
                    {
                        errors.Add("dnsPolicy ClusterFirst: MagicDNS needs the cluster DNS Service's IP to keep cluster names working (mesh-operator inject --cluster-dns; kubectl -n kube-system get svc kube-dns) — or leave DNS alone with --magic-dns=false");
                        return;
                    }

                    if (string.IsNullOrEmpty(podNamespace))
                    {
                        errors.Add("dnsPolicy ClusterFirst: the pod's namespace is needed for its DNS search list (set metadata.namespace or pass --namespace)");
                        return;
                    }

                    var domain = settings.ClusterDomain;
                    List<string> nameservers = [MagicDnsAddress.ToString(), .. settings.ClusterDns.Select(a => a.ToString())];
                    List<string> searches = [$"{podNamespace}.svc.{domain}", $"svc.{domain}", domain];
                    var options = new List<V1PodDNSConfigOption> { new() { Name = "ndots", Value = "5" } };
                    spec.DnsPolicy = "None";
                    spec.DnsConfig = new V1PodDNSConfig
                    {
                        Nameservers = Distinct(nameservers, own?.Nameservers),
                        Searches = Searches(searches, own?.Searches, baseDomain),
                        Options = MergeOptions(options, own?.Options),
                    };
                    break;
                }

            case "None":
                {
                    spec.DnsConfig = new V1PodDNSConfig
                    {
                        Nameservers = Distinct([MagicDnsAddress.ToString()], own?.Nameservers),
                        Searches = Searches([], own?.Searches, baseDomain),
                        Options = own?.Options,
                    };
                    if (spec.DnsConfig.Nameservers.Count == 1)
                    {
                        warnings.Add("dnsPolicy None names no nameserver besides MagicDNS: names outside the mesh will not resolve");
                    }

                    break;
                }

            case "Default":
                warnings.Add("dnsPolicy Default: the node's resolvers are not in the pod spec, so the pod's DNS is left alone; mesh names resolve only when 100.100.100.100 is asked directly");
                return;
            default:
                warnings.Add($"dnsPolicy {policy} is unknown; the pod's DNS is left alone");
                return;
        }

        if (spec.DnsConfig.Nameservers.Count > MaxNameservers)
        {
            errors.Add($"dnsConfig: MagicDNS would make {spec.DnsConfig.Nameservers.Count} nameservers ({string.Join(", ", spec.DnsConfig.Nameservers)}); Kubernetes allows {MaxNameservers}");
        }

        if (spec.DnsConfig.Searches.Count > MaxSearches)
        {
            errors.Add($"dnsConfig: {spec.DnsConfig.Searches.Count} search domains; Kubernetes allows {MaxSearches}");
        }
    }

    private static List<string> Distinct(List<string> first, IList<string>? then)
    {
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var address in first.Concat(then ?? []))
        {
            // Compared as addresses, so two spellings of one server count once.
            var key = IPAddress.TryParse(address, out var parsed) ? (parsed.IsIPv4MappedToIPv6 ? parsed.MapToIPv4() : parsed).ToString() : address;
            if (seen.Add(key))
            {
                result.Add(address);
            }
        }

        return result;
    }

    private static List<string> Searches(List<string> first, IList<string>? own, string baseDomain)
    {
        var result = new List<string>();
        foreach (var domain in first.Concat(own ?? []).Append(baseDomain))
        {
            var trimmed = domain.TrimEnd('.');
            if (!result.Exists(r => r.Equals(trimmed, StringComparison.OrdinalIgnoreCase)))
            {
                result.Add(domain);
            }
        }

        return result;
    }

    /// <summary>The kubelet's merge: an option of the pod replaces a default of the same name.</summary>
    private static List<V1PodDNSConfigOption> MergeOptions(List<V1PodDNSConfigOption> defaults, IList<V1PodDNSConfigOption>? own)
    {
        var result = new List<V1PodDNSConfigOption>();
        foreach (var option in defaults)
        {
            if (own?.Any(o => o.Name == option.Name) != true)
            {
                result.Add(option);
            }
        }

        result.AddRange(own ?? []);
        return result;
    }
}
