using System.CommandLine;
using System.Globalization;
using Mesh.Control.Admin;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>
/// `mesh-operator nodes list [--user U] | tag -i ID -t tag:x | expire -i ID | rename -i ID NAME |
/// delete -i ID`.
/// </summary>
internal static class NodesCommands
{
    public static Command Create(TimeProvider time)
    {
        var nodes = new Command("nodes", "Manage the mesh's nodes");
        nodes.Aliases.Add("node");

        var list = new Command("list", "List nodes");
        list.Aliases.Add("ls");
        var user = new Option<string?>("--user", "-u") { Description = "Only this user's nodes", HelpName = "USER" };
        list.Add(user);
        AdminVerb.Bind(list, time, async (run, ct) =>
        {
            await WriteAsync(run, await run.Client.ListNodesAsync(run.Parse.GetValue(user), ct), single: false);
            return 0;
        });

        var tag = new Command("tag", "Set a node's tags, replacing the ones it has (-t '' clears them)");
        var tagId = Identifier();
        var tags = new Option<string[]>("--tags", "-t")
        {
            Description = "Tags, repeated or comma-separated: -t tag:a -t tag:b, or -t tag:a,tag:b",
            Required = true,
            HelpName = "TAG",
        };
        tag.Add(tagId);
        tag.Add(tags);
        AdminVerb.Bind(tag, time, async (run, ct) =>
        {
            var node = await run.Client.SetNodeTagsAsync(run.Parse.GetValue(tagId), PreAuthKeysCommands.SplitList(run.Parse.GetValue(tags)), ct);
            await WriteAsync(run, [node], single: true);
            return 0;
        });

        var expire = new Command("expire", "Expire a node's key now; it must log in again");
        var expireId = Identifier();
        expire.Add(expireId);
        AdminVerb.Bind(expire, time, async (run, ct) =>
        {
            await WriteAsync(run, [await run.Client.ExpireNodeAsync(run.Parse.GetValue(expireId), null, ct)], single: true);
            return 0;
        });

        var rename = new Command("rename", "Rename a node (its MagicDNS name)");
        var renameId = Identifier();
        var newName = new Argument<string>("name") { Description = "The new name" };
        rename.Add(renameId);
        rename.Add(newName);
        AdminVerb.Bind(rename, time, async (run, ct) =>
        {
            await WriteAsync(run, [await run.Client.RenameNodeAsync(run.Parse.GetValue(renameId), run.Parse.GetValue(newName)!, ct)], single: true);
            return 0;
        });

        var delete = new Command("delete", "Delete a node");
        delete.Aliases.Add("rm");
        var deleteId = Identifier();
        delete.Add(deleteId);
        AdminVerb.Bind(delete, time, async (run, ct) =>
        {
            var id = run.Parse.GetValue(deleteId);
            await run.Client.DeleteNodeAsync(id, ct);
            await run.ReportAsync(new { id, deleted = true }, $"Node {id} deleted");

            return 0;
        });

        nodes.Add(list);
        nodes.Add(tag);
        nodes.Add(expire);
        nodes.Add(rename);
        nodes.Add(delete);
        return nodes;
    }

    private static Option<long> Identifier() =>
        new("--identifier", "-i") { Description = "The node's id (as `nodes list` shows)", Required = true, HelpName = "ID" };

    private static async Task WriteAsync(AdminRun run, IReadOnlyList<NodeView> nodes, bool single)
    {
        if (run.Json)
        {
            await (single ? run.WriteJsonAsync(nodes[0]) : run.WriteJsonAsync(nodes));
            return;
        }

        var table = new TableWriter("ID", "Name", "Hostname", "User", "IP addresses", "Tags", "Ephemeral", "Connected", "Last seen", "Expiration");
        foreach (var n in nodes)
        {
            table.Row(
                n.Id.ToString(CultureInfo.InvariantCulture),
                n.Name,
                n.Hostname,
                n.User ?? "",
                CliFormat.List(n.IpAddresses),
                CliFormat.List(n.Tags),
                CliFormat.YesNo(n.Ephemeral),
                n.Online ? "online" : "offline",
                n.Online ? "now" : CliFormat.Relative(n.LastSeen, run.Now),
                n.Expired ? "expired" : CliFormat.Expiration(n.Expiry, run.Now));
        }

        table.WriteTo(run.Output);
    }
}
