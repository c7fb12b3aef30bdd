namespace Mesh.Control.Admin;

/// <summary>
/// What an administrator can do to a mesh: the operations behind the admin REST API and the
/// `mesh-operator users|preauthkeys|nodes|routes|policy|apikeys` verbs. Implemented by the
/// coordinator's state (every change goes through it, so netmaps follow); the HTTP layer only
/// translates. Methods throw <see cref="AdminException"/> with a status and a message that says what
/// to fix; nothing is written when they throw.
/// </summary>
public interface IMeshAdmin
{
    Task<UserView> CreateUserAsync(string name, string? email, string? displayName, CancellationToken cancellationToken);

    Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken);

    /// <summary>Refuses (409) while the user still owns nodes.</summary>
    Task DeleteUserAsync(string name, CancellationToken cancellationToken);

    /// <summary>The returned key carries its secret in <see cref="CreatedPreAuthKey.Key"/>, this once only.</summary>
    Task<CreatedPreAuthKey> CreatePreAuthKeyAsync(PreAuthKeyRequest request, CancellationToken cancellationToken);

    Task<IReadOnlyList<PreAuthKeyView>> ListPreAuthKeysAsync(string? user, CancellationToken cancellationToken);

    /// <summary>Expires a key by its id or prefix.</summary>
    Task ExpirePreAuthKeyAsync(string idOrPrefix, CancellationToken cancellationToken);

    Task<IReadOnlyList<NodeView>> ListNodesAsync(string? user, CancellationToken cancellationToken);

    Task<NodeView> GetNodeAsync(long id, CancellationToken cancellationToken);

    /// <summary>Replaces the node's tags; each must be a valid `tag:` name owned per the policy's tagOwners.</summary>
    Task<NodeView> SetNodeTagsAsync(long id, IReadOnlyList<string> tags, CancellationToken cancellationToken);

    /// <summary>Expires the node's key now (or at <paramref name="at"/>); the node must re-register.</summary>
    Task<NodeView> ExpireNodeAsync(long id, DateTimeOffset? at, CancellationToken cancellationToken);

    /// <summary>Renames the node (its MagicDNS name); 409 when another node has that name.</summary>
    Task<NodeView> RenameNodeAsync(long id, string name, CancellationToken cancellationToken);

    Task DeleteNodeAsync(long id, CancellationToken cancellationToken);

    Task<IReadOnlyList<RouteView>> ListRoutesAsync(CancellationToken cancellationToken);

    Task<RouteView> SetRouteEnabledAsync(long id, bool enabled, CancellationToken cancellationToken);

    /// <summary>The policy in force (HuJSON text as it was set) and when it was set; empty text when none.</summary>
    Task<PolicyView> GetPolicyAsync(CancellationToken cancellationToken);

    /// <summary>Validates (including the policy's `tests`) and installs; 400 with the reason when invalid, and the old policy stays.</summary>
    Task<PolicyView> SetPolicyAsync(string policy, CancellationToken cancellationToken);

    /// <summary>Validates without installing: against the current nodes and users.</summary>
    Task<PolicyCheckResult> CheckPolicyAsync(string policy, CancellationToken cancellationToken);

    /// <summary>The returned key carries its secret in <see cref="CreatedApiKey.Key"/>, this once only.</summary>
    Task<CreatedApiKey> CreateApiKeyAsync(TimeSpan? expiration, CancellationToken cancellationToken);

    Task<IReadOnlyList<ApiKeyView>> ListApiKeysAsync(CancellationToken cancellationToken);

    Task ExpireApiKeyAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>True when <paramref name="key"/> is a live API key (hash compared in constant time).</summary>
    Task<bool> ValidateApiKeyAsync(string key, CancellationToken cancellationToken);
}

/// <summary>An admin operation refused: <see cref="Status"/> is the HTTP status (400, 404, 409, …).</summary>
public sealed class AdminException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static AdminException NotFound(string message) => new(404, message);

    public static AdminException Invalid(string message) => new(400, message);

    public static AdminException Conflict(string message) => new(409, message);
}

public sealed record UserView(long Id, string Name, string? Email, string? DisplayName, DateTimeOffset CreatedAt);

public sealed record PreAuthKeyRequest(string User, bool Reusable, bool Ephemeral, TimeSpan? Expiration, IReadOnlyList<string> Tags);

/// <summary>A pre-auth key as listed: never its secret, only the prefix that identifies it.</summary>
public sealed record PreAuthKeyView(
    long Id,
    string Prefix,
    string User,
    bool Reusable,
    bool Ephemeral,
    bool Used,
    DateTimeOffset CreatedAt,
    DateTimeOffset? Expiration,
    IReadOnlyList<string> Tags);

public sealed record CreatedPreAuthKey(PreAuthKeyView View, string Key);

public sealed record NodeView(
    long Id,
    string Name,
    string Hostname,
    string? User,
    IReadOnlyList<string> Tags,
    IReadOnlyList<string> IpAddresses,
    string NodeKey,
    string MachineKey,
    bool Online,
    DateTimeOffset? LastSeen,
    DateTimeOffset? Expiry,
    bool Expired,
    bool Ephemeral,
    IReadOnlyList<string> AdvertisedRoutes,
    IReadOnlyList<string> ApprovedRoutes,
    DateTimeOffset CreatedAt);

public sealed record RouteView(long Id, long NodeId, string Node, string Prefix, bool Advertised, bool Enabled, bool IsPrimary);

public sealed record PolicyView(string Policy, DateTimeOffset? UpdatedAt);

/// <summary>A policy check: valid, or the errors (each naming the problem); test results when the policy has `tests`.</summary>
public sealed record PolicyCheckResult(bool Valid, IReadOnlyList<string> Errors, IReadOnlyList<string> TestResults);

public sealed record ApiKeyView(long Id, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? Expiration, DateTimeOffset? LastSeen);

public sealed record CreatedApiKey(ApiKeyView View, string Key);
