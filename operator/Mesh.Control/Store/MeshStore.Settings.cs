namespace Mesh.Control.Store;

public sealed partial class MeshStore
{
    /// <summary>The policy document set last, or null when none was ever set.</summary>
    public StoredPolicy? GetPolicy() => Locked(() => QuerySingle(
        r => new StoredPolicy(r.GetString(0), SqlValues.Time(r, 1)),
        "SELECT text, updated_at FROM policy WHERE id = 1"));

    /// <summary>Replaces the policy document (validation is the caller's: the store keeps text).</summary>
    public StoredPolicy SetPolicy(string text, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Locked(() => QuerySingle(
            r => new StoredPolicy(r.GetString(0), SqlValues.Time(r, 1)),
            """
            INSERT INTO policy (id, text, updated_at) VALUES (1, $text, $now)
            ON CONFLICT (id) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at
            RETURNING text, updated_at
            """,
            ("$text", text), ("$now", now))!);
    }

    /// <summary>
    /// A small setting (the coordinator's control private key, cookie secrets, …), or null. The file is
    /// readable by its owner only, but settings are stored in clear: keep large or per-node data elsewhere.
    /// </summary>
    public string? GetSetting(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return Locked(() => Scalar("SELECT value FROM settings WHERE key = $key", ("$key", key)) as string);
    }

    public void SetSetting(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        Locked(() => Execute(
            "INSERT INTO settings (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            ("$key", key), ("$value", value)));
    }

    /// <summary>
    /// The setting, or — when missing — the value <paramref name="create"/> makes, stored first
    /// (e.g. the control private key generated on the first start). <paramref name="create"/> runs under the lock.
    /// </summary>
    public string GetOrAddSetting(string key, Func<string> create)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(create);
        return InTransaction(() =>
        {
            if (Scalar("SELECT value FROM settings WHERE key = $key", ("$key", key)) is string existing)
            {
                return existing;
            }

            var value = create();
            ArgumentNullException.ThrowIfNull(value, nameof(create));
            Execute("INSERT INTO settings (key, value) VALUES ($key, $value)", ("$key", key), ("$value", value));
            return value;
        });
    }

    /// <summary>False when the setting was not there.</summary>
    public bool DeleteSetting(string key) => Locked(() => Execute("DELETE FROM settings WHERE key = $key", ("$key", key)) == 1);
}
