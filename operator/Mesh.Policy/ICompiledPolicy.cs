namespace Mesh.Policy;

/// <summary>
/// A policy compiled against one topology: the coordinator holds one behind this interface, replaces it whenever
/// the policy or the node set changes, and asks it per request. Implementations are immutable and thread-safe.
/// </summary>
public interface ICompiledPolicy
{
    /// <summary>Caller-chosen version (e.g. policy revision and topology generation), carried for change detection.</summary>
    long Version { get; }

    /// <summary>
    /// The packet filter the node receives, in Tailscale's FilterRule shape; null when the node accepts nothing
    /// (also for an unknown node).
    /// </summary>
    IReadOnlyList<FilterRule>? FilterFor(string nodeName);

    /// <summary>
    /// Whether <paramref name="a"/> and <paramref name="b"/> appear in each other's netmaps: either may reach the
    /// other, directly or through the other's approved subnet routes, or (for an exit node) to the internet.
    /// </summary>
    bool CanSee(string a, string b);

    /// <summary>The nodes <paramref name="nodeName"/>'s netmap holds, in topology order.</summary>
    IReadOnlyList<string> PeersOf(string nodeName);

    /// <summary>
    /// How the node's <c>via</c> grants steer its routes: the approved subnet routes it must reach through routers with
    /// the via tags (and which routers those are), and the exit nodes it may use. <see cref="ViaRoutes.None"/> when no
    /// via grant steers it (also for an unknown node): then every route is served by its global primary.
    /// </summary>
    ViaRoutes ViaRoutesFor(string nodeName);

    /// <summary>
    /// The node's approved subnet routes that via grants may send traffic to through it (it carries a via tag and the
    /// route overlaps the grant's destination), whether or not it is the route's global primary.
    /// </summary>
    IReadOnlyList<string> ViaServedRoutes(string nodeName);

    /// <summary>The node's advertised routes that <c>autoApprovers</c> approve for it.</summary>
    IReadOnlyList<string> AutoApprovedRoutes(string nodeName);

    /// <summary>Whether <paramref name="tag"/> is defined in the policy's <c>tagOwners</c>.</summary>
    bool DefinesTag(string tag);

    /// <summary>
    /// Whether a node of <paramref name="user"/> (a user name, or null) that carries <paramref name="tags"/> may take
    /// <paramref name="tag"/>: the tag is defined and one of its <c>tagOwners</c> is the user, a group the user is in,
    /// <c>autogroup:member</c> (any user), or one of <paramref name="tags"/>.
    /// </summary>
    bool MayOwnTag(string tag, string? user, IReadOnlyList<string> tags);

    /// <summary>Runs the policy's <c>tests</c> block; the compile already refused a policy whose tests fail.</summary>
    PolicyTestReport RunTests();
}

/// <summary>The outcome of a <c>tests</c> block: one line per failed assertion or malformed test.</summary>
public sealed record PolicyTestReport(int Tests, IReadOnlyList<string> Failures)
{
    public bool Passed => Failures.Count == 0;
}
