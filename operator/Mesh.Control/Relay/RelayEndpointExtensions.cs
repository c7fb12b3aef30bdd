using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Mesh.Control.Relay;

/// <summary>Hosting the relay in the coordinator's ASP.NET Core app.</summary>
public static class RelayEndpointExtensions
{
    /// <summary>The path DESIGN.md gives the relay.</summary>
    public const string DefaultPath = "/derp";

    /// <summary>
    /// Registers <see cref="RelayServer"/> as a singleton. An <see cref="IRelayAuthorizer"/> must be
    /// registered too (the coordinator's: "is this node key a node of this network?").
    /// </summary>
    public static IServiceCollection AddMeshRelay(this IServiceCollection services, Action<RelayServerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<RelayServerOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(sp => new RelayServer(
            sp.GetRequiredService<IOptions<RelayServerOptions>>().Value,
            sp.GetRequiredService<IRelayAuthorizer>(),
            sp.GetService<Microsoft.Extensions.Logging.ILogger<RelayServer>>(),
            sp.GetService<TimeProvider>()));
        return services;
    }

    /// <summary>
    /// Maps the relay's WebSocket endpoint at <paramref name="pattern"/> (default <c>/derp</c>),
    /// with ASP.NET Core's WebSocket handling in front of it, so the app needs no
    /// <c>UseWebSockets()</c> of its own. On application stop every client is told
    /// <c>ShuttingDown</c>, so the host does not wait out its shutdown timeout on open relay connections.
    /// </summary>
    public static IEndpointConventionBuilder MapRelay(this IEndpointRouteBuilder endpoints, string pattern = DefaultPath)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var server = endpoints.ServiceProvider.GetRequiredService<RelayServer>();
        endpoints.ServiceProvider.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(server.CloseAll);
        var pipeline = endpoints.CreateApplicationBuilder();
        pipeline.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        pipeline.Run(server.HandleAsync);
        return endpoints.Map(pattern, pipeline.Build()).WithDisplayName("Mesh relay");
    }
}
