using System.CommandLine;
using Mesh.Control.Admin;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>`mesh-operator users create NAME [--email E] [--display-name D] | list | delete NAME`.</summary>
internal static class UsersCommands
{
    public static Command Create(TimeProvider time)
    {
        var users = new Command("users", "Manage the mesh's users (the owners of nodes and pre-auth keys)");

        var create = new Command("create", "Create a user");
        var name = new Argument<string>("name") { Description = "The user's name" };
        var email = new Option<string?>("--email") { Description = "The user's email address" };
        var displayName = new Option<string?>("--display-name") { Description = "The user's display name" };
        create.Add(name);
        create.Add(email);
        create.Add(displayName);
        AdminVerb.Bind(create, time, async (run, ct) =>
        {
            var user = await run.Client.CreateUserAsync(run.Parse.GetValue(name)!, run.Parse.GetValue(email), run.Parse.GetValue(displayName), ct);
            await WriteAsync(run, [user], single: true);
            return 0;
        });

        var list = new Command("list", "List users");
        list.Aliases.Add("ls");
        AdminVerb.Bind(list, time, async (run, ct) =>
        {
            await WriteAsync(run, await run.Client.ListUsersAsync(ct), single: false);
            return 0;
        });

        var delete = new Command("delete", "Delete a user (refused while the user owns nodes)");
        delete.Aliases.Add("rm");
        var deleteName = new Argument<string>("name") { Description = "The user's name" };
        delete.Add(deleteName);
        AdminVerb.Bind(delete, time, async (run, ct) =>
        {
            var target = run.Parse.GetValue(deleteName)!;
            await run.Client.DeleteUserAsync(target, ct);
            await run.ReportAsync(new { name = target, deleted = true }, $"User {target} deleted");

            return 0;
        });

        users.Add(create);
        users.Add(list);
        users.Add(delete);
        return users;
    }

    private static async Task WriteAsync(AdminRun run, IReadOnlyList<UserView> users, bool single)
    {
        if (run.Json)
        {
            await (single ? run.WriteJsonAsync(users[0]) : run.WriteJsonAsync(users));
            return;
        }

        var table = new TableWriter("ID", "Name", "Display name", "Email", "Created");
        foreach (var u in users)
        {
            table.Row(u.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), u.Name, u.DisplayName, u.Email, CliFormat.Time(u.CreatedAt));
        }

        table.WriteTo(run.Output);
    }
}
