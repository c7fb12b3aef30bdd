using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

public sealed partial class MeshStore
{
    private const string UserColumns = "id, name, email, display_name, created_at";

    /// <summary>Adds a user; <see cref="StoreConflictException"/> (field "name") when the name is taken.</summary>
    public UserRecord CreateUser(string name, string? email, string? displayName, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return Locked(() =>
        {
            try
            {
                return QuerySingle(
                    ReadUser,
                    $"INSERT INTO users (name, email, display_name, created_at) VALUES ($name, $email, $display, $now) RETURNING {UserColumns}",
                    ("$name", name), ("$email", email), ("$display", displayName), ("$now", now))!;
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
            {
                throw Conflict(ex, "user", ("name", name));
            }
        });
    }

    public UserRecord? GetUser(long id) =>
        Locked(() => QuerySingle(ReadUser, $"SELECT {UserColumns} FROM users WHERE id = $id", ("$id", id)));

    public UserRecord? GetUserByName(string name) =>
        Locked(() => QuerySingle(ReadUser, $"SELECT {UserColumns} FROM users WHERE name = $name", ("$name", name)));

    /// <summary>All users, by id.</summary>
    public IReadOnlyList<UserRecord> ListUsers() =>
        Locked(() => Query(ReadUser, $"SELECT {UserColumns} FROM users ORDER BY id"));

    /// <summary>
    /// Deletes a user and its pre-auth keys (nodes that registered with those keys keep running; their
    /// <see cref="NodeRecord.AuthKeyId"/> becomes null). Refused with <see cref="StoreConflictException"/>
    /// (field "nodes") while the user owns nodes. False when there is no such user.
    /// </summary>
    public bool DeleteUser(long id) => InTransaction(() =>
    {
        var name = Scalar("SELECT name FROM users WHERE id = $id", ("$id", id)) as string;
        if (name is null)
        {
            return false;
        }

        var nodes = (long)Scalar("SELECT count(*) FROM nodes WHERE user_id = $id", ("$id", id))!;
        if (nodes > 0)
        {
            throw new StoreConflictException("user", "nodes", $"user \"{name}\" still owns {nodes} node(s); delete them first");
        }

        return Execute("DELETE FROM users WHERE id = $id", ("$id", id)) == 1;
    });

    private static UserRecord ReadUser(SqliteDataReader r) =>
        new(r.GetInt64(0), r.GetString(1), SqlValues.String(r, 2), SqlValues.String(r, 3), SqlValues.Time(r, 4));
}
