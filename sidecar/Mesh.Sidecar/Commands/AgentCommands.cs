using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Mesh.Net.Linux;
using Mesh.Sidecar.Agent;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Commands;

/// <summary>
/// `mesh-sidecar up` (the agent, in the foreground) and the verbs that talk to it over its local
/// socket: `status`, `ip`, `down`. Every flag of `up` also reads from a MESH_* environment variable,
/// so a container needs no arguments.
/// </summary>
internal static class AgentCommands
{
    public static IEnumerable<Command> Create() => [Up(), Status(), Ip(), Ping(), Netcheck(), Down()];

    private static Command Netcheck()
    {
        var socket = SocketOption();
        var command = new Command("netcheck", "whether UDP gets out, the public endpoint, NAT mapping behaviour and the relay") { socket };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var response = await CallAsync(parse.GetValue(socket)!, new LocalRequest("netcheck"), cancellationToken);
            if (response is not { Ok: true, Message: { } report })
            {
                return 1;
            }

            Console.WriteLine(report);
            return 0;
        });
        return command;
    }

    private static Command Ping()
    {
        var node = new Argument<string>("node") { Description = "a peer's name, FQDN or mesh IP" };
        var socket = SocketOption();
        var command = new Command("ping", "ping a peer through the tunnel and say which path answered") { node, socket };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var response = await CallAsync(parse.GetValue(socket)!, new LocalRequest("ping", parse.GetValue(node)), cancellationToken);
            if (response?.Ping is not { } ping)
            {
                return 1;
            }

            if (!ping.Answered)
            {
                Console.WriteLine($"no reply from {ping.Node} ({ping.Ip}) — path {ping.Path}");
                return 1;
            }

            Console.WriteLine($"pong from {ping.Node} ({ping.Ip}) via {ping.Path} in {ping.RttMilliseconds:0.###} ms");
            return 0;
        });
        return command;
    }

    private static Option<string> SocketOption() => new("--socket")
    {
        Description = "the agent's local socket",
        DefaultValueFactory = _ => Env("MESH_SOCKET") ?? LocalApiClient.DefaultSocket,
    };

    private static Command Up()
    {
        var loginServer = new Option<string?>("--login-server") { Description = "the coordinator's URL (MESH_LOGIN_SERVER)", DefaultValueFactory = _ => Env("MESH_LOGIN_SERVER") };
        var authKey = new Option<string?>("--authkey") { Description = "a pre-auth key, used when this node is not registered yet (MESH_AUTHKEY)", DefaultValueFactory = _ => Env("MESH_AUTHKEY") };
        var hostname = new Option<string?>("--hostname") { Description = "the node's name in the mesh (MESH_HOSTNAME; default: the host name)", DefaultValueFactory = _ => Env("MESH_HOSTNAME") };
        var routes = new Option<string?>("--advertise-routes") { Description = "subnet routes to offer, comma-separated CIDRs (MESH_ADVERTISE_ROUTES)", DefaultValueFactory = _ => Env("MESH_ADVERTISE_ROUTES") };
        var tags = new Option<string?>("--advertise-tags") { Description = "tags to ask for, comma-separated (tag:a,tag:b); the node's user must own them in the policy's tagOwners (MESH_ADVERTISE_TAGS)", DefaultValueFactory = _ => Env("MESH_ADVERTISE_TAGS") };
        var exitNode = new Option<bool>("--advertise-exit-node") { Description = "offer to be an exit node (MESH_ADVERTISE_EXIT_NODE)", DefaultValueFactory = _ => Flag("MESH_ADVERTISE_EXIT_NODE") };
        var useExitNode = new Option<string?>("--exit-node") { Description = "send all non-mesh traffic through this peer (name, FQDN or mesh IP), an approved exit node (MESH_EXIT_NODE)", DefaultValueFactory = _ => Env("MESH_EXIT_NODE") };
        var acceptRoutes = new Option<bool>("--accept-routes") { Description = "route to other nodes' approved subnet routes (MESH_ACCEPT_ROUTES)", DefaultValueFactory = _ => Flag("MESH_ACCEPT_ROUTES") };
        var tun = new Option<string>("--tun") { Description = "TUN interface name (MESH_TUN)", DefaultValueFactory = _ => Env("MESH_TUN") ?? "mesh0" };
        var state = new Option<string>("--state") { Description = "state directory: keys survive restarts (MESH_STATE)", DefaultValueFactory = _ => Env("MESH_STATE") ?? "/var/lib/mesh" };
        var port = new Option<int>("--port") { Description = "WireGuard UDP port (MESH_PORT)", DefaultValueFactory = _ => int.TryParse(Env("MESH_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 41641 };
        var socket = SocketOption();
        var acceptDns = new Option<bool>("--accept-dns") { Description = "serve MagicDNS at 100.100.100.100 (MESH_ACCEPT_DNS, default true)", DefaultValueFactory = _ => Env("MESH_ACCEPT_DNS") is not { } v || v == "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase) };
        var resolvConf = new Option<string?>("--resolv-conf") { Description = "a resolv.conf to point at MagicDNS while up, restored after (MESH_RESOLV_CONF; default: none is changed)", DefaultValueFactory = _ => Env("MESH_RESOLV_CONF") };
        var metricsPort = new Option<int>("--metrics-port") { Description = "health (/healthz) and Prometheus metrics (/metrics) port; 0 = off (MESH_METRICS_PORT)", DefaultValueFactory = _ => int.TryParse(Env("MESH_METRICS_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 9001 };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "log debug messages" };
        var command = new Command("up", "run the node agent in the foreground: join the mesh and keep the tunnels up")
        {
            loginServer, authKey, hostname, routes, tags, exitNode, useExitNode, acceptRoutes, tun, state, port, socket, acceptDns, resolvConf, metricsPort, verbose,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var server = parse.GetValue(loginServer);
            if (string.IsNullOrEmpty(server) || !Uri.TryCreate(server, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                Console.Error.WriteLine("mesh-sidecar up: --login-server (or MESH_LOGIN_SERVER) must be the coordinator's http(s) URL, e.g. http://127.0.0.1:8080");
                return 2;
            }

            var advertised = new List<string>();
            foreach (var route in (parse.GetValue(routes) ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!System.Net.IPNetwork.TryParse(route, out var network) || network.ToString() != route)
                {
                    Console.Error.WriteLine($"mesh-sidecar up: --advertise-routes \"{route}\": expected a CIDR prefix with no host bits, such as 10.0.0.0/24");
                    return 2;
                }

                advertised.Add(route);
            }

            var advertisedTags = new List<string>();
            foreach (var tag in (parse.GetValue(tags) ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!tag.StartsWith("tag:", StringComparison.Ordinal) || tag.Length == 4)
                {
                    Console.Error.WriteLine($"mesh-sidecar up: --advertise-tags \"{tag}\": tags are written tag:name");
                    return 2;
                }

                if (!advertisedTags.Contains(tag))
                {
                    advertisedTags.Add(tag);
                }
            }

            var exitVia = parse.GetValue(useExitNode) is { Length: > 0 } via ? via.Trim() : null;
            if (exitVia is not null && parse.GetValue(exitNode))
            {
                Console.Error.WriteLine("mesh-sidecar up: --exit-node and --advertise-exit-node exclude each other: a node either offers an exit or uses one");
                return 2;
            }

            var options = new AgentOptions
            {
                LoginServer = url,
                AuthKey = parse.GetValue(authKey),
                Hostname = parse.GetValue(hostname) ?? Environment.MachineName,
                AdvertiseRoutes = advertised,
                AdvertiseExitNode = parse.GetValue(exitNode),
                AdvertiseTags = advertisedTags,
                AcceptRoutes = parse.GetValue(acceptRoutes),
                ExitNode = exitVia,
                Tun = parse.GetValue(tun)!,
                StateDirectory = parse.GetValue(state)!,
                Port = parse.GetValue(port),
                Socket = parse.GetValue(socket)!,
                AcceptDns = parse.GetValue(acceptDns),
                ResolvConfPath = parse.GetValue(resolvConf),
                MetricsPort = parse.GetValue(metricsPort),
            };
            return await RunAgentAsync(options, parse.GetValue(verbose), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAgentAsync(AgentOptions options, bool verbose, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            })
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        var agent = new MeshAgent(options, loggerFactory);
        try
        {
            await agent.RunAsync(stop.Token);
            return 0;
        }
        catch (Exception e) when (e is SystemCallException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine($"mesh-sidecar up: {e.Message}");
            return 1;
        }
        finally
        {
            await agent.DisposeAsync();
        }
    }

    private static Command Status()
    {
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var socket = SocketOption();
        var command = new Command("status", "this node and its peers: IPs, online, and the path in use") { json, socket };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var response = await CallAsync(parse.GetValue(socket)!, new LocalRequest("status"), cancellationToken);
            if (response?.Status is not { } status)
            {
                return 1;
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(status, AgentJson.Default.StatusReport));
                return 0;
            }

            Console.WriteLine($"{Ips(status.Self),-40} {status.Self.Name,-20} {status.Self.User ?? string.Join(',', status.Self.Tags ?? [])} {status.BackendState}");
            foreach (var peer in status.Peers)
            {
                var online = peer.Online ? "online" : "offline";
                Console.WriteLine($"{Ips(peer),-40} {peer.Name,-20} {online,-8} {peer.Path}");
            }

            return 0;
        });
        return command;
    }

    private static string Ips(StatusNode node) => string.Join(' ', node.Ips);

    private static Command Ip()
    {
        var v4 = new Option<bool>("-4") { Description = "only the IPv4 address" };
        var v6 = new Option<bool>("-6") { Description = "only the IPv6 address" };
        var socket = SocketOption();
        var command = new Command("ip", "this node's mesh IP addresses") { v4, v6, socket };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var response = await CallAsync(parse.GetValue(socket)!, new LocalRequest("ip"), cancellationToken);
            if (response?.Ips is not { } ips)
            {
                return 1;
            }

            foreach (var ip in ips)
            {
                var isV6 = ip.Contains(':', StringComparison.Ordinal);
                if ((parse.GetValue(v4) && isV6) || (parse.GetValue(v6) && !isV6))
                {
                    continue;
                }

                Console.WriteLine(ip);
            }

            return 0;
        });
        return command;
    }

    private static Command Down()
    {
        var socket = SocketOption();
        var command = new Command("down", "stop the agent: the tunnel interface goes away; its identity stays in the state directory") { socket };
        command.SetAction(async (parse, cancellationToken) => await CallAsync(parse.GetValue(socket)!, new LocalRequest("down"), cancellationToken) is { Ok: true } ? 0 : 1);
        return command;
    }

    private static async Task<LocalResponse?> CallAsync(string socket, LocalRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var response = await LocalApiClient.CallAsync(socket, request, cancellationToken);
            if (!response.Ok)
            {
                Console.Error.WriteLine($"mesh-sidecar: {response.Error}");
            }

            return response;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"mesh-sidecar: {e.Message}");
            return null;
        }
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    private static bool Flag(string name) => Env(name) is { } value && (value == "1" || value.Equals("true", StringComparison.OrdinalIgnoreCase));
}
