namespace Mesh.Policy;

/// <summary>
/// A policy was refused: it does not parse, references something undefined, or its <c>tests</c> block fails.
/// <see cref="Exception.Message"/> names the problem and, where known, where it is
/// (<c>acls[2].dst[0] "foo:80": host "foo" is not defined in "hosts"</c>).
/// </summary>
public sealed class PolicyException : Exception
{
    public PolicyException(string message)
        : base(message)
    {
    }

    public PolicyException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public PolicyException()
    {
    }

    /// <summary>Every problem found (the message holds them all, one per line).</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];
}
