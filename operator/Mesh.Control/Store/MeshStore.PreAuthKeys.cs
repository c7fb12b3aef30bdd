using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

public sealed partial class MeshStore
{
    private const string PreAuthKeyColumns = "id, user_id, prefix, hash, reusable, ephemeral, used, created_at, expiration, tags";

    /// <summary>
    /// Creates a pre-auth key for <paramref name="userId"/> and returns it with its secret, which is not
    /// stored (only its hash is). <see cref="StoreNotFoundException"/> when the user does not exist.
    /// </summary>
    public NewPreAuthKey CreatePreAuthKey(
        long userId, bool reusable, bool ephemeral, IReadOnlyList<string> tags, DateTimeOffset now, DateTimeOffset? expiration)
    {
        ArgumentNullException.ThrowIfNull(tags);
        var tagList = tags.ToArray();
        return InTransaction(() =>
        {
            if (Scalar("SELECT 1 FROM users WHERE id = $id", ("$id", userId)) is null)
            {
                throw new StoreNotFoundException("user", $"user {userId} does not exist");
            }

            // A 12-character base62 prefix collides about once in 2^35 keys; retry rather than fail.
            for (var attempt = 0; ; attempt++)
            {
                var (key, prefix, hash) = PreAuthKeySecrets.Generate();
                try
                {
                    var record = QuerySingle(
                        ReadPreAuthKey,
                        $"""
                        INSERT INTO pre_auth_keys (user_id, prefix, hash, reusable, ephemeral, used, created_at, expiration, tags)
                        VALUES ($user, $prefix, $hash, $reusable, $ephemeral, 0, $now, $expiration, $tags)
                        RETURNING {PreAuthKeyColumns}
                        """,
                        ("$user", userId), ("$prefix", prefix), ("$hash", hash), ("$reusable", reusable), ("$ephemeral", ephemeral),
                        ("$now", now), ("$expiration", expiration), ("$tags", tagList))!;
                    return new NewPreAuthKey(record, key);
                }
                catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint && attempt < 3)
                {
                }
            }
        });
    }

    public PreAuthKeyRecord? GetPreAuthKey(long id) =>
        Locked(() => QuerySingle(ReadPreAuthKey, $"SELECT {PreAuthKeyColumns} FROM pre_auth_keys WHERE id = $id", ("$id", id)));

    public PreAuthKeyRecord? GetPreAuthKeyByPrefix(string prefix) =>
        Locked(() => QuerySingle(ReadPreAuthKey, $"SELECT {PreAuthKeyColumns} FROM pre_auth_keys WHERE prefix = $prefix", ("$prefix", prefix)));

    /// <summary>All pre-auth keys (or one user's), by id.</summary>
    public IReadOnlyList<PreAuthKeyRecord> ListPreAuthKeys(long? userId = null) => Locked(() => userId is { } user
        ? Query(ReadPreAuthKey, $"SELECT {PreAuthKeyColumns} FROM pre_auth_keys WHERE user_id = $user ORDER BY id", ("$user", user))
        : Query(ReadPreAuthKey, $"SELECT {PreAuthKeyColumns} FROM pre_auth_keys ORDER BY id"));

    /// <summary>Makes the key expire at <paramref name="now"/> (an earlier expiration is kept). Null when there is no such key.</summary>
    public PreAuthKeyRecord? ExpirePreAuthKey(long id, DateTimeOffset now) => Locked(() => QuerySingle(
        ReadPreAuthKey,
        $"""
        UPDATE pre_auth_keys SET expiration = $now WHERE id = $id AND (expiration IS NULL OR expiration > $now)
        RETURNING {PreAuthKeyColumns}
        """,
        ("$id", id), ("$now", now))
        ?? QuerySingle(ReadPreAuthKey, $"SELECT {PreAuthKeyColumns} FROM pre_auth_keys WHERE id = $id", ("$id", id)));

    /// <summary>Deletes a key; nodes registered with it keep running (their <see cref="NodeRecord.AuthKeyId"/> becomes null).</summary>
    public bool DeletePreAuthKey(long id) => Locked(() => Execute("DELETE FROM pre_auth_keys WHERE id = $id", ("$id", id)) == 1);

    /// <summary>
    /// Checks and uses a presented pre-auth key, atomically: a single-use key succeeds for exactly one
    /// caller however many race (<c>UPDATE … WHERE used = 0</c>, checking the rows changed). Every key
    /// is marked used; reusable ones keep working. On refusal <paramref name="reason"/> says why:
    /// "malformed key", "unknown key" (also for a wrong secret: a prefix alone proves nothing),
    /// "key expired at …", "single-use key already used".
    /// </summary>
    public bool TryConsumePreAuthKey(
        string presentedKey,
        DateTimeOffset now,
        [NotNullWhen(true)] out PreAuthKeyRecord? key,
        [NotNullWhen(false)] out string? reason)
    {
        (key, reason) = InTransaction(() => ConsumePreAuthKeyLocked(presentedKey, now));
        return key is not null;
    }

    /// <summary>
    /// Registers a node with a pre-auth key in one transaction: the key is used (as by
    /// <see cref="TryConsumePreAuthKey"/>) and the node <paramref name="buildNode"/> makes from it is
    /// inserted (as by <see cref="InsertNode"/>), or neither happens — a registration that fails on a
    /// taken name or address does not burn a single-use key. <paramref name="buildNode"/> runs under the
    /// store's lock: it must be quick and must not call the store; if it throws, nothing is written.
    /// </summary>
    public bool TryRegisterNode(
        string presentedKey,
        DateTimeOffset now,
        Func<PreAuthKeyRecord, NodeRecord> buildNode,
        [NotNullWhen(true)] out NodeRecord? node,
        [NotNullWhen(false)] out string? reason)
    {
        ArgumentNullException.ThrowIfNull(buildNode);
        (node, reason) = InTransaction(() =>
        {
            var (key, refusal) = ConsumePreAuthKeyLocked(presentedKey, now);
            if (key is null)
            {
                return ((NodeRecord?)null, refusal);
            }

            return (InsertNodeLocked(buildNode(key) with { AuthKeyId = key.Id }), null);
        });
        return node is not null;
    }

    private (PreAuthKeyRecord? Key, string? Reason) ConsumePreAuthKeyLocked(string presentedKey, DateTimeOffset now)
    {
        if (!PreAuthKeySecrets.TryParse(presentedKey, out var prefix))
        {
            return (null, "malformed key");
        }

        var key = QuerySingle(ReadPreAuthKey, $"SELECT {PreAuthKeyColumns} FROM pre_auth_keys WHERE prefix = $prefix", ("$prefix", prefix));
        if (key is null || !PreAuthKeySecrets.Matches(presentedKey, key.Hash))
        {
            return (null, "unknown key");
        }

        if (key.IsExpired(now))
        {
            return (null, "key expired at " + key.Expiration!.Value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        }

        var changed = Execute(
            "UPDATE pre_auth_keys SET used = 1 WHERE id = $id AND (reusable = 1 OR used = 0)",
            ("$id", key.Id));
        if (changed != 1)
        {
            return (null, "single-use key already used");
        }

        return (key with { Used = true }, null);
    }

    private static PreAuthKeyRecord ReadPreAuthKey(SqliteDataReader r) => new(
        r.GetInt64(0),
        r.GetInt64(1),
        r.GetString(2),
        SqlValues.Blob(r, 3),
        SqlValues.Bool(r, 4),
        SqlValues.Bool(r, 5),
        SqlValues.Bool(r, 6),
        SqlValues.Time(r, 7),
        SqlValues.TimeOrNull(r, 8),
        SqlValues.List(r, 9));
}
