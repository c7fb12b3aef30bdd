using System.Threading.Channels;
using Mesh.Protocol;
using Mesh.Protocol.Control;

namespace Mesh.Control.NodeApi;

/// <summary>
/// What the node API asks of the coordinator's state, always on behalf of an authenticated machine
/// (the control channel proved <c>machine</c>): a node can only act as itself. Methods throw
/// <see cref="NodeApiException"/> to refuse with a status and a reason.
/// </summary>
public interface INodeService
{
    Task<RegisterResponse> RegisterAsync(MachineKey machine, RegisterRequest request, CancellationToken cancellationToken);

    /// <summary>Records what the node reports (endpoints, hostinfo) and returns its current full map.</summary>
    Task<MapResponse> MapAsync(MachineKey machine, MapRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a map stream: marks the node online, yields its full map first and then every change
    /// that affects it, until disposed (the node then goes offline).
    /// </summary>
    Task<IMapStream> OpenMapStreamAsync(MachineKey machine, MapRequest request, CancellationToken cancellationToken);
}

/// <summary>One node's open map stream.</summary>
public interface IMapStream : IAsyncDisposable
{
    ChannelReader<MapResponse> Updates { get; }
}

/// <summary>A node request refused: <see cref="Status"/> is the HTTP status to answer with.</summary>
public sealed class NodeApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
