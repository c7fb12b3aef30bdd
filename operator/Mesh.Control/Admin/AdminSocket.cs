using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Control.Admin;

/// <summary>
/// The coordinator's local admin socket: a unix socket beside the database (default
/// <c>mesh-data/mesh.sock</c>) that `mesh-operator users|nodes|…` use without an API key, the way
/// `headscale` verbs run inside its container.
///
/// Trust comes from the file, not the request: the socket is created mode 0600 (owner only; on
/// Linux connecting needs write permission on the socket file), so whoever can connect could read
/// the database anyway. The mode is set between bind() and listen(), through Kestrel's
/// <see cref="SocketTransportOptions.CreateBoundListenSocket"/> hook, so no other user can connect
/// in between. Connections accepted on it are marked by connection middleware with
/// <see cref="LocalAdminConnection"/>; <see cref="AdminApi"/> lets a marked request through
/// without a bearer key (<see cref="IsLocalAdminConnection"/>). A marker rather than "remote
/// address is null" so that another unix or named-pipe listener the host may add is never trusted
/// by accident.
/// </summary>
public static class AdminSocket
{
    /// <summary>The socket file's mode: read and write for the owner only.</summary>
    public const UnixFileMode SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>
    /// Listens on the admin socket at <paramref name="path"/> (creating its directory, replacing a
    /// stale socket file a crashed coordinator left behind) with mode 0600, and trusts its
    /// connections. Call once per host; adds to any other listeners configured.
    /// </summary>
    public static IWebHostBuilder UseAdminSocket(this IWebHostBuilder builder, string path)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fullPath = Path.GetFullPath(path);
        builder.ConfigureServices(services => services.Configure<SocketTransportOptions>(options =>
        {
            var inner = options.CreateBoundListenSocket;
            options.CreateBoundListenSocket = endPoint => BindOwnerOnly(endPoint, fullPath, inner);
        }));
        builder.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(fullPath, listen => listen.Use(next => connection =>
        {
            connection.Features.Set(LocalAdminConnection.Instance);
            return next(connection);
        })));
        return builder;
    }

    /// <summary>True when the request came in over the admin socket set up by <see cref="UseAdminSocket"/>.</summary>
    public static bool IsLocalAdminConnection(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<LocalAdminConnection>() is not null;
    }

    private static Socket BindOwnerOnly(System.Net.EndPoint endPoint, string adminPath, Func<System.Net.EndPoint, Socket>? inner)
    {
        var create = inner ?? SocketTransportOptions.CreateDefaultBoundListenSocket;
        if (endPoint is not UnixDomainSocketEndPoint unix || !string.Equals(unix.ToString(), adminPath, StringComparison.Ordinal))
        {
            return create(endPoint);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(adminPath)!);
        RemoveStaleSocket(adminPath);
        var socket = create(endPoint);
        try
        {
            // The coordinator runs on Linux; Windows (development only) has no file modes to set.
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(adminPath, SocketMode);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    /// <summary>
    /// Deletes a socket file nobody listens on (a crashed coordinator's); leaves a live one, so a
    /// second coordinator on the same data directory fails to bind instead of stealing it.
    /// </summary>
    private static void RemoveStaleSocket(string path)
    {
        if (!File.Exists(path) || (File.GetAttributes(path) & FileAttributes.Directory) != 0)
        {
            return;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path);
        }
    }
}

/// <summary>Connection feature: this connection was accepted on the admin socket.</summary>
public sealed class LocalAdminConnection
{
    internal static readonly LocalAdminConnection Instance = new();

    private LocalAdminConnection()
    {
    }
}
