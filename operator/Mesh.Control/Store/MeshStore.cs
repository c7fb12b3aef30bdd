using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

/// <summary>
/// The coordinator's durable state in one SQLite file (default <c>./mesh-data/mesh.db</c>): users,
/// pre-auth keys, nodes, routes, API keys, the policy document and a few settings. A restart of the
/// coordinator loses nothing that a method here has returned from.
/// <para>
/// It is not the coordinator's model: only <c>MeshState</c> calls it (so netmaps follow every change);
/// handlers never do. It keeps no cache and applies no policy (who may tag what, which route is
/// primary, which address a node gets — see <see cref="IpAllocator"/>); it enforces only what the
/// schema can: uniqueness (<see cref="StoreConflictException"/>), ownership, and the atomic use of a
/// single-use pre-auth key.
/// </para>
/// <para>
/// Threading: one connection, every call under one lock, so calls from any thread are serialized and
/// each method is atomic (multi-statement methods run in one <c>BEGIN IMMEDIATE</c> transaction).
/// SQLite writes are serialized anyway, and reads here are small; the state above caches what is hot.
/// Methods are synchronous: the file is local. After <see cref="Dispose"/> every method throws
/// <see cref="ObjectDisposedException"/>.
/// </para>
/// <para>
/// Durability: WAL journal with <c>synchronous=FULL</c>, so a committed change survives a power loss,
/// not only a process crash (a single-use key must not come back to life). The database directory is
/// created 0700 and the file 0600: it holds the coordinator's private key in <c>settings</c>.
/// </para>
/// <para>
/// Schema: versioned steps (<see cref="StoreMigrations"/>) applied on open, each in its own
/// transaction, recorded in <c>schema_migrations</c>. A database with a step this build does not know
/// was written by a newer version and is refused (<see cref="StoreSchemaException"/>) rather than
/// half-understood.
/// </para>
/// </summary>
public sealed partial class MeshStore : IDisposable
{
    /// <summary>How long a statement waits for a lock held by another connection (another process, a backup).</summary>
    public static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private readonly SqliteConnection _connection;
    private readonly TimeProvider _time;
    private SqliteTransaction? _transaction;
    private bool _disposed;

    /// <summary>Opens (creating the file and its directory when missing) and migrates the database at <paramref name="path"/>.</summary>
    public MeshStore(string path, TimeProvider? timeProvider = null)
        : this(path, StoreMigrations.All, timeProvider)
    {
    }

