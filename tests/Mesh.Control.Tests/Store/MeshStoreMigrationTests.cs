using Mesh.Control.Store;
using Microsoft.Data.Sqlite;

namespace Mesh.Control.Tests.Store;

public sealed class MeshStoreMigrationTests : IDisposable
{
    private readonly TempDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public void Open_NewPath_CreatesDirectoryFileAndAppliesEveryMigrationOnce()
    {
        using (var store = _db.Open())
        {
            Assert.Equal(StoreMigrations.All.Count, store.SchemaVersion);
            Assert.Equal(_db.Path, store.Path);
        }

        Assert.True(File.Exists(_db.Path));
        Assert.Equal(StoreMigrations.All.Select(m => (long)m.Version), AppliedVersions());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_db.Path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(_db.Path)!));
        }
    }

    [Fact]
    public void Reopen_AlreadyMigrated_AppliesNothingAgain()
    {
        _db.Open().Dispose();
        var first = Rows("SELECT version || ' ' || name || ' ' || applied_at FROM schema_migrations");

        _db.Open().Dispose();
        _db.Open().Dispose();

        Assert.Equal(first, Rows("SELECT version || ' ' || name || ' ' || applied_at FROM schema_migrations"));
    }

    [Fact]
    public void Open_Always_UsesWalJournal()
    {
        _db.Open().Dispose();
        Assert.Equal(["wal"], Rows("PRAGMA journal_mode"));
    }

    [Fact]
    public void Open_LaterMigrationAdded_AppliesOnlyTheNewStep()
    {
        IReadOnlyList<StoreMigration> v1 = [StoreMigrations.All[0]];
        using (var store = new MeshStore(_db.Path, v1, null))
        {
            store.CreateUser("alice", null, null, Samples.Now);
        }

        IReadOnlyList<StoreMigration> v2 = [.. v1, new(2, "user locale", "ALTER TABLE users ADD COLUMN locale TEXT")];
        using (var store = new MeshStore(_db.Path, v2, null))
        {
            Assert.Equal(2, store.SchemaVersion);
            Assert.Equal("alice", Assert.Single(store.ListUsers()).Name);
        }

        Assert.Equal([1L, 2L], AppliedVersions());
    }

    [Fact]
    public void Open_FailingMigration_RollsBackThatStepAndSaysWhich()
    {
        IReadOnlyList<StoreMigration> broken =
        [
            StoreMigrations.All[0],
            new(2, "half done", "CREATE TABLE extra (a INTEGER); INSERT INTO missing VALUES (1);"),
        ];

        var ex = Assert.Throws<StoreSchemaException>(() => new MeshStore(_db.Path, broken, null));
        Assert.Contains("migration 2", ex.Message);
        Assert.Contains("half done", ex.Message);

        Assert.Equal([1L], AppliedVersions());
        Assert.Empty(Rows("SELECT name FROM sqlite_master WHERE name = 'extra'"));
        using var store = _db.Open();
        Assert.Equal(StoreMigrations.All.Count, store.SchemaVersion);
    }

    [Fact]
    public void Open_DatabaseFromNewerVersion_RefusesWithClearError()
    {
        _db.Open().Dispose();
        Execute($"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({StoreMigrations.All.Count + 7}, 'future', 'x')");

        var ex = Assert.Throws<StoreSchemaException>(_db.Open);
        Assert.Contains("newer than this build supports", ex.Message);
        Assert.Contains($"schema version {StoreMigrations.All.Count + 7}", ex.Message);
    }

    [Fact]
    public void Open_EditedMigrationHistory_Refuses()
    {
        _db.Open().Dispose();
        Execute("UPDATE schema_migrations SET name = 'something else' WHERE version = 1");

        var ex = Assert.Throws<StoreSchemaException>(_db.Open);
        Assert.Contains("incompatible build", ex.Message);
    }

    [Fact]
    public void Open_FileIsNotADatabase_RefusesWithPath()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_db.Path)!);
        File.WriteAllText(_db.Path, new string('x', 4096));

        var ex = Assert.Throws<StoreSchemaException>(_db.Open);
        Assert.Contains(_db.Path, ex.Message);
    }

    [Fact]
    public void Migrations_AreNumberedFromOneWithoutGaps()
    {
        Assert.Equal(Enumerable.Range(1, StoreMigrations.All.Count), StoreMigrations.All.Select(m => m.Version));
    }

    [Fact]
    public void Dispose_ThenCall_ThrowsObjectDisposed()
    {
        var store = _db.Open();
        store.Dispose();
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.ListUsers());
    }

    private List<long> AppliedVersions() => Rows("SELECT version FROM schema_migrations ORDER BY version").Select(long.Parse).ToList();

    private List<string> Rows(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_db.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add(Convert.ToString(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture)!);
        }

        return rows;
    }

    private void Execute(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_db.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
