using System.CommandLine;
using System.Globalization;
using Mesh.Control.Admin;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>
/// `mesh-operator preauthkeys create --user U [--reusable] [--ephemeral] [--expiration 24h]
/// [--tags tag:a,tag:b] | list [--user U] | expire KEY` (KEY: the key's id or prefix).
/// </summary>
internal static class PreAuthKeysCommands
{
    public static Command Create(TimeProvider time)
    {
        var keys = new Command("preauthkeys", "Manage pre-auth keys, which register nodes without a login");
        keys.Aliases.Add("preauthkey");

        var create = new Command("create", "Create a pre-auth key; its secret is printed this once only");
        var user = new Option<string>("--user", "-u") { Description = "The user the key registers nodes for", Required = true, HelpName = "USER" };
        var reusable = new Option<bool>("--reusable") { Description = "The key can register more than one node" };
        var ephemeral = new Option<bool>("--ephemeral") { Description = "Nodes registered with it are deleted when they go offline" };
        var expiration = new Option<string?>("--expiration", "-e")
        {
            Description = "How long the key stays valid: a duration like 90m, 24h, 7d, 1h30m (units s, m, h, d, w) [default: the coordinator's]",
            HelpName = "DURATION",
        };
        var tags = new Option<string?>("--tags")
        {
            Description = "Tags the registered nodes get, comma-separated: tag:a,tag:b",
            HelpName = "TAGS",
        };
        create.Add(user);
        create.Add(reusable);
        create.Add(ephemeral);
        create.Add(expiration);
        create.Add(tags);
        AdminVerb.Bind(create, time, async (run, ct) =>
        {
            var request = new PreAuthKeyRequest(
                run.Parse.GetValue(user)!,
                run.Parse.GetValue(reusable),
                run.Parse.GetValue(ephemeral),
                ParseDuration(run.Parse.GetValue(expiration)),
                SplitList(run.Parse.GetValue(tags)));
            var created = await run.Client.CreatePreAuthKeyAsync(request, ct);
            await run.ReportAsync(created, () =>
            {
                Table([created.View], run.Now, created.Key).WriteTo(run.Output);
                return run.Error.WriteLineAsync("The key is shown this once only; store it now.");
            });

            return 0;
        });

        var list = new Command("list", "List pre-auth keys (never their secrets)");
        list.Aliases.Add("ls");
        var listUser = new Option<string?>("--user", "-u") { Description = "Only this user's keys", HelpName = "USER" };
        list.Add(listUser);
        AdminVerb.Bind(list, time, async (run, ct) =>
        {
            var found = await run.Client.ListPreAuthKeysAsync(run.Parse.GetValue(listUser), ct);
            await run.ReportAsync(found, () => Table(found, run.Now, secret: null).WriteTo(run.Output));

            return 0;
        });

        var expire = new Command("expire", "Expire a pre-auth key now");
        var key = new Argument<string>("key") { Description = "The key's id or prefix (as `list` shows)" };
        expire.Add(key);
        AdminVerb.Bind(expire, time, async (run, ct) =>
        {
            var target = run.Parse.GetValue(key)!;
            await run.Client.ExpirePreAuthKeyAsync(target, ct);
            await run.ReportAsync(new { id = target, expired = true }, $"Pre-auth key {target} expired");

            return 0;
        });

        keys.Add(create);
        keys.Add(list);
        keys.Add(expire);
        return keys;
    }

    /// <summary>A duration flag: null when absent; <see cref="UsageException"/> when malformed.</summary>
    internal static TimeSpan? ParseDuration(string? text)
    {
        if (text is null)
        {
            return null;
        }

        return AdminDuration.TryParse(text, out var duration, out var error) ? duration : throw new UsageException($"--expiration: {error}");
    }

    /// <summary>"tag:a,tag:b" (or repeated flags) as a list, blanks dropped.</summary>
    internal static IReadOnlyList<string> SplitList(params string?[]? values) =>
        values is null ? [] : [.. values.SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];

    private static TableWriter Table(IReadOnlyList<PreAuthKeyView> keys, DateTimeOffset now, string? secret)
    {
        string[] headers = ["ID", "Prefix", "User", "Reusable", "Ephemeral", "Used", "Tags", "Expiration", "Created"];
        var table = new TableWriter(secret is null ? headers : [.. headers, "Key"]);
        foreach (var k in keys)
        {
            string?[] cells =
            [
                k.Id.ToString(CultureInfo.InvariantCulture),
                k.Prefix,
                k.User,
                CliFormat.YesNo(k.Reusable),
                CliFormat.YesNo(k.Ephemeral),
                CliFormat.YesNo(k.Used),
                CliFormat.List(k.Tags),
                CliFormat.Expiration(k.Expiration, now),
                CliFormat.Time(k.CreatedAt),
            ];
            table.Row(secret is null ? cells : [.. cells, secret]);
        }

        return table;
    }
}