    internal MeshStore(string path, IReadOnlyList<StoreMigration> migrations, TimeProvider? timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(migrations);
        _time = timeProvider ?? TimeProvider.System;
        Path = System.IO.Path.GetFullPath(path);

        var directory = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
            }
            else
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        var created = !File.Exists(Path);
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            // Closing must release the file (tests reopen it; an operator may move it after shutdown).
            Pooling = false,
            DefaultTimeout = (int)BusyTimeout.TotalSeconds,
        }.ToString();
        _connection = new SqliteConnection(connectionString);
        try
        {
            _connection.Open();
            if (created && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            ConfigureLocked();
            SchemaVersion = MigrateLocked(migrations);
        }
        catch (SqliteException ex)
        {
            _connection.Dispose();
            throw new StoreSchemaException($"cannot open the database {Path}: {ex.Message}", ex);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
    }

    /// <summary>The database file, as a full path.</summary>
    public string Path { get; }

    /// <summary>The highest migration applied (the schema this build runs on).</summary>
    public int SchemaVersion { get; }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _connection.Dispose();
        }
    }

    private void ConfigureLocked()
    {
        var mode = Scalar("PRAGMA journal_mode=WAL") as string;
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            throw new StoreSchemaException($"cannot switch {Path} to WAL mode (journal mode is {mode})");
        }

        Execute("PRAGMA foreign_keys=ON");
        Execute($"PRAGMA busy_timeout={(int)BusyTimeout.TotalMilliseconds}");
        Execute("PRAGMA synchronous=FULL");
    }

    private int MigrateLocked(IReadOnlyList<StoreMigration> migrations)
    {
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
            {
                throw new ArgumentException($"migrations must be numbered 1, 2, 3, … in order; step {i} has version {migrations[i].Version}", nameof(migrations));
            }
        }

        Execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     INTEGER PRIMARY KEY,
                name        TEXT NOT NULL,
                applied_at  TEXT NOT NULL
            )
            """);

        var applied = new Dictionary<int, string>();
        foreach (var (version, name) in Query(r => (r.GetInt32(0), r.GetString(1)), "SELECT version, name FROM schema_migrations"))
        {
            applied[version] = name;
        }

        foreach (var (version, name) in applied)
        {
            if (version > migrations.Count)
            {
                throw new StoreSchemaException(
                    $"the database {Path} has schema version {applied.Keys.Max()}, newer than this build supports ({migrations.Count}); " +
                    "run a newer mesh-operator or restore a backup");
            }

            if (version >= 1 && migrations[version - 1].Name != name)
            {
                throw new StoreSchemaException(
                    $"the database {Path} recorded migration {version} as \"{name}\" but this build has \"{migrations[version - 1].Name}\"; " +
                    "it was written by an incompatible build");
            }
        }

        foreach (var migration in migrations)
        {
            if (applied.ContainsKey(migration.Version))
            {
                continue;
            }

            try
            {
                InTransactionLocked(() =>
                {
                    // Another process may have applied it between our read and our write lock.
                    if (Scalar("SELECT 1 FROM schema_migrations WHERE version = $v", ("$v", migration.Version)) is not null)
                    {
                        return 0;
                    }

                    Execute(migration.Sql);
                    Execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($v, $n, $t)",
                        ("$v", migration.Version), ("$n", migration.Name), ("$t", _time.GetUtcNow()));
                    return 0;
                });
            }
            catch (SqliteException ex)
            {
                throw new StoreSchemaException($"migration {migration.Version} (\"{migration.Name}\") failed and was rolled back: {ex.Message}", ex);
            }
        }

        return migrations.Count;
    }

    /// <summary>Runs <paramref name="body"/> under the lock; throws once disposed.</summary>
    private T Locked<T>(Func<T> body)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return body();
        }
    }

    /// <summary>Runs <paramref name="body"/> in one transaction under the lock: committed when it returns, rolled back when it throws.</summary>
    private T InTransaction<T>(Func<T> body) => Locked(() => InTransactionLocked(body));

    private T InTransactionLocked<T>(Func<T> body)
    {
        if (_transaction is not null)
        {
            return body();
        }

        // Microsoft.Data.Sqlite begins IMMEDIATE unless asked for deferred: the write lock is taken up
        // front, so a read-then-write body cannot fail half-way with SQLITE_BUSY.
        using var transaction = _connection.BeginTransaction(deferred: false);
        _transaction = transaction;
        try
        {
            var result = body();
            transaction.Commit();
            return result;
        }
        finally
        {
            _transaction = null;
        }
    }

    private SqliteCommand Command(string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = _transaction;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, SqlValues.ToDb(value));
        }

        return command;
    }

    private int Execute(string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        using var command = Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    private object? Scalar(string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        using var command = Command(sql, parameters);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    private List<T> Query<T>(Func<SqliteDataReader, T> map, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        using var command = Command(sql, parameters);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(map(reader));
        }

        return rows;
    }

    private T? QuerySingle<T>(Func<SqliteDataReader, T> map, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
        where T : class
    {
        using var command = Command(sql, parameters);
        using var reader = command.ExecuteReader();
        return reader.Read() ? map(reader) : null;
    }

    /// <summary>
    /// Turns a constraint failure into a <see cref="StoreConflictException"/> naming the field (and the
    /// value, when the caller passed it). SQLite names the columns in the message of a UNIQUE failure:
    /// "UNIQUE constraint failed: nodes.given_name".
    /// </summary>
    private static StoreConflictException Conflict(SqliteException ex, string entity, params ReadOnlySpan<(string Column, string? Value)> values)
    {
        const string Marker = "constraint failed: ";
        var message = ex.Message;
        var at = message.IndexOf("UNIQUE " + Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            var what = message.Contains("FOREIGN KEY", StringComparison.Ordinal) ? "reference" : "constraint";
            return new StoreConflictException(entity, what, $"the {entity} breaks a {what} rule: {message}", ex);
        }

        var columns = message[(at + 7 + Marker.Length)..].TrimEnd('\'', '.', ' ').Split(", ");
        var column = columns[^1];
        column = column[(column.IndexOf('.') + 1)..];
        var field = FieldName(column);
        string? value = null;
        foreach (var (name, given) in values)
        {
            if (name == column)
            {
                value = given;
            }
        }

        return new StoreConflictException(
            entity,
            field,
            value is null ? $"a {entity} with this {field} already exists" : $"a {entity} with {field} \"{value}\" already exists",
            ex);
    }

    private static string FieldName(string column) => column switch
    {
        "machine_key" => "machine key",
        "node_key" => "node key",
        "given_name" => "given name",
        "ipv4" => "IPv4 address",
        "ipv6" => "IPv6 address",
        _ => column.Replace('_', ' '),
    };

    private const int SqliteConstraint = 19;
}
