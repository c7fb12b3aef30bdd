using System.Net;
using System.Text.Json;
using Mesh.Control.NodeApi;
using Mesh.Control.Store;
using Mesh.Protocol;
using Mesh.Protocol.Control;
using Microsoft.Extensions.Logging;

namespace Mesh.Control.State;

public sealed partial class MeshState : INodeService
{
    private const int MaxEndpoints = 32;
    private const int MaxRoutes = 256;

    public Task<RegisterResponse> RegisterAsync(MachineKey machine, RegisterRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(Register(machine, request));

    public Task<MapResponse> MapAsync(MachineKey machine, MapRequest request, CancellationToken cancellationToken)
    {
        var id = Report(machine, request, openingStream: false);
        return Task.FromResult(request.ReadOnly ? new MapResponse() : FullMap(id) with { Seq = 0 });
    }

    public Task<IMapStream> OpenMapStreamAsync(MachineKey machine, MapRequest request, CancellationToken cancellationToken)
    {
        var id = Report(machine, request, openingStream: true);
        IMapStream stream = Hub.Subscribe(id, StreamClosed);
        return Task.FromResult(stream);
    }

    private RegisterResponse Register(MachineKey machine, RegisterRequest request)
    {
        var now = _time.GetUtcNow();
        if (string.IsNullOrWhiteSpace(request.Hostname) && !request.Logout)
        {
            Metrics.Registration("invalid");
            throw new NodeApiException(400, "hostname is required");
        }

        lock (_lock)
        {
            _byMachine.TryGetValue(machine, out var existingId);
            var existing = existingId != 0 ? _nodes[existingId] : null;

            if (request.Logout)
            {
                if (existing is null)
                {
                    throw new NodeApiException(404, "this machine has no node to log out");
                }

                if (existing.Ephemeral)
                {
                    RemoveNodeLocked(existing);
                }
                else
                {
                    _store.SetNodeExpiry(existing.Id, now);
                    RefreshLocked(existing.Id);
                }

                ChangedLocked(topology: true);
                Metrics.Registration("logout");
                return new RegisterResponse { NodeId = existing.Id, Authorized = false, Error = "logged out" };
            }

            if (existing is not null && request.AuthKey is null)
            {
                if (existing.IsExpired(now))
                {
                    Metrics.Registration("expired");
                    throw new NodeApiException(401, $"the node key of {existing.Name} expired at {existing.Expiry:u}: register again with an auth key");
                }

                if (request.NodeKey != existing.NodeKey)
                {
                    if (request.OldNodeKey != existing.NodeKey)
                    {
                        Metrics.Registration("refused");
                        throw new NodeApiException(401, "this machine is registered with another node key: send it as oldNodeKey to rotate, or register with an auth key");
                    }

                    _store.UpdateNodeKey(existing.Id, request.NodeKey.ToString(), existing.Expiry);
                    existing = RefreshLocked(existing.Id);
                    ChangedLocked(topology: false);
                    Metrics.Registration("rotated");
                }
                else
                {
                    Metrics.Registration("existing");
                }

                return Authorized(existing);
            }

            if (string.IsNullOrEmpty(request.AuthKey))
            {
                Metrics.Registration("refused");
                throw new NodeApiException(401, "an auth key is required to register this machine (mesh-operator preauthkeys create --user USER)");
            }

            if (_byNodeKey.TryGetValue(request.NodeKey, out var holder) && _nodes[holder].MachineKey != machine)
            {
                Metrics.Registration("refused");
                throw new NodeApiException(409, "this node key belongs to another machine");
            }

            if (existing is not null)
            {
                // Re-authentication: same machine, new key material; the node keeps its addresses and name.
                if (!_store.TryConsumePreAuthKey(request.AuthKey, now, out var key, out var reason))
                {
                    Metrics.Registration("refused");
                    throw new NodeApiException(401, $"auth key refused: {reason}");
                }

                var record = _store.GetNode(existing.Id)!;
                _store.UpdateNode(record with
                {
                    NodeKey = request.NodeKey.ToString(),
                    UserId = key.UserId,
                    Tags = key.Tags.Count > 0 ? key.Tags : record.Tags,
                    Expiry = ExpiryFor(key.Tags.Count > 0 || record.Tags.Count > 0, now),
                    KeyExpiryDisabled = key.Tags.Count > 0 || record.Tags.Count > 0 || _config.NodeKeyExpiryTime is null,
                    Ephemeral = key.Ephemeral,
                    AuthKeyId = key.Id,
                    Hostname = request.Hostname,
                });
                existing = RefreshLocked(existing.Id);
                ChangedLocked(topology: true);
                Metrics.Registration("reauthenticated");
                return Authorized(existing);
            }

            var (v4, v6) = _ips.Allocate();
            NodeRecord? created;
            string? refusal;
            try
            {
                var name = UniqueNameLocked(request.Hostname, null);
                var registered = _store.TryRegisterNode(request.AuthKey, now, key => new NodeRecord(
                    Id: 0,
                    MachineKey: machine.ToString(),
                    NodeKey: request.NodeKey.ToString(),
                    DiscoKey: null,
                    UserId: key.UserId,
                    Hostname: request.Hostname,
                    GivenName: name,
                    Tags: key.Tags,
                    IPv4: v4?.ToString(),
                    IPv6: v6?.ToString(),
                    Endpoints: [],
                    HomeRelay: null,
                    LastSeen: null,
                    Expiry: ExpiryFor(key.Tags.Count > 0, now),
                    KeyExpiryDisabled: key.Tags.Count > 0 || _config.NodeKeyExpiryTime is null,
                    Ephemeral: key.Ephemeral,
                    AuthKeyId: key.Id,
                    HostinfoJson: request.Os is null ? null : JsonSerializer.Serialize(new Hostinfo { Hostname = request.Hostname, Os = request.Os }, ControlJsonContext.Default.Hostinfo),
                    CreatedAt: now), out created, out refusal);
                if (!registered)
                {
                    created = null;
                }
            }
            catch (StoreConflictException e)
            {
                created = null;
                refusal = e.Message;
            }

            if (created is null)
            {
                Release(v4, v6);
                Metrics.Registration("refused");
                throw new NodeApiException(401, $"auth key refused: {refusal}");
            }

            var node = FromRecord(created, [], online: false);
            IndexLocked(node);
            ChangedLocked(topology: true);
            Metrics.Registration("new");
            _logger.LogInformation("Registered node {Name} ({Id}) for {Owner} at {V4} {V6}", node.Name, node.Id, node.IsTagged ? string.Join(',', node.Tags) : node.UserName, node.IPv4, node.IPv6);
            return Authorized(node);
        }
    }

    private DateTimeOffset? ExpiryFor(bool tagged, DateTimeOffset now) =>
        tagged || _config.NodeKeyExpiryTime is not { } expiry ? null : now + expiry;

    private void Release(IPAddress? v4, IPAddress? v6)
    {
        if (v4 is not null)
        {
            _ips.Release(v4);
        }

        if (v6 is not null)
        {
            _ips.Release(v6);
        }
    }

    private static RegisterResponse Authorized(MeshNodeState node) => new()
    {
        NodeId = node.Id,
        User = node.IsTagged ? null : node.UserName,
        Tags = node.Tags,
        Authorized = true,
        Addresses = [.. node.HostPrefixes()],
        Name = node.Name,
        NodeKeyExpiry = node.KeyExpiryDisabled ? null : node.Expiry,
    };

    /// <summary>
    /// Records what a node reports in a map request (endpoints, disco key, home relay, hostinfo and
    /// advertised routes, auto-approving routes per the policy), and, for a stream, marks it online.
    /// Returns the node id. Only what changed is written and published.
    /// </summary>
    private long Report(MachineKey machine, MapRequest request, bool openingStream)
    {
        var now = _time.GetUtcNow();
        var endpoints = (request.Endpoints ?? []).Distinct(StringComparer.Ordinal).ToList();
        if (endpoints.Count > MaxEndpoints)
        {
            throw new NodeApiException(400, $"{endpoints.Count} endpoints reported; at most {MaxEndpoints}");
        }

        foreach (var endpoint in endpoints)
        {
            if (!IPEndPoint.TryParse(endpoint, out var parsed) || parsed.Port == 0)
            {
                throw new NodeApiException(400, $"endpoint \"{endpoint}\": expected IP:PORT or [IPv6]:PORT");
            }
        }

        var advertised = AdvertisedRoutes(request.Hostinfo);
        lock (_lock)
        {
            if (!_byMachine.TryGetValue(machine, out var id))
            {
                throw new NodeApiException(404, "this machine is not registered: register first");
            }

            var node = _nodes[id];
            if (request.NodeKey != node.NodeKey)
            {
                throw new NodeApiException(403, $"{request.NodeKey} is not the node key of this machine");
            }

            if (node.IsExpired(now))
            {
                throw new NodeApiException(401, $"the node key of {node.Name} expired at {node.Expiry:u}: register again with an auth key");
            }

            var changed = false;
            var recompile = false;
            SeenLocked(id, now);
            var disco = request.DiscoKey?.ToString();
            if (!endpoints.SequenceEqual(node.Endpoints) || request.DiscoKey != node.DiscoKey || request.HomeRelay != node.HomeRelay)
            {
                _store.UpdateNodeEndpoints(id, disco, endpoints, request.HomeRelay, now);
                changed = true;
            }

            if (!advertised.Order(StringComparer.Ordinal).SequenceEqual(node.AdvertisedRoutes.Order(StringComparer.Ordinal)))
            {
                _store.SetAdvertisedRoutes(id, advertised);
                RefreshLocked(id);

                // Auto-approval needs a policy that knows the new routes: compiled now, not at the next snapshot.
                _policyDirty = true;
                foreach (var route in advertised.Count > 0 ? PolicyLocked().AutoApprovedRoutes(node.Name) : [])
                {
                    var record = _store.ListRoutes(id).FirstOrDefault(r => r.Prefix == route && !r.Enabled);
                    if (record is not null)
                    {
                        _store.SetRouteEnabled(record.Id, true);
                        _logger.LogInformation("Auto-approved route {Route} of {Node}", route, node.Name);
                    }
                }

                changed = recompile = true;
            }

            if (request.Hostinfo is { } hostinfo && (hostinfo.Os != node.Os || (hostinfo.Hostname is { Length: > 0 } h && h != node.Hostname)))
            {
                _store.UpdateNodeHostinfo(id, hostinfo.Hostname is { Length: > 0 } hn ? hn : node.Hostname, JsonSerializer.Serialize(hostinfo, ControlJsonContext.Default.Hostinfo));
                changed = true;
            }

            if (openingStream)
            {
                _openStreams[id] = _openStreams.GetValueOrDefault(id) + 1;
                changed |= !node.Online;
            }

            if (changed)
            {
                RefreshLocked(id);
                ChangedLocked(topology: recompile);
            }

            return id;
        }
    }

    private static List<string> AdvertisedRoutes(Hostinfo? hostinfo)
    {
        var routes = new List<string>();
        if (hostinfo is null)
        {
            return routes;
        }

        if (hostinfo.RoutableIps.Count > MaxRoutes)
        {
            throw new NodeApiException(400, $"{hostinfo.RoutableIps.Count} routes advertised; at most {MaxRoutes}");
        }

        foreach (var text in hostinfo.RoutableIps)
        {
            if (!IPNetwork.TryParse(text, out var prefix))
            {
                throw new NodeApiException(400, $"advertised route \"{text}\": expected a CIDR prefix such as 10.0.0.0/24 (no host bits)");
            }

            routes.Add(prefix.ToString());
        }

        if (hostinfo.AdvertiseExitNode)
        {
            routes.Add("0.0.0.0/0");
            routes.Add("::/0");
        }

        return [.. routes.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>A map stream ended: the node goes offline when it was its last one.</summary>
    private void StreamClosed(long id)
    {
        lock (_lock)
        {
            if (!_openStreams.TryGetValue(id, out var count))
            {
                return;
            }

            if (count > 1)
            {
                _openStreams[id] = count - 1;
                return;
            }

            _openStreams.Remove(id);
            if (_nodes.ContainsKey(id))
            {
                // Offline from now: the time is in the node's state at once (RefreshLocked) and in the
                // store at the next tick, with every other disconnect since (one transaction for a burst).
                SeenLocked(id, _time.GetUtcNow());
                _seenDisconnected = true;
                RefreshLocked(id);
                ChangedLocked(topology: false);
            }
        }
    }
}
