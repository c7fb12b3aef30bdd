using System.Text.RegularExpressions;
using Mesh.Control.Admin;
using Mesh.Control.Store;
using Mesh.Policy;

namespace Mesh.Control.State;

public sealed partial class MeshState : IMeshAdmin
{
    public Task<UserView> CreateUserAsync(string name, string? email, string? displayName, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(name) || !UserName().IsMatch(name))
        {
            throw AdminException.Invalid($"user name \"{name}\": use letters, digits, '.', '_', '-' and '@' (1-63 characters)");
        }

        if (email is not null && !email.Contains('@', StringComparison.Ordinal))
        {
            throw AdminException.Invalid($"email \"{email}\": expected an address such as alice@example.com");
        }

        lock (_lock)
        {
            var user = Guard(() => _store.CreateUser(name, email, displayName, _time.GetUtcNow()));
            _users[user.Id] = user;
            ChangedLocked(topology: true);
            return Task.FromResult(ToView(user));
        }
    }

    public Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<UserView>>([.. _users.Values.OrderBy(u => u.Id).Select(ToView)]);
        }
    }

    public Task DeleteUserAsync(string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var user = UserByNameLocked(name);
            var owned = _nodes.Values.Where(n => n.UserId == user.Id).Select(n => n.Name).ToList();
            if (owned.Count > 0)
            {
                throw AdminException.Conflict($"user {name} still owns {owned.Count} node(s) ({string.Join(", ", owned.Take(5))}); delete them first");
            }

            Guard(() => _store.DeleteUser(user.Id));
            _users.Remove(user.Id);
            ChangedLocked(topology: true);
            return Task.CompletedTask;
        }
    }

    public Task<CreatedPreAuthKey> CreatePreAuthKeyAsync(PreAuthKeyRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Expiration is { } e && e <= TimeSpan.Zero)
        {
            throw AdminException.Invalid("expiration must be positive, such as 24h");
        }

        lock (_lock)
        {
            var user = UserByNameLocked(request.User);
            var tags = ValidTagsLocked(request.Tags);
            var now = _time.GetUtcNow();
            var created = Guard(() => _store.CreatePreAuthKey(user.Id, request.Reusable, request.Ephemeral, tags, now, now + (request.Expiration ?? TimeSpan.FromHours(1))));
            return Task.FromResult(new CreatedPreAuthKey(ToView(created.Record), created.Key));
        }
    }

    public Task<IReadOnlyList<PreAuthKeyView>> ListPreAuthKeysAsync(string? user, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            long? userId = user is null ? null : UserByNameLocked(user).Id;
            return Task.FromResult<IReadOnlyList<PreAuthKeyView>>([.. _store.ListPreAuthKeys(userId).Select(ToView)]);
        }
    }

    public Task ExpirePreAuthKeyAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var key = (long.TryParse(idOrPrefix, out var id) ? _store.GetPreAuthKey(id) : null)
                ?? _store.GetPreAuthKeyByPrefix(idOrPrefix)
                ?? throw AdminException.NotFound($"no pre-auth key with id or prefix \"{idOrPrefix}\"");
            _store.ExpirePreAuthKey(key.Id, _time.GetUtcNow());
            return Task.CompletedTask;
        }
    }

    public Task<IReadOnlyList<NodeView>> ListNodesAsync(string? user, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            long? userId = user is null ? null : UserByNameLocked(user).Id;
            return Task.FromResult<IReadOnlyList<NodeView>>([.. _nodes.Values.Where(n => userId is null || n.UserId == userId).Select(ToView)]);
        }
    }

    public Task<NodeView> GetNodeAsync(long id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(ToView(NodeLocked(id)));
        }
    }

    public Task<NodeView> SetNodeTagsAsync(long id, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            NodeLocked(id);
            var valid = ValidTagsLocked(tags);
            _store.SetNodeTags(id, valid);
            var node = RefreshLocked(id);
            ChangedLocked(topology: true);
            return Task.FromResult(ToView(node));
        }
    }

    public Task<NodeView> ExpireNodeAsync(long id, DateTimeOffset? at, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var node = NodeLocked(id);
            var when = at ?? _time.GetUtcNow();
            var record = _store.GetNode(id)!;
            _store.UpdateNode(record with { Expiry = when, KeyExpiryDisabled = false });
            node = RefreshLocked(id);
            ChangedLocked(topology: false);
            return Task.FromResult(ToView(node));
        }
    }

    public Task<NodeView> RenameNodeAsync(long id, string name, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(name) || !DnsLabel().IsMatch(name))
        {
            throw AdminException.Invalid($"node name \"{name}\": use a DNS label — lower-case letters, digits and '-', 1-63 characters, not starting or ending with '-'");
        }

        lock (_lock)
        {
            NodeLocked(id);
            if (NameTakenLocked(name, id))
            {
                throw AdminException.Conflict($"another node is already named {name}");
            }

            Guard(() => _store.RenameNode(id, name));
            var node = RefreshLocked(id);
            ChangedLocked(topology: true);
            return Task.FromResult(ToView(node));
        }
    }

    public Task DeleteNodeAsync(long id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            RemoveNodeLocked(NodeLocked(id));
            _openStreams.Remove(id);
            ChangedLocked(topology: true);
            return Task.CompletedTask;
        }
    }

    public Task<IReadOnlyList<RouteView>> ListRoutesAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<RouteView>>([.. _store.ListRoutes().Select(ToView)]);
        }
    }

    public Task<RouteView> SetRouteEnabledAsync(long id, bool enabled, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var route = _store.GetRoute(id) ?? throw AdminException.NotFound($"no route with id {id} (mesh-operator routes list)");
            var updated = _store.SetRouteEnabled(id, enabled);
            RefreshLocked(route.NodeId);
            ChangedLocked(topology: true);
            return Task.FromResult(ToView(updated));
        }
    }

    public Task<PolicyView> GetPolicyAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(new PolicyView(_policyUpdatedAt is null && _policyText == DefaultPolicy ? string.Empty : _policyText, _policyUpdatedAt));
        }
    }

    public Task<PolicyView> SetPolicyAsync(string policy, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(_config.Policy.Path))
        {
            throw AdminException.Conflict($"the policy is read from the file {_config.Policy.Path} (policy.path): edit that file and restart, or clear policy.path to manage it here");
        }

        lock (_lock)
        {
            ICompiledPolicy compiled;
            try
            {
                compiled = CompileLocked(policy, runTests: true);
            }
            catch (PolicyException e)
            {
                throw AdminException.Invalid($"policy refused, the previous one stays in force: {e.Message}");
            }

            var stored = _store.SetPolicy(policy, _time.GetUtcNow());
            _policyText = policy;
            _policyUpdatedAt = stored.UpdatedAt;

            // Compiled against the current nodes just now: nothing left to recompile for them.
            _policy = compiled;
            _policyDirty = false;
            _policyMatchesNodes = true;
            ChangedLocked(topology: false);
            return Task.FromResult(new PolicyView(policy, stored.UpdatedAt));
        }
    }

    public Task<PolicyCheckResult> CheckPolicyAsync(string policy, CancellationToken cancellationToken)
    {
        PolicyTopology topology;
        lock (_lock)
        {
            topology = TopologyLocked();
        }

        try
        {
            var compiled = PolicyEngine.Compile(policy, topology, 0, runTests: false);
            var report = compiled.RunTests();
            return Task.FromResult(new PolicyCheckResult(report.Passed, report.Failures, [$"{report.Tests} test(s), {report.Failures.Count} failed"]));
        }
        catch (PolicyException e)
        {
            return Task.FromResult(new PolicyCheckResult(false, [e.Message], []));
        }
    }

    public Task<CreatedApiKey> CreateApiKeyAsync(TimeSpan? expiration, CancellationToken cancellationToken)
    {
        if (expiration is { } e && e <= TimeSpan.Zero)
        {
            throw AdminException.Invalid("expiration must be positive, such as 90d");
        }

        var now = _time.GetUtcNow();
        var created = _store.CreateApiKey(now, now + (expiration ?? TimeSpan.FromDays(90)));
        return Task.FromResult(new CreatedApiKey(ToView(created.Record), created.Key));
    }

    public Task<IReadOnlyList<ApiKeyView>> ListApiKeysAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ApiKeyView>>([.. _store.ListApiKeys().Select(ToView)]);

    public Task ExpireApiKeyAsync(string prefix, CancellationToken cancellationToken)
    {
        _ = _store.ExpireApiKey(prefix, _time.GetUtcNow()) ?? throw AdminException.NotFound($"no API key with prefix \"{prefix}\"");
        return Task.CompletedTask;
    }

    public Task<bool> ValidateApiKeyAsync(string key, CancellationToken cancellationToken) =>
        Task.FromResult(_store.ValidateApiKey(key, _time.GetUtcNow()));

    private UserRecord UserByNameLocked(string name) =>
        _users.Values.FirstOrDefault(u => u.Name == name) ?? throw AdminException.NotFound($"no user named {name} (mesh-operator users list)");

    private MeshNodeState NodeLocked(long id) =>
        _nodes.TryGetValue(id, out var node) ? node : throw AdminException.NotFound($"no node with id {id} (mesh-operator nodes list)");

    /// <summary>Tags must look like tag:name and be defined in the policy's tagOwners.</summary>
    private List<string> ValidTagsLocked(IReadOnlyList<string> tags)
    {
        var defined = PolicyTags.Defined(_policyText);
        var result = new List<string>();
        foreach (var tag in tags)
        {
            if (!tag.StartsWith("tag:", StringComparison.Ordinal) || tag.Length == 4)
            {
                throw AdminException.Invalid($"tag \"{tag}\": tags are written tag:name");
            }

            if (!defined.Contains(tag))
            {
                throw AdminException.Invalid($"tag \"{tag}\" is not defined in the policy's tagOwners; add it there first");
            }

            if (!result.Contains(tag))
            {
                result.Add(tag);
            }
        }

        return result;
    }

    private static T Guard<T>(Func<T> write)
    {
        try
        {
            return write();
        }
        catch (StoreConflictException e)
        {
            throw AdminException.Conflict(e.Message);
        }
        catch (StoreNotFoundException e)
        {
            throw AdminException.NotFound(e.Message);
        }
    }

    private static UserView ToView(UserRecord u) => new(u.Id, u.Name, u.Email, u.DisplayName, u.CreatedAt);

    private PreAuthKeyView ToView(PreAuthKeyRecord k) => new(
        k.Id, k.Prefix, _users.TryGetValue(k.UserId, out var u) ? u.Name : k.UserId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        k.Reusable, k.Ephemeral, k.Used, k.CreatedAt, k.Expiration, k.Tags);

    private NodeView ToView(MeshNodeState n) => new(
        n.Id, n.Name, n.Hostname, n.UserName, n.Tags, [.. new[] { n.IPv4?.ToString(), n.IPv6?.ToString() }.OfType<string>()],
        n.NodeKey.ToString(), n.MachineKey.ToString(), n.Online, LastSeenLocked(n.Id, n.LastSeen), n.KeyExpiryDisabled ? null : n.Expiry, n.IsExpired(_time.GetUtcNow()),
        n.Ephemeral, n.AdvertisedRoutes, n.ApprovedRoutes, n.CreatedAt);

    private RouteView ToView(RouteRecord r)
    {
        var name = _nodes.TryGetValue(r.NodeId, out var node) ? node.Name : r.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var primary = SnapshotLocked().PrimaryRoutes.TryGetValue(r.NodeId, out var p) && p.Contains(r.Prefix);
        return new RouteView(r.Id, r.NodeId, name, r.Prefix, r.Advertised, r.Enabled, primary || (r.Enabled && MeshNodeState.IsExitRoute(r.Prefix)));
    }

    private static ApiKeyView ToView(ApiKeyRecord k) => new(k.Id, k.Prefix, k.CreatedAt, k.Expiration, k.LastSeen);

    [GeneratedRegex("^[A-Za-z0-9._@-]{1,63}$")]
    private static partial Regex UserName();

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel();
}
