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
    private const int MaxRequestedTags = 64;

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

                if (GrantedTagsLocked(request.RequestTags, existing.UserName, existing.Tags, keyTags: null, register: true) is { } retag)
                {
                    existing = RetagLocked(existing, retag);
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
                // Requested tags are checked against the presented key before it is used, so a refusal burns no key.
                var current = _store.GetNode(existing.Id)!.Tags;
                if (PeekPreAuthKey(request.AuthKey) is { } presented)
                {
                    GrantedTagsLocked(request.RequestTags, UserNameOf(presented.UserId), current, presented.Tags, register: true);
                }

                if (!_store.TryConsumePreAuthKey(request.AuthKey, now, out var key, out var reason))
                {
                    Metrics.Registration("refused");
                    throw new NodeApiException(401, $"auth key refused: {reason}");
                }

                var record = _store.GetNode(existing.Id)!;
                var granted = GrantedTagsLocked(request.RequestTags, UserNameOf(key.UserId), record.Tags, key.Tags, register: true);
                var tags = key.Tags.Count > 0 ? key.Tags : granted ?? record.Tags;
                _store.UpdateNode(record with
                {
                    NodeKey = request.NodeKey.ToString(),
                    UserId = key.UserId,
                    Tags = tags,
                    Expiry = ExpiryFor(tags.Count > 0, now),
                    KeyExpiryDisabled = tags.Count > 0 || _config.NodeKeyExpiryTime is null,
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
                if (request.RequestTags is { Count: > 0 })
                {
                    PolicyLocked(); // compiled here: the callback below runs under the store's lock
                }

                var registered = _store.TryRegisterNode(request.AuthKey, now, key =>
                {
                    // Throwing here writes nothing: the key stays unused.
                    var granted = GrantedTagsLocked(request.RequestTags, UserNameOf(key.UserId), [], key.Tags, register: true);
                    return NewNode(key, key.Tags.Count > 0 ? key.Tags : granted ?? []);
                }, out created, out refusal);
                if (!registered)
                {
                    created = null;
                }

                NodeRecord NewNode(PreAuthKeyRecord key, IReadOnlyList<string> tags) => new(
                    Id: 0,
                    MachineKey: machine.ToString(),
                    NodeKey: request.NodeKey.ToString(),
                    DiscoKey: null,
                    UserId: key.UserId,
                    Hostname: request.Hostname,
                    GivenName: name,
                    Tags: tags,
                    IPv4: v4?.ToString(),
                    IPv6: v6?.ToString(),
                    Endpoints: [],
                    HomeRelay: null,
                    LastSeen: null,
                    Expiry: ExpiryFor(tags.Count > 0, now),
                    KeyExpiryDisabled: tags.Count > 0 || _config.NodeKeyExpiryTime is null,
                    Ephemeral: key.Ephemeral,
                    AuthKeyId: key.Id,
                    HostinfoJson: request.Os is null ? null : JsonSerializer.Serialize(new Hostinfo { Hostname = request.Hostname, Os = request.Os }, ControlJsonContext.Default.Hostinfo),
                    CreatedAt: now);
            }
            catch (StoreConflictException e)
            {
                created = null;
                refusal = e.Message;
            }
            catch (NodeApiException)
            {
                Release(v4, v6);
                throw;
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

    /// <summary>
    /// The tags a node asking for <paramref name="requested"/> (advertise-tags) gets, or null when its tags stay as they
    /// are: nothing asked, the same tags asked, or (with <paramref name="keyTags"/>) a tagged auth key, whose tags the
    /// node takes and which the request must then match. Otherwise every requested tag must be defined in the policy's
    /// <c>tagOwners</c> and owned by <paramref name="user"/> (directly, through a group or <c>autogroup:member</c>) or by
    /// one of the node's <paramref name="current"/> tags. A refusal throws 403 naming the tag and the way out.
    /// </summary>
    private List<string>? GrantedTagsLocked(IReadOnlyList<string>? requested, string? user, IReadOnlyList<string> current, IReadOnlyList<string>? keyTags, bool register)
    {
        var asked = new List<string>();
        if (requested is { Count: > MaxRequestedTags })
        {
            Refused(register);
            throw new NodeApiException(400, $"{requested.Count} tags requested; at most {MaxRequestedTags}");
        }

        foreach (var tag in requested ?? [])
        {
            if (!tag.StartsWith("tag:", StringComparison.Ordinal) || tag.Length == 4)
            {
                Refused(register);
                throw new NodeApiException(400, $"requested tag \"{tag}\": tags are written tag:name");
            }

            if (!asked.Contains(tag))
            {
                asked.Add(tag);
            }
        }

        if (asked.Count == 0)
        {
            return null;
        }

        if (keyTags is { Count: > 0 })
        {
            if (!asked.ToHashSet(StringComparer.Ordinal).SetEquals(keyTags))
            {
                Refused(register);
                var other = asked.FirstOrDefault(t => !keyTags.Contains(t)) ?? keyTags.First(t => !asked.Contains(t));
                throw new NodeApiException(403, $"requested tags ({string.Join(',', asked)}) do not match the auth key's tags ({string.Join(',', keyTags)}), first at \"{other}\": "
                    + "a tagged auth key decides the node's tags; advertise exactly the key's tags, none, or use a key with the tags you want");
            }

            return null;
        }

        if (asked.ToHashSet(StringComparer.Ordinal).SetEquals(current))
        {
            return null;
        }

        var policy = PolicyLocked();
        var who = user is null ? "this node" : $"user \"{user}\"";
        foreach (var tag in asked)
        {
            if (!policy.DefinesTag(tag))
            {
                Refused(register);
                throw new NodeApiException(403, $"requested tag \"{tag}\" is not defined in the policy's tagOwners: define it there, or drop it from --advertise-tags");
            }

            if (!policy.MayOwnTag(tag, user, current))
            {
                Refused(register);
                throw new NodeApiException(403, $"requested tag \"{tag}\" is not permitted: {who} does not own it under the policy's tagOwners; "
                    + $"add {who} (or a group of theirs) to tagOwners[\"{tag}\"], register with a pre-auth key that carries the tag, or drop it from --advertise-tags");
            }
        }

        return asked;

        void Refused(bool registering)
        {
            if (registering)
            {
                Metrics.Registration("refused");
            }
        }
    }

    /// <summary>Gives the node the granted tags; a tagged node's key does not expire.</summary>
    private MeshNodeState RetagLocked(MeshNodeState node, IReadOnlyList<string> tags)
    {
        var record = _store.GetNode(node.Id)!;
        _store.UpdateNode(record with { Tags = tags, Expiry = null, KeyExpiryDisabled = true });
        var updated = RefreshLocked(node.Id);
        ChangedLocked(topology: true);
        _logger.LogInformation("Tagged node {Name} ({Id}) with {Tags}, as it asked", updated.Name, updated.Id, string.Join(',', tags));
        return updated;
    }

    /// <summary>The key the node presents, if it is a valid one (not yet checked for expiry or use).</summary>
    private PreAuthKeyRecord? PeekPreAuthKey(string presented) =>
        PreAuthKeySecrets.TryParse(presented, out var prefix) && _store.GetPreAuthKeyByPrefix(prefix) is { } key && PreAuthKeySecrets.Matches(presented, key.Hash)
            ? key
            : null;

    private string? UserNameOf(long userId) => _users.TryGetValue(userId, out var user) ? user.Name : null;

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

            // Checked before anything is written: a refused request leaves the node as it is. Only a
            // request that changed is evaluated: tags an admin set since (`nodes tag`) are not undone
            // by the agent asking again for what it asked before.
            var requestedTags = request.Hostinfo?.RequestTags ?? [];
            var requestKey = string.Join(',', requestedTags.Order(StringComparer.Ordinal));
            var retag = _requestedTags.TryGetValue(id, out var lastRequest) && lastRequest == requestKey
                ? null
                : GrantedTagsLocked(requestedTags, node.UserName, node.Tags, keyTags: null, register: false);
            _requestedTags[id] = requestKey;
            var changed = false;
            var recompile = false;
            SeenLocked(id, now);
            if (retag is not null)
            {
                node = RetagLocked(node, retag);
                changed = recompile = true;
            }

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
