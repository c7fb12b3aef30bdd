using System.Net;
using Mesh.Operator.Injection;
using static Mesh.Operator.Tests.Injection.InjectionFixtures;

namespace Mesh.Operator.Tests.Injection;

/// <summary>MagicDNS in the pod's resolv.conf without losing cluster DNS (the choices: <see cref="PodDns"/>).</summary>
public sealed class PodDnsTests
{
    [Fact]
    public void ClusterFirst_BecomesNoneWithMagicDnsFirstThenClusterDns()
    {
        var result = Injector().Inject(Pod(), Context("shop"));
        var spec = result.Pod.Spec;
        Assert.Equal("None", spec.DnsPolicy);
        Assert.Equal(["100.100.100.100", "10.96.0.10"], spec.DnsConfig.Nameservers);
        Assert.Equal(["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "mesh.internal"], spec.DnsConfig.Searches);
        Assert.Equal([("ndots", "5")], spec.DnsConfig.Options.Select(o => (o.Name, o.Value)));
    }

    [Fact]
    public void ClusterFirst_OwnDnsConfig_MergedAsTheKubeletWould()
    {
        var pod = Pod("""
            spec:
              dnsPolicy: ClusterFirst
              dnsConfig:
                nameservers: [192.0.2.53, 10.96.0.10]
                searches: [corp.example, cluster.local.]
                options:
                - {name: ndots, value: "2"}
                - {name: edns0}
              containers: [{name: app, image: nginx}]
            """);
        var spec = Injector().Inject(pod, Context("shop")).Pod.Spec;
        Assert.Equal(["100.100.100.100", "10.96.0.10", "192.0.2.53"], spec.DnsConfig.Nameservers);
        Assert.Equal(["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "mesh.internal"], spec.DnsConfig.Searches);
        Assert.Equal([("ndots", "2"), ("edns0", null)], spec.DnsConfig.Options.Select(o => (o.Name, (string?)o.Value)));
    }

    [Fact]
    public void ClusterDomainAndBaseDomain_FromTheSettings()
    {
        var settings = Settings with
        {
            ClusterDomain = "k8s.example",
            Network = Settings.Network with { BaseDomain = "tail.example" },
            ClusterDns = [IPAddress.Parse("fd00::a"), IPAddress.Parse("10.0.0.10")],
        };
        var spec = Injector(settings).Inject(Pod(), Context("ops")).Pod.Spec;
        Assert.Equal(["100.100.100.100", "fd00::a", "10.0.0.10"], spec.DnsConfig.Nameservers);
        Assert.Equal(["ops.svc.k8s.example", "svc.k8s.example", "k8s.example", "tail.example"], spec.DnsConfig.Searches);
    }

    [Fact]
    public void None_MagicDnsPutFirstOwnConfigKept()
    {
        var pod = Pod("""
            spec:
              dnsPolicy: None
              dnsConfig:
                nameservers: [192.0.2.53]
                searches: [corp.example]
                options: [{name: ndots, value: "1"}]
              containers: [{name: app, image: nginx}]
            """);
        var result = Injector().Inject(pod, Context(ns: null));
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        var spec = result.Pod.Spec;
        Assert.Equal("None", spec.DnsPolicy);
        Assert.Equal(["100.100.100.100", "192.0.2.53"], spec.DnsConfig.Nameservers);
        Assert.Equal(["corp.example", "mesh.internal"], spec.DnsConfig.Searches);
        Assert.Equal([("ndots", "1")], spec.DnsConfig.Options.Select(o => (o.Name, o.Value)));
    }

    [Fact]
    public void None_ThreeNameserversAlready_RefusedNamingThem()
    {
        var pod = Pod("""
            spec:
              dnsPolicy: None
              dnsConfig: {nameservers: [192.0.2.1, 192.0.2.2, 192.0.2.3]}
              containers: [{name: app, image: nginx}]
            """);
        var result = Injector().Inject(pod, Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains("192.0.2.3", Assert.Single(result.Messages));
    }

    [Fact]
    public void Default_LeftAloneWithAWarning()
    {
        var pod = Pod();
        pod.Spec.DnsPolicy = "Default";
        var result = Injector().Inject(pod, Context());
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        Assert.Equal("Default", result.Pod.Spec.DnsPolicy);
        Assert.Null(result.Pod.Spec.DnsConfig);
        Assert.Contains("dnsPolicy Default", Assert.Single(result.Messages));
    }

    [Fact]
    public void ClusterFirst_NoClusterDns_RefusedSayingWhereToFindIt()
    {
        var result = Injector(Settings with { ClusterDns = [] }).Inject(Pod(), Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains("--cluster-dns", Assert.Single(result.Messages));
    }

    [Fact]
    public void ClusterFirst_NoNamespace_Refused()
    {
        var result = Injector().Inject(Pod(), Context(ns: null));
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains("namespace", Assert.Single(result.Messages));
    }

    [Fact]
    public void MagicDnsOff_DnsLeftAlone()
    {
        var result = Injector(Settings with { MagicDns = false, ClusterDns = [] }).Inject(Pod(), Context(ns: null));
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        Assert.Null(result.Pod.Spec.DnsPolicy);
        Assert.Null(result.Pod.Spec.DnsConfig);
        Assert.Null(InjectionStatus.TryParse(result.Pod.Metadata.Annotations[MeshAnnotations.Status])!.DnsPolicy);
    }
}
