using System.CommandLine;
using System.Runtime.InteropServices;
using Mesh.Control.Configuration;
using Mesh.Control.Hosting;
using Mesh.Control.Store;
using Microsoft.Extensions.Logging;

namespace Mesh.Operator.Commands;

/// <summary>`mesh-operator coordinator [--config FILE]`: runs the coordination server until SIGTERM/SIGINT.</summary>
internal static class CoordinatorCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "a config file in the shape of Headscale's config.yaml (default: the embedded defaults)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "log debug messages" };
        var command = new Command("coordinator", "run the coordination server: node registration, map streams, admin API, relay and STUN") { config, verbose };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config), parse.GetValue(verbose), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(FileInfo? file, bool verbose, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            })
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information)
            .AddFilter("Microsoft.AspNetCore", LogLevel.Warning));

        CoordinatorConfig config;
        try
        {
            config = file is null ? CoordinatorConfig.Load(string.Empty, "(embedded defaults)") : CoordinatorConfig.LoadFile(file.FullName);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"mesh-operator coordinator: {e.Message}");
            return 1;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        CoordinatorHost host;
        try
        {
            host = await CoordinatorHost.StartAsync(config, loggerFactory, cancellationToken: stop.Token);
        }
        catch (Exception e) when (e is ConfigException or StoreException or IOException)
        {
            Console.Error.WriteLine($"mesh-operator coordinator: {e.Message}");
            return 1;
        }

        Console.Error.WriteLine($"mesh-operator coordinator: serving {host.ServerUrl} — admin socket {host.AdminSocketPath}; try: mesh-operator users create alice");
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await host.DisposeAsync();
        return 0;
    }
}
