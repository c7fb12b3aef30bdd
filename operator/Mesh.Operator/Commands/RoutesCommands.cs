using System.CommandLine;
using System.Globalization;
using Mesh.Control.Admin;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>`mesh-operator routes list | enable -r ID | disable -r ID`: subnet routes nodes advertise.</summary>
internal static class RoutesCommands
{
    public static Command Create(TimeProvider time)
    {
        var routes = new Command("routes", "Manage the subnet routes and exit routes nodes advertise");
        routes.Aliases.Add("route");

        var list = new Command("list", "List routes");
        list.Aliases.Add("ls");
        AdminVerb.Bind(list, time, async (run, ct) =>
        {
            await WriteAsync(run, await run.Client.ListRoutesAsync(ct), single: false);
            return 0;
        });

        routes.Add(list);
        routes.Add(Toggle("enable", "Approve a route: peers may send its traffic through the node", enabled: true, time));
        routes.Add(Toggle("disable", "Withdraw a route's approval", enabled: false, time));
        return routes;
    }

    private static Command Toggle(string name, string description, bool enabled, TimeProvider time)
    {
        var command = new Command(name, description);
        var id = new Option<long>("--route", "-r") { Description = "The route's id (as `routes list` shows)", Required = true, HelpName = "ID" };
        command.Add(id);
        AdminVerb.Bind(command, time, async (run, ct) =>
        {
            await WriteAsync(run, [await run.Client.SetRouteEnabledAsync(run.Parse.GetValue(id), enabled, ct)], single: true);
            return 0;
        });
        return command;
    }

    private static async Task WriteAsync(AdminRun run, IReadOnlyList<RouteView> routes, bool single)
    {
        if (run.Json)
        {
            await (single ? run.WriteJsonAsync(routes[0]) : run.WriteJsonAsync(routes));
            return;
        }

        var table = new TableWriter("ID", "Node", "Prefix", "Advertised", "Enabled", "Primary");
        foreach (var r in routes)
        {
            table.Row(
                r.Id.ToString(CultureInfo.InvariantCulture),
                r.Node,
                r.Prefix,
                CliFormat.YesNo(r.Advertised),
                CliFormat.YesNo(r.Enabled),
                CliFormat.YesNo(r.IsPrimary));
        }

        table.WriteTo(run.Output);
    }
}
