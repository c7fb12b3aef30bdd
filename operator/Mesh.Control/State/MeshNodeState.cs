using System.Net;
using Mesh.Protocol;

namespace Mesh.Control.State;

/// <summary>
/// The coordinator's in-memory view of one node: what netmaps are built from. Immutable; the state
/// replaces the whole instance on every change (and bumps <see cref="Version"/>) and keeps it
/// otherwise, so the instance itself tells map streams whether a node changed
/// (<see cref="NetmapSnapshot.SameView"/>).
/// </summary>
public sealed record MeshNodeState
{
    public required long Id { get; init; }
    public required MachineKey MachineKey { get; init; }
    public required NodeKey NodeKey { get; init; }
    public DiscoKey? DiscoKey { get; init; }
    public long? UserId { get; init; }
    public string? UserName { get; init; }
    public required string Hostname { get; init; }

    /// <summary>The unique MagicDNS label.</summary>
    public required string Name { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];
    public IPAddress? IPv4 { get; init; }
    public IPAddress? IPv6 { get; init; }
    public IReadOnlyList<string> Endpoints { get; init; } = [];
    public int? HomeRelay { get; init; }
    public DateTimeOffset? LastSeen { get; init; }
    public DateTimeOffset? Expiry { get; init; }
    public bool KeyExpiryDisabled { get; init; }
    public bool Ephemeral { get; init; }
    public IReadOnlyList<string> AdvertisedRoutes { get; init; } = [];
    public IReadOnlyList<string> ApprovedRoutes { get; init; } = [];
    public bool Online { get; init; }
    public string? Os { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public long Version { get; init; }

    public bool IsTagged => Tags.Count > 0;

    public bool IsExpired(DateTimeOffset now) => !KeyExpiryDisabled && Expiry is { } at && at <= now;

    public IEnumerable<string> HostPrefixes()
    {
        if (IPv4 is not null)
        {
            yield return $"{IPv4}/32";
        }

        if (IPv6 is not null)
        {
            yield return $"{IPv6}/128";
        }
    }

    public static bool IsExitRoute(string prefix) => prefix is "0.0.0.0/0" or "::/0";
}
