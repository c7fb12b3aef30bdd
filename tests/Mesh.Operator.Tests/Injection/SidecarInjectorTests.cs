using System.Text.Json.Nodes;
using k8s.Models;
using Mesh.Operator.Injection;
using static Mesh.Operator.Tests.Injection.InjectionFixtures;

namespace Mesh.Operator.Tests.Injection;

/// <summary>The injector on typed pods: when it injects, what it adds, and the patch that says so.</summary>
public sealed class SidecarInjectorTests
{
    [Fact]
    public void Inject_NoChoiceNamespaceNotEnabled_NotRequested()
    {
        var pod = Pod();
        var result = Injector().Inject(pod, Context(namespaceEnabled: false));
        Assert.Equal(InjectionOutcome.NotRequested, result.Outcome);
        Assert.Empty(result.Patch);
        Assert.Same(pod, result.Pod);
    }

    [Fact]
    public void Inject_NoChoiceNamespaceEnabled_Injected()
    {
        var result = Injector().Inject(Pod(), Context(namespaceEnabled: true));
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        Assert.NotEmpty(result.Patch);
    }

    [Fact]
    public void Inject_AnnotationTrueNamespaceNotEnabled_Injected()
    {
        var result = Injector().Inject(Pod((MeshAnnotations.Inject, "true")), Context(namespaceEnabled: false));
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
    }

    [Theory]
    [InlineData("false")]
    [InlineData("False")]
    public void Inject_OptedOut_Unchanged(string value)
    {
        var pod = Pod((MeshAnnotations.Inject, value));
        var before = JsonOf(pod);
        var result = Injector().Inject(pod, Context(namespaceEnabled: true));
        Assert.Equal(InjectionOutcome.OptedOut, result.Outcome);
        Assert.Empty(result.Patch);
        Assert.Equal(before, JsonOf(result.Pod));
    }

    [Fact]
    public void Inject_LabelAndAnnotationDisagree_LabelWins()
    {
        var pod = Pod((MeshAnnotations.Inject, "true"));
        pod.Metadata.Labels = new Dictionary<string, string> { [MeshAnnotations.Inject] = "false" };
        Assert.Equal(InjectionOutcome.OptedOut, Injector().Inject(pod, Context()).Outcome);
    }

