namespace Mesh.Control.Store;

// Rows as the store returns them: immutable snapshots, never live views. Lists are read-only copies.
// Times are UTC; they round-trip to the tick (stored as fixed-width ISO 8601 text, which also sorts).

public sealed record UserRecord(long Id, string Name, string? Email, string? DisplayName, DateTimeOffset CreatedAt);

/// <summary>
/// A pre-auth key. Only the prefix (which identifies it in listings and `preauthkeys expire`) and the
/// SHA-256 of the key are stored; the secret itself is shown once, at creation.
/// <see cref="Used"/> is set on first use for reusable keys too (for listings); only single-use keys
/// are refused once used.
/// </summary>
public sealed record PreAuthKeyRecord(
    long Id,
    long UserId,
    string Prefix,
    byte[] Hash,
    bool Reusable,
    bool Ephemeral,
    bool Used,
    DateTimeOffset CreatedAt,
    DateTimeOffset? Expiration,
    IReadOnlyList<string> Tags)
{
    public bool IsExpired(DateTimeOffset now) => Expiration is { } at && at <= now;
}

/// <summary>
/// A node. Keys are in their text form (as the protocol prints them); <see cref="IPv4"/> and
/// <see cref="IPv6"/> are canonical address text. <see cref="GivenName"/> is the MagicDNS name, unique
/// without regard to case. <see cref="UserId"/> is null for nodes owned by tags only.
/// </summary>
public sealed record NodeRecord(
    long Id,
    string MachineKey,
    string NodeKey,
    string? DiscoKey,
    long? UserId,
    string Hostname,
    string GivenName,
    IReadOnlyList<string> Tags,
    string? IPv4,
    string? IPv6,
    IReadOnlyList<string> Endpoints,
    int? HomeRelay,
    DateTimeOffset? LastSeen,
    DateTimeOffset? Expiry,
    bool KeyExpiryDisabled,
    bool Ephemeral,
    long? AuthKeyId,
    string? HostinfoJson,
    DateTimeOffset CreatedAt)
{
    public bool IsExpired(DateTimeOffset now) => !KeyExpiryDisabled && Expiry is { } at && at <= now;
}

/// <summary>
/// A subnet route of one node. <see cref="Prefix"/> is canonical CIDR text (no host bits).
/// <see cref="Advertised"/>: the node currently announces it; <see cref="Enabled"/>: an admin (or an
/// auto-approver) approved it; <see cref="IsPrimary"/>: this node is the one serving it (chosen by the state).
/// </summary>
public sealed record RouteRecord(long Id, long NodeId, string Prefix, bool Advertised, bool Enabled, bool IsPrimary);

/// <summary>An admin API key: prefix and SHA-256 only, like pre-auth keys.</summary>
public sealed record ApiKeyRecord(long Id, string Prefix, byte[] Hash, DateTimeOffset CreatedAt, DateTimeOffset? Expiration, DateTimeOffset? LastSeen)
{
    public bool IsExpired(DateTimeOffset now) => Expiration is { } at && at <= now;
}

/// <summary>The policy document as it was set (HuJSON text, not reformatted).</summary>
public sealed record StoredPolicy(string Text, DateTimeOffset UpdatedAt);

/// <summary>A key just created: the record and, this once only, the full key. ToString hides the key.</summary>
public sealed record NewPreAuthKey(PreAuthKeyRecord Record, string Key)
{
    public override string ToString() => $"NewPreAuthKey {{ Id = {Record.Id}, Prefix = {Record.Prefix}, Key = <redacted> }}";
}

/// <summary>An API key just created: the record and, this once only, the full key. ToString hides the key.</summary>
public sealed record NewApiKey(ApiKeyRecord Record, string Key)
{
    public override string ToString() => $"NewApiKey {{ Id = {Record.Id}, Prefix = {Record.Prefix}, Key = <redacted> }}";
}
