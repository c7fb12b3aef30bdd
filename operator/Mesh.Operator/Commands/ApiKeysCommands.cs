using System.CommandLine;
using System.Globalization;
using Mesh.Control.Admin;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>`mesh-operator apikeys create [--expiration 90d] | list | expire PREFIX` (or `--prefix PREFIX`).</summary>
internal static class ApiKeysCommands
{
    public static Command Create(TimeProvider time)
    {
        var keys = new Command("apikeys", "Manage API keys, which authenticate admin requests over HTTP (--server)");
        keys.Aliases.Add("apikey");

        var create = new Command("create", "Create an API key; its secret is printed this once only");
        var expiration = new Option<string?>("--expiration", "-e")
        {
            Description = "How long the key stays valid: a duration like 90d, 24h, 1h30m (units s, m, h, d, w) [default: the coordinator's]",
            HelpName = "DURATION",
        };
        create.Add(expiration);
        AdminVerb.Bind(create, time, async (run, ct) =>
        {
            var created = await run.Client.CreateApiKeyAsync(PreAuthKeysCommands.ParseDuration(run.Parse.GetValue(expiration)), ct);
            await run.ReportAsync(created, () =>
            {
                Table([created.View], run.Now, created.Key).WriteTo(run.Output);
                return run.Error.WriteLineAsync("The key is shown this once only; store it now.");
            });

            return 0;
        });

        var list = new Command("list", "List API keys (never their secrets)");
        list.Aliases.Add("ls");
        AdminVerb.Bind(list, time, async (run, ct) =>
        {
            var found = await run.Client.ListApiKeysAsync(ct);
            await run.ReportAsync(found, () => Table(found, run.Now, secret: null).WriteTo(run.Output));

            return 0;
        });

        var expire = new Command("expire", "Expire an API key now");
        var prefixArgument = new Argument<string?>("prefix") { Description = "The key's prefix (as `list` shows)", Arity = ArgumentArity.ZeroOrOne };
        var prefixOption = new Option<string?>("--prefix", "-p") { Description = "The key's prefix, as an option" };
        expire.Add(prefixArgument);
        expire.Add(prefixOption);
        AdminVerb.Bind(expire, time, async (run, ct) =>
        {
            var prefix = run.Parse.GetValue(prefixArgument) ?? run.Parse.GetValue(prefixOption)
                ?? throw new UsageException("which key? pass its prefix: `mesh-operator apikeys expire PREFIX`");
            await run.Client.ExpireApiKeyAsync(prefix, ct);
            await run.ReportAsync(new { prefix, expired = true }, $"API key {prefix} expired");

            return 0;
        });

        keys.Add(create);
        keys.Add(list);
        keys.Add(expire);
        return keys;
    }

    private static TableWriter Table(IReadOnlyList<ApiKeyView> keys, DateTimeOffset now, string? secret)
    {
        string[] headers = ["ID", "Prefix", "Expiration", "Last seen", "Created"];
        var table = new TableWriter(secret is null ? headers : [.. headers, "Key"]);
        foreach (var k in keys)
        {
            string?[] cells =
            [
                k.Id.ToString(CultureInfo.InvariantCulture),
                k.Prefix,
                CliFormat.Expiration(k.Expiration, now),
                CliFormat.Relative(k.LastSeen, now),
                CliFormat.Time(k.CreatedAt),
            ];
            table.Row(secret is null ? cells : [.. cells, secret]);
        }

        return table;
    }
}