    [Fact]
    public void Inject_InjectValueNotBoolean_RefusedNamingTheValue()
    {
        var result = Injector().Inject(Pod((MeshAnnotations.Inject, "yes")), Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains("\"yes\"", Assert.Single(result.Messages));
    }

    [Fact]
    public void Inject_Twice_SecondPassChangesNothing()
    {
        var first = Injector().Inject(Pod(), Context());
        Assert.Equal(InjectionOutcome.Injected, first.Outcome);
        var second = Injector().Inject(first.Pod, Context());
        Assert.Equal(InjectionOutcome.AlreadyInjected, second.Outcome);
        Assert.Empty(second.Patch);
        Assert.Equal(JsonOf(first.Pod), JsonOf(second.Pod));
    }

    [Fact]
    public void Inject_ContainerAlreadyNamedMeshSidecar_AlreadyInjected()
    {
        var pod = Pod();
        pod.Spec.Containers.Add(new V1Container { Name = SidecarTemplate.ContainerName, Image = "mine" });
        Assert.Equal(InjectionOutcome.AlreadyInjected, Injector().Inject(pod, Context()).Outcome);
    }

    [Fact]
    public void Inject_InputPod_IsNotModified()
    {
        var pod = Pod((MeshAnnotations.Hostname, "web"));
        var before = JsonOf(pod);
        _ = Injector().Inject(pod, Context());
        Assert.Equal(before, JsonOf(pod));
    }

    [Fact]
    public void Inject_Sidecar_IsANativeSidecarFirstAmongInitContainers()
    {
        var result = Injector().Inject(Pod(), Context());
        var first = result.Pod.Spec.InitContainers[0];
        Assert.Equal("mesh-sidecar", first.Name);
        Assert.Equal("Always", first.RestartPolicy);
        Assert.Equal(["mesh-sidecar", "up"], first.Command);
        Assert.Equal(Image, first.Image);
        Assert.DoesNotContain(result.Pod.Spec.Containers, c => c.Name == "mesh-sidecar");
    }

    [Fact]
    public void Inject_Job_SidecarDoesNotKeepThePodFromCompleting()
    {
        var pod = Pod("""
            spec:
              restartPolicy: Never
              containers:
              - name: backup
                image: example/backup:2.1
            """);
        var result = Injector().Inject(pod, Context());

        // A native sidecar: an init container with restartPolicy Always, ended by the kubelet once
        // the regular containers have exited, never one of the containers the Job waits for.
        Assert.Equal("Always", Sidecar(result).RestartPolicy);
        Assert.Equal(["backup"], result.Pod.Spec.Containers.Select(c => c.Name));
        Assert.Equal("Never", result.Pod.Spec.RestartPolicy);
    }

    [Fact]
    public void Inject_ExistingInitContainersAndVolumes_KeptInOrderAfterOrBeforeOurs()
    {
        var pod = Pod("""
            spec:
              initContainers:
              - {name: migrate, image: busybox}
              - {name: warm, image: busybox}
              containers:
              - {name: app, image: nginx}
              volumes:
              - {name: data, emptyDir: {}}
              - {name: config, configMap: {name: app}}
            """);
        var result = Injector().Inject(pod, Context());
        Assert.Equal(["mesh-sidecar", "migrate", "warm"], result.Pod.Spec.InitContainers.Select(c => c.Name));
        Assert.Equal(["data", "config", "mesh-state", "mesh-run", "mesh-tun"], result.Pod.Spec.Volumes.Select(v => v.Name));
    }

    [Fact]
    public void Inject_Defaults_AgentEnvironmentFromTheNetwork()
    {
        var env = Env(Injector().Inject(Pod(), Context()));
        Assert.Equal(LoginServer, env["MESH_LOGIN_SERVER"].Value);
        Assert.Equal(("mesh-authkey", "authkey"), (env["MESH_AUTHKEY"].ValueFrom.SecretKeyRef.Name, env["MESH_AUTHKEY"].ValueFrom.SecretKeyRef.Key));
        Assert.Null(env["MESH_AUTHKEY"].Value);
        Assert.Equal("metadata.name", env["MESH_HOSTNAME"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("/var/lib/mesh", env["MESH_STATE"].Value);
        Assert.Equal("/var/run/mesh/mesh.sock", env["MESH_SOCKET"].Value);
        Assert.Equal("9001", env["MESH_METRICS_PORT"].Value);
        Assert.False(env.ContainsKey("MESH_ADVERTISE_ROUTES"));
        Assert.False(env.ContainsKey("MESH_ADVERTISE_EXIT_NODE"));
        Assert.False(env.ContainsKey("MESH_ACCEPT_ROUTES"));
        Assert.False(env.ContainsKey("MESH_ADVERTISE_TAGS"));
    }

    [Theory]
    [InlineData(MeshAnnotations.Hostname, "db", "MESH_HOSTNAME", "db")]
    [InlineData(MeshAnnotations.AdvertiseRoutes, "10.0.0.0/24", "MESH_ADVERTISE_ROUTES", "10.0.0.0/24")]
    [InlineData(MeshAnnotations.AdvertiseRoutes, " 10.0.0.0/24 , fd00::/64,10.0.0.0/24", "MESH_ADVERTISE_ROUTES", "10.0.0.0/24,fd00::/64")]
    [InlineData(MeshAnnotations.ExitNode, "true", "MESH_ADVERTISE_EXIT_NODE", "true")]
    [InlineData(MeshAnnotations.AcceptRoutes, "true", "MESH_ACCEPT_ROUTES", "true")]
    [InlineData(MeshAnnotations.AcceptRoutes, "TRUE", "MESH_ACCEPT_ROUTES", "true")]
    public void Inject_Annotation_BecomesTheAgentsVariable(string annotation, string value, string variable, string expected)
    {
        var env = Env(Injector().Inject(Pod((annotation, value)), Context()));
        Assert.Equal(expected, env[variable].Value);
    }

    [Theory]
    [InlineData(MeshAnnotations.ExitNode, "false", "MESH_ADVERTISE_EXIT_NODE")]
    [InlineData(MeshAnnotations.AcceptRoutes, "false", "MESH_ACCEPT_ROUTES")]
    [InlineData(MeshAnnotations.AdvertiseRoutes, "", "MESH_ADVERTISE_ROUTES")]
    public void Inject_AnnotationOff_NoVariable(string annotation, string value, string variable)
    {
        var result = Injector().Inject(Pod((annotation, value)), Context());
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        Assert.False(Env(result).ContainsKey(variable));
    }

    [Fact]
    public void Inject_EveryVariable_IsOneTheAgentReads()
    {
        // The agent's flags read MESH_* variables (sidecar/Mesh.Sidecar/Commands/AgentCommands.cs);
        // a name that drifts there must fail here, not in a cluster.
        var agent = File.ReadAllText(Path.Combine(RepositoryRoot, "sidecar", "Mesh.Sidecar", "Commands", "AgentCommands.cs"));
        var pod = Pod((MeshAnnotations.Hostname, "r"), (MeshAnnotations.AdvertiseRoutes, "10.0.0.0/24"), (MeshAnnotations.ExitNode, "true"), (MeshAnnotations.AcceptRoutes, "true"));
        foreach (var name in Env(Injector().Inject(pod, Context())).Keys.Where(n => n.StartsWith("MESH_", StringComparison.Ordinal)))
        {
            Assert.True(agent.Contains($"Env(\"{name}\")", StringComparison.Ordinal) || agent.Contains($"Flag(\"{name}\")", StringComparison.Ordinal), $"{name} is not read by mesh-sidecar up");
        }
    }

    [Fact]
    public void Inject_Forwarder_GetsNetRawAndAWritableIptablesLock()
    {
        var plain = Sidecar(Injector().Inject(Pod(), Context()));
        Assert.Equal(["NET_ADMIN", "NET_BIND_SERVICE"], plain.SecurityContext.Capabilities.Add);
        Assert.DoesNotContain(plain.Env, e => e.Name == "XTABLES_LOCKFILE");

        var router = Injector().Inject(Pod((MeshAnnotations.AdvertiseRoutes, "10.0.0.0/24")), Context());
        Assert.Equal(["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"], Sidecar(router).SecurityContext.Capabilities.Add);
        Assert.StartsWith("/var/run/mesh/", Env(router)["XTABLES_LOCKFILE"].Value);
    }

    [Fact]
    public void Inject_SecurityContext_NotPrivilegedAllCapabilitiesDroppedButNetworking()
    {
        var security = Sidecar(Injector().Inject(Pod(), Context())).SecurityContext;
        Assert.False(security.Privileged);
        Assert.False(security.AllowPrivilegeEscalation);
        Assert.True(security.ReadOnlyRootFilesystem);
        Assert.Equal(["ALL"], security.Capabilities.Drop);
        Assert.Equal(0, security.RunAsUser);
    }

    [Fact]
    public void Inject_Sidecar_ProbesHealthAndNamesItsPorts()
    {
        var sidecar = Sidecar(Injector().Inject(Pod(), Context()));
        Assert.Equal("/healthz", sidecar.StartupProbe.HttpGet.Path);
        Assert.Equal("9001", sidecar.StartupProbe.HttpGet.Port.Value);
        Assert.Null(sidecar.ReadinessProbe);
        Assert.Null(sidecar.LivenessProbe);
        var metrics = Assert.Single(sidecar.Ports, p => p.Name == "mesh-metrics");
        Assert.Equal((9001, "TCP"), (metrics.ContainerPort, metrics.Protocol));
        Assert.Equal("48Mi", sidecar.Resources.Requests["memory"].ToString());
        Assert.Equal("128Mi", sidecar.Resources.Limits["memory"].ToString());
        Assert.False(sidecar.Resources.Limits.ContainsKey("cpu"));
    }

    [Fact]
    public void Inject_Volumes_StateInMemoryAndTheTunDevice()
    {
        var result = Injector().Inject(Pod(), Context());
        var volumes = result.Pod.Spec.Volumes.ToDictionary(v => v.Name);
        Assert.Equal("Memory", volumes["mesh-state"].EmptyDir.Medium);
        Assert.Equal(("/dev/net/tun", "CharDevice"), (volumes["mesh-tun"].HostPath.Path, volumes["mesh-tun"].HostPath.Type));
        var mounts = Sidecar(result).VolumeMounts.ToDictionary(m => m.Name, m => m.MountPath);
        Assert.Equal("/var/lib/mesh", mounts["mesh-state"]);
        Assert.Equal("/var/run/mesh", mounts["mesh-run"]);
        Assert.Equal("/dev/net/tun", mounts["mesh-tun"]);
    }

    [Fact]
    public void Inject_StatusAnnotation_RecordsWhatWasAdded()
    {
        var pod = Pod((MeshAnnotations.Hostname, "web"));
        var result = Injector().Inject(pod, Context());
        Assert.Equal("web", result.Pod.Metadata.Annotations[MeshAnnotations.Hostname]);
        var status = InjectionStatus.TryParse(result.Pod.Metadata.Annotations[MeshAnnotations.Status]);
        Assert.NotNull(status);
        Assert.Equal(InjectionStatus.CurrentVersion, status.Version);
        Assert.Equal(("default", Image, "ClusterFirst"), (status.Network, status.Image, status.DnsPolicy));
        Assert.Equal(["mesh-sidecar"], status.InitContainers);
        Assert.Equal(["mesh-state", "mesh-run", "mesh-tun"], status.Volumes);
    }

    [Fact]
    public void Inject_InvalidAnnotations_RefusedWithEveryProblem()
    {
        var pod = Pod(
            (MeshAnnotations.Hostname, "Web_1"),
            (MeshAnnotations.Tags, "router"),
            (MeshAnnotations.AdvertiseRoutes, "10.0.0.1/24,nonsense"),
            (MeshAnnotations.ExitNode, "node-b"),
            (MeshAnnotations.AcceptRoutes, "sometimes"));
        var result = Injector().Inject(pod, Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Empty(result.Patch);
        Assert.Equal(6, result.Messages.Count);
        Assert.Contains(result.Messages, m => m.Contains("\"Web_1\"", StringComparison.Ordinal));
        Assert.Contains(result.Messages, m => m.Contains("\"10.0.0.1/24\"", StringComparison.Ordinal));
        Assert.Contains(result.Messages, m => m.Contains("\"node-b\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Inject_OtherNetwork_Refused()
    {
        var result = Injector().Inject(Pod((MeshAnnotations.Network, "lab")), Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains("\"lab\"", Assert.Single(result.Messages));
        Assert.Equal(InjectionOutcome.Injected, Injector().Inject(Pod((MeshAnnotations.Network, "default")), Context()).Outcome);
    }

    [Fact]
    public void Inject_Tags_BecomeTheAgentsRequestedTagsWithoutAWarning()
    {
        var result = Injector().Inject(Pod((MeshAnnotations.Tags, "tag:web, tag:prod")), Context());
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        Assert.Empty(result.Messages);
        Assert.Equal("tag:web,tag:prod", Env(result)["MESH_ADVERTISE_TAGS"].Value);
    }

    [Fact]
    public void Inject_HostNetwork_NotApplicable()
    {
        var pod = Pod();
        pod.Spec.HostNetwork = true;
        var result = Injector().Inject(pod, Context());
        Assert.Equal(InjectionOutcome.NotApplicable, result.Outcome);
        Assert.Empty(result.Patch);
        Assert.Contains("hostNetwork", Assert.Single(result.Messages));
    }

    [Theory]
    [InlineData("mesh-state")]
    [InlineData("mesh-tun")]
    public void Inject_VolumeNameTaken_Refused(string name)
    {
        var pod = Pod();
        pod.Spec.Volumes = [new V1Volume { Name = name, EmptyDir = new V1EmptyDirVolumeSource() }];
        var result = Injector().Inject(pod, Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains(name, Assert.Single(result.Messages));
    }

    [Fact]
    public void Inject_AppUsesPort9001_Refused()
    {
        var pod = Pod();
        pod.Spec.Containers[0].Ports = [new V1ContainerPort { ContainerPort = 9001 }];
        var result = Injector().Inject(pod, Context());
        Assert.Equal(InjectionOutcome.Refused, result.Outcome);
        Assert.Contains("9001", Assert.Single(result.Messages));
    }

    [Fact]
    public void Patch_AppliedToTheOriginal_GivesTheInjectedPod()
    {
        var pods = new[]
        {
            Pod(),
            Pod((MeshAnnotations.Hostname, "db"), (MeshAnnotations.AdvertiseRoutes, "10.0.0.0/24")),
            Pod("""
                metadata:
                  labels: {app: x}
                  annotations: {keep: "me"}
                spec:
                  dnsPolicy: None
                  dnsConfig: {nameservers: [192.0.2.1], searches: [a.example]}
                  initContainers: [{name: first, image: busybox}]
                  containers: [{name: app, image: nginx}]
                  volumes: [{name: data, emptyDir: {}}]
                """),
            new V1PodTemplateSpec { Spec = new V1PodSpec { Containers = [new V1Container { Name = "bare", Image = "x" }] } },
        };
        foreach (var pod in pods)
        {
            var result = Injector().Inject(pod, Context());
            Assert.Equal(InjectionOutcome.Injected, result.Outcome);
            var applied = JsonPatch.Apply(SidecarInjector.ToJson(pod), result.Patch);
            Assert.True(JsonEquals(SidecarInjector.ToJson(result.Pod), applied), $"patch {JsonPatch.Serialize(result.Patch)} gives {applied?.ToJsonString()}");
        }
    }

    [Fact]
    public void Patch_OnlyAdds_ExistingContainersAndVolumesAreNeverRewritten()
    {
        var pod = Pod("""
            metadata:
              annotations: {keep: "me"}
            spec:
              initContainers: [{name: first, image: busybox}]
              containers: [{name: app, image: nginx}]
              volumes: [{name: data, emptyDir: {}}]
            """);
        var result = Injector().Inject(pod, Context());
        Assert.All(result.Patch, op => Assert.Equal("add", op.Op));
        Assert.Contains(result.Patch, op => op.Path == "/spec/initContainers/0" && op.Value!["name"]!.GetValue<string>() == "mesh-sidecar");
        Assert.Contains(result.Patch, op => op.Path == "/metadata/annotations/mesh.meshoperator.io~1status");
        Assert.Equal(["/spec/volumes/1", "/spec/volumes/2", "/spec/volumes/3"], result.Patch.Where(op => op.Path.StartsWith("/spec/volumes", StringComparison.Ordinal)).Select(op => op.Path));
    }

    [Fact]
    public void Patch_PodWithoutMetadataOrLists_AddsThemWhole()
    {
        var pod = new V1PodTemplateSpec { Spec = new V1PodSpec { Containers = [new V1Container { Name = "app", Image = "x" }] } };
        var result = Injector().Inject(pod, Context());
        var paths = result.Patch.Select(op => op.Path).ToList();
        Assert.Contains("/metadata", paths);
        Assert.Contains("/spec/initContainers", paths);
        Assert.Contains("/spec/volumes", paths);
        Assert.IsType<JsonArray>(result.Patch.Single(op => op.Path == "/spec/initContainers").Value);
    }

    [Fact]
    public void Patch_OfAPod_AppliesToThePodObjectAsTheApiServerHoldsIt()
    {
        // What the webhook does: the AdmissionReview's Pod (apiVersion, kind, status and all) patched in place.
        var pod = new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = "web-1", NamespaceProperty = "shop" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "web", Image = "nginx" }] },
            Status = new V1PodStatus { Phase = "Pending" },
        };
        var result = Injector().Inject(pod, new PodContext(null, NamespaceInjectionEnabled: true));
        Assert.Equal(InjectionOutcome.Injected, result.Outcome);
        var patched = JsonPatch.Apply(JsonNode.Parse(k8s.KubernetesJson.Serialize(pod)), JsonPatch.Parse(JsonPatch.Serialize(result.Patch)))!;
        Assert.Equal("Pending", patched["status"]!["phase"]!.GetValue<string>());
        Assert.Equal("mesh-sidecar", patched["spec"]!["initContainers"]![0]!["name"]!.GetValue<string>());
        Assert.Equal("shop.svc.cluster.local", patched["spec"]!["dnsConfig"]!["searches"]![0]!.GetValue<string>());
    }

    [Fact]
    public void Settings_Invalid_ConstructorSaysWhat()
    {
        var settings = Settings with { Network = new MeshNetworkTarget("Bad Name", new Uri("ftp://x"), "s") };
        var e = Assert.Throws<ArgumentException>(() => new SidecarInjector(settings));
        Assert.Contains("Bad Name", e.Message, StringComparison.Ordinal);
        Assert.Contains("ftp://x", e.Message, StringComparison.Ordinal);
    }
}
