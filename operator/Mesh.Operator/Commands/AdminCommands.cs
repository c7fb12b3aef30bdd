using System.CommandLine;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>
/// The admin verbs of `mesh-operator` (users, preauthkeys, nodes, routes, policy, apikeys): each a
/// thin command over <see cref="Mesh.Control.Admin.AdminClient"/> that prints a table or, with
/// <c>-o json</c>, JSON. They talk to a running coordinator over its admin API (the local socket by
/// default, or <c>--server URL --api-key KEY</c>); they never open the database themselves.
/// The verbs and flags are the public contract of DESIGN.md.
/// </summary>
internal static class AdminCommands
{
    /// <summary>The `users`, `preauthkeys`, `nodes`, `routes`, `policy` and `apikeys` commands.</summary>
    public static IEnumerable<Command> Create() => Create(TimeProvider.System);

    internal static IEnumerable<Command> Create(TimeProvider time) =>
    [
        UsersCommands.Create(time),
        PreAuthKeysCommands.Create(time),
        NodesCommands.Create(time),
        RoutesCommands.Create(time),
        CreatePolicy(time),
        ApiKeysCommands.Create(time),
    ];

    /// <summary>
    /// The `policy` command with `check`, `set`, `get` and `test`; other subcommands (`compile`,
    /// which works offline) can be added to it. The connection options are on each of these four
    /// subcommands, not on `policy` itself, so an added subcommand does not inherit them.
    /// </summary>
    public static Command CreatePolicy() => CreatePolicy(TimeProvider.System);

    internal static Command CreatePolicy(TimeProvider time) => PolicyCommands.Create(time);
}
