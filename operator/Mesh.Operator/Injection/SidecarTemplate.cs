using System.Globalization;
using k8s.Models;

namespace Mesh.Operator.Injection;

/// <summary>
/// What injection adds to a pod: the <c>mesh-sidecar</c> container and its three volumes. Every
/// choice here is explained in docs/operator.md ("Injection"); the constants are the contract with
/// the agent (its MESH_* variables, docs/agent.md) and with DESIGN.md's ports.
/// </summary>
internal static class SidecarTemplate
{
    public const string ContainerName = "mesh-sidecar";
    public const string StateVolume = "mesh-state";
    public const string RunVolume = "mesh-run";
    public const string TunVolume = "mesh-tun";

    public const string StateDirectory = "/var/lib/mesh";
    public const string SocketDirectory = "/var/run/mesh";
    public const string SocketPath = SocketDirectory + "/mesh.sock";
    public const string TunDevice = "/dev/net/tun";

    /// <summary>Health (/healthz) and metrics (/metrics), DESIGN.md "Ports".</summary>
    public const int MetricsPort = 9001;
    public const string MetricsPortName = "mesh-metrics";

    /// <summary>The node's WireGuard port, DESIGN.md "Ports".</summary>
    public const int WireGuardPort = 41641;
    public const string WireGuardPortName = "mesh-wireguard";

    /// <summary>
    /// The AOT agent idles at about 27 MiB RSS (README, "Performance"); the limit leaves room for
    /// packet buffers under load. No CPU limit: throttling a packet forwarder shows up as latency.
    /// </summary>
    public static V1ResourceRequirements DefaultResources => new()
    {
        Requests = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new("20m"),
            ["memory"] = new("48Mi"),
        },
        Limits = new Dictionary<string, ResourceQuantity>
        {
            ["memory"] = new("128Mi"),
        },
    };

    /// <summary>The volumes the sidecar mounts, in the order they are appended to the pod.</summary>
    public static IReadOnlyList<V1Volume> Volumes() =>
    [
        // Keys (state.json) in memory: they never touch the node's disk, and live exactly as long
        // as the pod, so a container restart keeps the node and a new pod is a new (ephemeral) node.
        new V1Volume { Name = StateVolume, EmptyDir = new V1EmptyDirVolumeSource { Medium = "Memory", SizeLimit = new ResourceQuantity("1Mi") } },
        new V1Volume { Name = RunVolume, EmptyDir = new V1EmptyDirVolumeSource { Medium = "Memory", SizeLimit = new ResourceQuantity("1Mi") } },
        new V1Volume { Name = TunVolume, HostPath = new V1HostPathVolumeSource { Path = TunDevice, Type = "CharDevice" } },
    ];

    public static IReadOnlyList<string> VolumeNames => [StateVolume, RunVolume, TunVolume];

    /// <summary>The agent as a native sidecar: an init container with <c>restartPolicy: Always</c> (Kubernetes ≥ 1.29).</summary>
    public static V1Container Container(InjectionSettings settings, PodMeshRequest request)
    {
        var env = new List<V1EnvVar>
        {
            new() { Name = "MESH_LOGIN_SERVER", Value = settings.Network.LoginServer.OriginalString },
            new()
            {
                Name = "MESH_AUTHKEY",
                ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = settings.Network.AuthKeySecret, Key = settings.Network.AuthKeySecretKey } },
            },
            request.Hostname is { } hostname
                ? new V1EnvVar { Name = "MESH_HOSTNAME", Value = hostname }
                : new V1EnvVar { Name = "MESH_HOSTNAME", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.name" } } },
            new() { Name = "MESH_STATE", Value = StateDirectory },
            new() { Name = "MESH_SOCKET", Value = SocketPath },
            new() { Name = "MESH_METRICS_PORT", Value = MetricsPort.ToString(CultureInfo.InvariantCulture) },
        };
        if (request.AdvertiseRoutes.Count > 0)
        {
            env.Add(new V1EnvVar { Name = "MESH_ADVERTISE_ROUTES", Value = string.Join(',', request.AdvertiseRoutes) });
        }

        if (request.Tags.Count > 0)
        {
            env.Add(new V1EnvVar { Name = "MESH_ADVERTISE_TAGS", Value = string.Join(',', request.Tags) });
        }

        if (request.AdvertiseExitNode)
        {
            env.Add(new V1EnvVar { Name = "MESH_ADVERTISE_EXIT_NODE", Value = "true" });
        }

        if (request.AcceptRoutes)
        {
            env.Add(new V1EnvVar { Name = "MESH_ACCEPT_ROUTES", Value = "true" });
        }

        List<string> capabilities = ["NET_ADMIN", "NET_BIND_SERVICE"];
        if (request.Forwards)
        {
            // iptables' lock file defaults to /run/xtables.lock, on the read-only root file system.
            env.Add(new V1EnvVar { Name = "XTABLES_LOCKFILE", Value = SocketDirectory + "/xtables.lock" });
            capabilities.Add("NET_RAW");
        }

        return new V1Container
        {
            Name = ContainerName,
            Image = settings.Image,
            Command = ["mesh-sidecar", "up"],
            RestartPolicy = "Always",
            Env = env,
            Ports =
            [
                new V1ContainerPort { Name = MetricsPortName, ContainerPort = MetricsPort, Protocol = "TCP" },
                new V1ContainerPort { Name = WireGuardPortName, ContainerPort = WireGuardPort, Protocol = "UDP" },
            ],
            StartupProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = MetricsPort },
                PeriodSeconds = 1,
                TimeoutSeconds = 1,
                FailureThreshold = 120,
            },
            Resources = settings.Resources ?? DefaultResources,
            SecurityContext = new V1SecurityContext
            {
                Privileged = false,
                AllowPrivilegeEscalation = false,
                ReadOnlyRootFilesystem = true,
                RunAsUser = 0,
                RunAsNonRoot = false,
                Capabilities = new V1Capabilities { Add = capabilities, Drop = ["ALL"] },
            },
            VolumeMounts =
            [
                new V1VolumeMount { Name = StateVolume, MountPath = StateDirectory },
                new V1VolumeMount { Name = RunVolume, MountPath = SocketDirectory },
                new V1VolumeMount { Name = TunVolume, MountPath = TunDevice },
            ],
        };
    }
}
