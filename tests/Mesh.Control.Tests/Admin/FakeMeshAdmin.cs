using Mesh.Control.Admin;

namespace Mesh.Control.Tests.Admin;

/// <summary>
/// An in-memory <see cref="IMeshAdmin"/> with just enough rules to exercise every status the admin
/// API can return (404, 409, 400). Not a model of the coordinator: no policy engine (a policy
/// containing "invalid" is invalid, one containing "fail" has a failing test), no netmaps.
/// Shared with Mesh.Operator.Tests (linked source).
/// </summary>
internal sealed class FakeMeshAdmin : IMeshAdmin
{
    public const string ApiKey = "mapi_live0000_secretsecretsecret";
    public const string ExpiredApiKey = "mapi_dead0000_secretsecretsecret";
    public static readonly DateTimeOffset Now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly Lock _lock = new();
    private readonly List<UserView> _users = [];
    private readonly List<(PreAuthKeyView View, string Key)> _preAuthKeys = [];
    private readonly List<NodeView> _nodes = [];
    private readonly List<RouteView> _routes = [];
    private readonly List<(ApiKeyView View, string Key)> _apiKeys = [];
    private PolicyView _policy = new("", null);
    private long _nextId = 100;

    public FakeMeshAdmin()
    {
        _apiKeys.Add((new ApiKeyView(1, "mapi_live0000", Now.AddDays(-1), Now.AddDays(89), null), ApiKey));
        _apiKeys.Add((new ApiKeyView(2, "mapi_dead0000", Now.AddDays(-100), Now.AddDays(-10), null), ExpiredApiKey));
    }

    /// <summary>The last pre-auth key request, as the API handed it over.</summary>
    public PreAuthKeyRequest? LastPreAuthKeyRequest { get; private set; }

    public TimeSpan? LastApiKeyExpiration { get; private set; }

    public DateTimeOffset? LastNodeExpiry { get; private set; }

    /// <summary>Seeds a user, a node of theirs with one advertised route (disabled), and returns the node.</summary>
    public NodeView AddNode(string user, string name, params string[] routes)
    {
        lock (_lock)
        {
            if (!_users.Any(u => u.Name == user))
            {
                _users.Add(new UserView(++_nextId, user, null, null, Now.AddDays(-3)));
            }

            var id = ++_nextId;
            var node = new NodeView(
                id,
                name,
                name + "-host",
                user,
                [],
                [$"100.64.0.{id % 250}", $"fd7a:115c:a1e0::{id:x}"],
                "nodekey:" + new string('a', 64),
                "mkey:" + new string('b', 64),
                Online: _nodes.Count % 2 == 0,
                LastSeen: Now.AddMinutes(-5),
                Expiry: Now.AddDays(180),
                Expired: false,
                Ephemeral: false,
                AdvertisedRoutes: routes,
                ApprovedRoutes: [],
                CreatedAt: Now.AddDays(-2));
            _nodes.Add(node);
            foreach (var prefix in routes)
            {
                _routes.Add(new RouteView(++_nextId, id, name, prefix, Advertised: true, Enabled: false, IsPrimary: false));
            }

            return node;
        }
    }

    public IReadOnlyList<RouteView> Routes
    {
        get
        {
            lock (_lock)
            {
                return [.. _routes];
            }
        }
    }

    public Task<UserView> CreateUserAsync(string name, string? email, string? displayName, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Any(char.IsWhiteSpace))
            {
                throw AdminException.Invalid($"invalid user name \"{name}\": no spaces, not empty");
            }

            if (_users.Any(u => u.Name == name))
            {
                throw AdminException.Conflict($"user \"{name}\" already exists");
            }

