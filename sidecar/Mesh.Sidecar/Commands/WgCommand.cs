using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mesh.Net.Device;
using Mesh.Net.Linux;
using Mesh.Net.Uapi;
using Mesh.Sidecar.Config;
using Microsoft.Extensions.Logging;

namespace Mesh.Sidecar.Commands;

/// <summary>
/// `mesh-sidecar wg --config FILE [--interface NAME]`: a standalone WireGuard interface from a
/// wg-quick file. Creates the TUN, adds the addresses and the routes for every peer's AllowedIPs,
/// serves the UAPI socket (so `wg show`/`wg set` work) and runs until SIGTERM or SIGINT, then removes
/// the interface and the socket.
/// </summary>
internal static class WgCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "a wg-quick file ([Interface] and [Peer] sections)", Required = true };
        var name = new Option<string?>("--interface", "-i") { Description = "interface name (default: the file name without .conf)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "log debug messages" };
        var command = new Command("wg", "run a standalone WireGuard interface from a wg-quick file") { config, name, verbose };
        command.SetAction(parse => Run(parse.GetValue(config)!, parse.GetValue(name), parse.GetValue(verbose)));
        return command;
    }

    private static int Run(FileInfo file, string? interfaceName, bool verbose)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            })
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information));
        var logger = loggerFactory.CreateLogger("mesh-sidecar");

        if (!file.Exists)
        {
            Console.Error.WriteLine($"mesh-sidecar wg: {file.FullName}: no such file");
            return 1;
        }

        WgQuickConfig config;
        try
        {
            config = WgQuickConfig.Parse(File.ReadAllText(file.FullName), file.Name);
        }
        catch (WgQuickConfigException e)
        {
            Console.Error.WriteLine($"mesh-sidecar wg: {e.Message}");
            return 1;
        }

        foreach (var warning in config.Warnings)
        {
            Console.Error.WriteLine($"mesh-sidecar wg: warning: {warning}");
        }

        interfaceName ??= Path.GetFileNameWithoutExtension(file.Name);
        if (interfaceName.Length is 0 or > TunDevice.MaxNameLength || interfaceName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '=' or '+' or '.' or '-')))
        {
            Console.Error.WriteLine($"mesh-sidecar wg: interface name \"{interfaceName}\" is invalid: use 1-{TunDevice.MaxNameLength} characters of a-z, A-Z, 0-9, _=+.- (pass --interface NAME)");
            return 1;
        }

        UapiSetRequest request;
        try
        {
            request = ToRequest(config);
        }
        catch (ConfigEndpointException e)
        {
            Console.Error.WriteLine($"mesh-sidecar wg: {file.Name}:{e.Line}: {e.Message}");
            return 1;
        }

        WireGuardDevice device;
        try
        {
            device = WireGuardDevice.Create(new WireGuardDeviceOptions
            {
                InterfaceName = interfaceName,
                Mtu = config.Interface.Mtu ?? 1420,
                ListenPort = config.Interface.ListenPort ?? 0,
                Logger = loggerFactory.CreateLogger("device"),
            });
        }
        catch (Exception e) when (e is SystemCallException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"mesh-sidecar wg: cannot create interface {interfaceName}: {e.Message}");
            return 1;
        }

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        UapiServer? uapi = null;
        try
        {
            device.Apply(request);
            ConfigureLink(device, config, logger);
            uapi = new UapiServer(UapiServer.DefaultSocketPath(device.Name), device, loggerFactory.CreateLogger("uapi"));
            uapi.Start();
            device.Start();
            logger.LogInformation("{Interface}: {Peers} peer(s), listening on UDP port {Port}, UAPI at {Socket}", device.Name, config.Peers.Count, device.ListenPort, uapi.SocketPath);
            stop.Token.WaitHandle.WaitOne();
            logger.LogInformation("{Interface}: shutting down", device.Name);
            return 0;
        }
        catch (Exception e) when (e is SystemCallException or NetlinkException or UapiException or IOException)
        {
            Console.Error.WriteLine($"mesh-sidecar wg: {interfaceName}: {e.Message}");
            return 1;
        }
        finally
        {
            uapi?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            device.Dispose();
        }
    }

    /// <summary>The wg-quick file as a UAPI set request: the same path `wg setconf` takes.</summary>
    private static UapiSetRequest ToRequest(WgQuickConfig config)
    {
        var peers = new List<UapiPeerUpdate>();
        foreach (var peer in config.Peers)
        {
            peers.Add(new UapiPeerUpdate
            {
                PublicKey = peer.PublicKey,
                PresharedKey = peer.PresharedKey,
                Endpoint = peer.Endpoint is null ? null : Resolve(peer.Endpoint, peer.Line),
                PersistentKeepaliveInterval = peer.PersistentKeepalive,
                ReplaceAllowedIps = true,
                AllowedIps = peer.AllowedIps,
            });
        }

        return new UapiSetRequest
        {
            PrivateKey = config.Interface.PrivateKey,
            FwMark = config.Interface.FwMark,
            ReplacePeers = true,
            Peers = peers,
        };
    }

    private static IPEndPoint Resolve(string endpoint, int line)
    {
        var colon = endpoint.LastIndexOf(':');
        var host = endpoint[..colon].Trim('[', ']');
        var port = int.Parse(endpoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        if (IPAddress.TryParse(host, out var address))
        {
            return new IPEndPoint(address, port);
        }

        try
        {
            var addresses = System.Net.Dns.GetHostAddresses(host);
            var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
            return chosen is null
                ? throw new ConfigEndpointException(line, $"Endpoint \"{endpoint}\": {host} has no addresses")
                : new IPEndPoint(chosen, port);
        }
        catch (SocketException e)
        {
            throw new ConfigEndpointException(line, $"Endpoint \"{endpoint}\": cannot resolve {host}: {e.Message}");
        }
    }

    /// <summary>Addresses, then a route per AllowedIPs prefix, as wg-quick does (default routes excepted).</summary>
    private static void ConfigureLink(WireGuardDevice device, WgQuickConfig config, ILogger logger)
    {
        using var netlink = new RtNetlink();
        foreach (var address in config.Interface.Addresses)
        {
            netlink.AddAddress(device.InterfaceIndex, address.Address, address.PrefixLength);
        }

        foreach (var peer in config.Peers)
        {
            foreach (var prefix in peer.AllowedIps)
            {
                if (prefix.PrefixLength == 0)
                {
                    logger.LogWarning("AllowedIPs {Prefix} (line {Line}): a default route is not installed; route it yourself with policy routing so the tunnel's own UDP does not loop", prefix, peer.Line);
                    continue;
                }

                netlink.AddRoute(device.InterfaceIndex, prefix.BaseAddress, prefix.PrefixLength);
            }
        }
    }

    private sealed class ConfigEndpointException(int line, string message) : Exception(message)
    {
        public int Line { get; } = line;
    }
}
