using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

public sealed partial class MeshStore
{
    private const string ApiKeyColumns = "id, prefix, hash, created_at, expiration, last_seen";

    /// <summary>Creates an admin API key and returns it with its secret, which is not stored (only its hash is).</summary>
    public NewApiKey CreateApiKey(DateTimeOffset now, DateTimeOffset? expiration) => Locked(() =>
    {
        for (var attempt = 0; ; attempt++)
        {
            var (key, prefix, hash) = ApiKeySecrets.Generate();
            try
            {
                var record = QuerySingle(
                    ReadApiKey,
                    $"INSERT INTO api_keys (prefix, hash, created_at, expiration) VALUES ($prefix, $hash, $now, $expiration) RETURNING {ApiKeyColumns}",
                    ("$prefix", prefix), ("$hash", hash), ("$now", now), ("$expiration", expiration))!;
                return new NewApiKey(record, key);
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint && attempt < 3)
            {
            }
        }
    });

    /// <summary>All API keys, by id.</summary>
    public IReadOnlyList<ApiKeyRecord> ListApiKeys() =>
        Locked(() => Query(ReadApiKey, $"SELECT {ApiKeyColumns} FROM api_keys ORDER BY id"));

    public ApiKeyRecord? GetApiKeyByPrefix(string prefix) =>
        Locked(() => QuerySingle(ReadApiKey, $"SELECT {ApiKeyColumns} FROM api_keys WHERE prefix = $prefix", ("$prefix", prefix)));

    /// <summary>Makes the key expire at <paramref name="now"/> (an earlier expiration is kept). Null when there is no such key.</summary>
    public ApiKeyRecord? ExpireApiKey(string prefix, DateTimeOffset now) => Locked(() => QuerySingle(
        ReadApiKey,
        $"""
        UPDATE api_keys SET expiration = $now WHERE prefix = $prefix AND (expiration IS NULL OR expiration > $now)
        RETURNING {ApiKeyColumns}
        """,
        ("$prefix", prefix), ("$now", now))
        ?? QuerySingle(ReadApiKey, $"SELECT {ApiKeyColumns} FROM api_keys WHERE prefix = $prefix", ("$prefix", prefix)));

    public bool DeleteApiKey(string prefix) => Locked(() => Execute("DELETE FROM api_keys WHERE prefix = $prefix", ("$prefix", prefix)) == 1);

    /// <summary>
    /// True when <paramref name="presentedKey"/> is a live API key: known prefix, matching hash (compared
    /// in constant time), not expired at <paramref name="now"/>. A valid key's last-seen time is updated.
    /// </summary>
    public bool ValidateApiKey(string presentedKey, DateTimeOffset now)
    {
        if (!ApiKeySecrets.TryParse(presentedKey, out var prefix))
        {
            return false;
        }

        return Locked(() =>
        {
            var key = QuerySingle(ReadApiKey, $"SELECT {ApiKeyColumns} FROM api_keys WHERE prefix = $prefix", ("$prefix", prefix));
            if (key is null || !ApiKeySecrets.Matches(presentedKey, key.Hash) || key.IsExpired(now))
            {
                return false;
            }

            Execute("UPDATE api_keys SET last_seen = $now WHERE id = $id", ("$now", now), ("$id", key.Id));
            return true;
        });
    }

    private static ApiKeyRecord ReadApiKey(SqliteDataReader r) =>
        new(r.GetInt64(0), r.GetString(1), SqlValues.Blob(r, 2), SqlValues.Time(r, 3), SqlValues.TimeOrNull(r, 4), SqlValues.TimeOrNull(r, 5));
}
