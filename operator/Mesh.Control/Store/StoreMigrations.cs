namespace Mesh.Control.Store;

/// <summary>One schema step: applied once, in its own transaction, and recorded in <c>schema_migrations</c>.</summary>
public sealed record StoreMigration(int Version, string Name, string Sql);

/// <summary>
/// The schema, as an ordered list of numbered steps. Rules for adding one:
/// append only (never edit or renumber a released step; the name is checked on open so an edited
/// history is noticed), one transaction per step, and no <c>PRAGMA foreign_keys</c> inside (it is a
/// no-op in a transaction). A step that rebuilds a table must copy it explicitly
/// (<c>CREATE new; INSERT … SELECT; DROP; ALTER … RENAME</c>) so that foreign keys keep pointing at it.
/// </summary>
/// <remarks>
/// Conventions: times are ISO 8601 UTC text of fixed width (<c>yyyy-MM-ddTHH:mm:ss.fffffffZ</c>),
/// so they sort and compare as text; booleans are 0/1; lists (tags, endpoints) are JSON arrays of
/// strings; keys and hashes of secrets are never stored, only SHA-256 digests (BLOB).
/// </remarks>
public static class StoreMigrations
{
    public static IReadOnlyList<StoreMigration> All { get; } =
    [
        new(1, "initial schema", """
            CREATE TABLE users (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                name          TEXT NOT NULL UNIQUE,
                email         TEXT,
                display_name  TEXT,
                created_at    TEXT NOT NULL
            );

            CREATE TABLE pre_auth_keys (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                prefix      TEXT NOT NULL UNIQUE,
                hash        BLOB NOT NULL,
                reusable    INTEGER NOT NULL,
                ephemeral   INTEGER NOT NULL,
                used        INTEGER NOT NULL DEFAULT 0,
                created_at  TEXT NOT NULL,
                expiration  TEXT,
                tags        TEXT NOT NULL DEFAULT '[]'
            );
            CREATE INDEX pre_auth_keys_user ON pre_auth_keys(user_id);

            CREATE TABLE nodes (
                id                   INTEGER PRIMARY KEY AUTOINCREMENT,
                machine_key          TEXT NOT NULL UNIQUE,
                node_key             TEXT NOT NULL UNIQUE,
                disco_key            TEXT,
                user_id              INTEGER REFERENCES users(id) ON DELETE RESTRICT,
                hostname             TEXT NOT NULL,
                given_name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
                tags                 TEXT NOT NULL DEFAULT '[]',
                ipv4                 TEXT UNIQUE,
                ipv6                 TEXT UNIQUE,
                endpoints            TEXT NOT NULL DEFAULT '[]',
                home_relay           INTEGER,
                last_seen            TEXT,
                expiry               TEXT,
                key_expiry_disabled  INTEGER NOT NULL DEFAULT 0,
                ephemeral            INTEGER NOT NULL DEFAULT 0,
                auth_key_id          INTEGER REFERENCES pre_auth_keys(id) ON DELETE SET NULL,
                hostinfo             TEXT,
                created_at           TEXT NOT NULL
            );
            CREATE INDEX nodes_user ON nodes(user_id);
            CREATE INDEX nodes_auth_key ON nodes(auth_key_id);

            CREATE TABLE routes (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                node_id     INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                prefix      TEXT NOT NULL,
                advertised  INTEGER NOT NULL,
                enabled     INTEGER NOT NULL DEFAULT 0,
                is_primary  INTEGER NOT NULL DEFAULT 0,
                UNIQUE (node_id, prefix)
            );

            CREATE TABLE api_keys (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                prefix      TEXT NOT NULL UNIQUE,
                hash        BLOB NOT NULL,
                created_at  TEXT NOT NULL,
                expiration  TEXT,
                last_seen   TEXT
            );

            CREATE TABLE policy (
                id          INTEGER PRIMARY KEY CHECK (id = 1),
                text        TEXT NOT NULL,
                updated_at  TEXT NOT NULL
            );

            CREATE TABLE settings (
                key    TEXT PRIMARY KEY,
                value  TEXT NOT NULL
            );
            """),
    ];
}
