namespace Mesh.Control.Store;

/// <summary>Base of every error the store raises on purpose; anything else is a bug or an I/O failure.</summary>
public abstract class StoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A write refused because it would break a uniqueness or ownership rule. <see cref="Field"/> names
/// the column at fault in words ("given name", "machine key", …) so the admin layer can answer 409 as is.
/// </summary>
public sealed class StoreConflictException(string entity, string field, string message, Exception? inner = null)
    : StoreException(message, inner)
{
    /// <summary>"user", "node", "pre-auth key", "route", "API key".</summary>
    public string Entity { get; } = entity;

    public string Field { get; } = field;
}

/// <summary>A targeted update or a reference named a row that does not exist.</summary>
public sealed class StoreNotFoundException(string entity, string message) : StoreException(message)
{
    public string Entity { get; } = entity;
}

/// <summary>
/// The database cannot be used by this build: written by a newer version (its schema has migrations
/// this build does not know), or a migration failed (the step's transaction was rolled back).
/// </summary>
public sealed class StoreSchemaException(string message, Exception? inner = null) : StoreException(message, inner);