            var user = new UserView(++_nextId, name, email, displayName, Now);
            _users.Add(user);
            return Task.FromResult(user);
        }
    }

    public Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<UserView>>([.. _users]);
        }
    }

    public Task DeleteUserAsync(string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var user = _users.FirstOrDefault(u => u.Name == name) ?? throw AdminException.NotFound($"user \"{name}\" not found");
            if (_nodes.Any(n => n.User == name))
            {
                throw AdminException.Conflict($"user \"{name}\" still owns nodes; delete them first");
            }

            _users.Remove(user);
            return Task.CompletedTask;
        }
    }

    public Task<CreatedPreAuthKey> CreatePreAuthKeyAsync(PreAuthKeyRequest request, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            LastPreAuthKeyRequest = request;
            if (!_users.Any(u => u.Name == request.User))
            {
                throw AdminException.NotFound($"user \"{request.User}\" not found");
            }

            CheckTags(request.Tags);
            var id = ++_nextId;
            var prefix = $"mkey_{id:D8}";
            var view = new PreAuthKeyView(
                id,
                prefix,
                request.User,
                request.Reusable,
                request.Ephemeral,
                Used: false,
                CreatedAt: Now,
                Expiration: Now + (request.Expiration ?? TimeSpan.FromHours(1)),
                request.Tags);
            var key = prefix + "_preauthsecret" + id;
            _preAuthKeys.Add((view, key));
            return Task.FromResult(new CreatedPreAuthKey(view, key));
        }
    }

    public Task<IReadOnlyList<PreAuthKeyView>> ListPreAuthKeysAsync(string? user, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<PreAuthKeyView>>([.. _preAuthKeys.Select(k => k.View).Where(v => user is null || v.User == user)]);
        }
    }

    public Task ExpirePreAuthKeyAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = _preAuthKeys.FindIndex(k => k.View.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) == idOrPrefix || k.View.Prefix == idOrPrefix);
            if (index < 0)
            {
                throw AdminException.NotFound($"pre-auth key \"{idOrPrefix}\" not found");
            }

            var (view, key) = _preAuthKeys[index];
            _preAuthKeys[index] = (view with { Expiration = Now }, key);
            return Task.CompletedTask;
        }
    }

    public Task<IReadOnlyList<NodeView>> ListNodesAsync(string? user, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<NodeView>>([.. _nodes.Where(n => user is null || n.User == user)]);
        }
    }

    public Task<NodeView> GetNodeAsync(long id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(_nodes[NodeIndex(id)]);
        }
    }

    public Task<NodeView> SetNodeTagsAsync(long id, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = NodeIndex(id);
            CheckTags(tags);
            _nodes[index] = _nodes[index] with { Tags = [.. tags] };
            return Task.FromResult(_nodes[index]);
        }
    }

    public Task<NodeView> ExpireNodeAsync(long id, DateTimeOffset? at, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = NodeIndex(id);
            LastNodeExpiry = at;
            _nodes[index] = _nodes[index] with { Expiry = at ?? Now, Expired = at is null || at <= Now };
            return Task.FromResult(_nodes[index]);
        }
    }

    public Task<NodeView> RenameNodeAsync(long id, string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = NodeIndex(id);
            if (_nodes.Any(n => n.Id != id && n.Name == name))
            {
                throw AdminException.Conflict($"another node is already named \"{name}\"");
            }

            _nodes[index] = _nodes[index] with { Name = name };
            return Task.FromResult(_nodes[index]);
        }
    }

    public Task DeleteNodeAsync(long id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _nodes.RemoveAt(NodeIndex(id));
            _routes.RemoveAll(r => r.NodeId == id);
            return Task.CompletedTask;
        }
    }

    public Task<IReadOnlyList<RouteView>> ListRoutesAsync(CancellationToken cancellationToken) => Task.FromResult(Routes);

    public Task<RouteView> SetRouteEnabledAsync(long id, bool enabled, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = _routes.FindIndex(r => r.Id == id);
            if (index < 0)
            {
                throw AdminException.NotFound($"route {id} not found");
            }

            _routes[index] = _routes[index] with { Enabled = enabled, IsPrimary = enabled };
            return Task.FromResult(_routes[index]);
        }
    }

    public Task<PolicyView> GetPolicyAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(_policy);
        }
    }

    public Task<PolicyView> SetPolicyAsync(string policy, CancellationToken cancellationToken)
    {
        var check = Check(policy);
        if (!check.Valid)
        {
            throw AdminException.Invalid(string.Join("; ", check.Errors));
        }

        lock (_lock)
        {
            _policy = new PolicyView(policy, Now);
            return Task.FromResult(_policy);
        }
    }

    public Task<PolicyCheckResult> CheckPolicyAsync(string policy, CancellationToken cancellationToken) => Task.FromResult(Check(policy));

    public Task<CreatedApiKey> CreateApiKeyAsync(TimeSpan? expiration, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            LastApiKeyExpiration = expiration;
            var id = ++_nextId;
            var prefix = $"mapi_{id:D8}";
            var view = new ApiKeyView(id, prefix, Now, Now + (expiration ?? TimeSpan.FromDays(90)), null);
            var key = prefix + "_apisecret" + id;
            _apiKeys.Add((view, key));
            return Task.FromResult(new CreatedApiKey(view, key));
        }
    }

    public Task<IReadOnlyList<ApiKeyView>> ListApiKeysAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyList<ApiKeyView>>([.. _apiKeys.Select(k => k.View)]);
        }
    }

    public Task ExpireApiKeyAsync(string prefix, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = _apiKeys.FindIndex(k => k.View.Prefix == prefix);
            if (index < 0)
            {
                throw AdminException.NotFound($"API key \"{prefix}\" not found");
            }

            var (view, key) = _apiKeys[index];
            _apiKeys[index] = (view with { Expiration = Now.AddSeconds(-1) }, key);
            return Task.CompletedTask;
        }
    }

    public Task<bool> ValidateApiKeyAsync(string key, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(_apiKeys.Any(k => k.Key == key && (k.View.Expiration is null || k.View.Expiration > Now)));
        }
    }

    private static PolicyCheckResult Check(string policy)
    {
        if (policy.Contains("invalid", StringComparison.Ordinal))
        {
            return new PolicyCheckResult(false, ["acls[0]: unknown field \"invalid\""], []);
        }

        if (policy.Contains("fail", StringComparison.Ordinal))
        {
            return new PolicyCheckResult(false, ["test 1 failed: alice must not reach web:22"], ["PASS alice -> web:80", "FAIL alice -> web:22"]);
        }

        return new PolicyCheckResult(true, [], policy.Contains("tests", StringComparison.Ordinal) ? ["PASS alice -> web:80"] : []);
    }

    private static void CheckTags(IReadOnlyList<string> tags)
    {
        foreach (var tag in tags)
        {
            if (!tag.StartsWith("tag:", StringComparison.Ordinal) || tag.Length == 4)
            {
                throw AdminException.Invalid($"invalid tag \"{tag}\": tags look like tag:name");
            }
        }
    }

    private int NodeIndex(long id)
    {
        var index = _nodes.FindIndex(n => n.Id == id);
        return index >= 0 ? index : throw AdminException.NotFound($"node {id} not found");
    }
}
