using System.CommandLine;
using Mesh.Control.Admin;
using Mesh.Operator.Cli;

namespace Mesh.Operator.Commands;

/// <summary>
/// `mesh-operator policy check|set|test --file FILE` and `policy get`, against the running
/// coordinator (which validates against its current users and nodes). `--file -` reads stdin.
/// Exit 1 when the policy is invalid or, for `test`, when one of its tests fails.
/// </summary>
internal static class PolicyCommands
{
    public static Command Create(TimeProvider time)
    {
        var policy = new Command("policy", "Validate, install, print or test the mesh's access policy");

        var check = new Command("check", "Validate a policy file against the coordinator's users and nodes, without installing it");
        var checkFile = FileOption();
        check.Add(checkFile);
        AdminVerb.Bind(check, time, async (run, ct) =>
        {
            var result = await run.Client.CheckPolicyAsync(await ReadAsync(run.Parse.GetValue(checkFile)!, ct), ct);
            if (run.Json)
            {
                await run.WriteJsonAsync(result);
            }
            else if (result.Valid)
            {
                await run.Output.WriteLineAsync("Policy is valid");
            }

            return await ReportErrorsAsync(run, result);
        });

        var set = new Command("set", "Validate a policy file (its tests included) and install it");
        var setFile = FileOption();
        set.Add(setFile);
        AdminVerb.Bind(set, time, async (run, ct) =>
        {
            var installed = await run.Client.SetPolicyAsync(await ReadAsync(run.Parse.GetValue(setFile)!, ct), ct);
            await run.ReportAsync(installed, $"Policy updated ({CliFormat.Time(installed.UpdatedAt, "now")})");

            return 0;
        });

        var get = new Command("get", "Print the policy in force, as it was set");
        AdminVerb.Bind(get, time, async (run, ct) =>
        {
            var current = await run.Client.GetPolicyAsync(ct);
            if (run.Json)
            {
                await run.WriteJsonAsync(current);
            }
            else if (current.Policy.Length == 0)
            {
                await run.Error.WriteLineAsync("No policy is set");
            }
            else
            {
                await run.Output.WriteAsync(current.Policy);
                if (!current.Policy.EndsWith('\n'))
                {
                    await run.Output.WriteLineAsync();
                }
            }

            return 0;
        });

        var test = new Command("test", "Run a policy file's `tests` block against the coordinator's users and nodes");
        var testFile = FileOption();
        test.Add(testFile);
        AdminVerb.Bind(test, time, async (run, ct) =>
        {
            var result = await run.Client.CheckPolicyAsync(await ReadAsync(run.Parse.GetValue(testFile)!, ct), ct);
            if (run.Json)
            {
                await run.WriteJsonAsync(result);
            }
            else if (result.TestResults.Count == 0 && result.Valid)
            {
                await run.Output.WriteLineAsync("The policy has no tests");
            }
            else
            {
                foreach (var line in result.TestResults)
                {
                    await run.Output.WriteLineAsync(line);
                }
            }

            return await ReportErrorsAsync(run, result);
        });

        policy.Add(check);
        policy.Add(set);
        policy.Add(get);
        policy.Add(test);
        return policy;
    }

    private static Option<string> FileOption() =>
        new("--file", "-f") { Description = "The policy file (HuJSON); - reads stdin", Required = true, HelpName = "FILE" };

    private static async Task<string> ReadAsync(string path, CancellationToken cancellationToken)
    {
        if (path == "-")
        {
            return await Console.In.ReadToEndAsync(cancellationToken);
        }

        try
        {
            return await File.ReadAllTextAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UsageException($"policy file {path} not found");
        }
    }

    /// <summary>Prints an invalid policy's errors to stderr (also under -o json, whose stdout is the result); 1 when invalid.</summary>
    private static async Task<int> ReportErrorsAsync(AdminRun run, PolicyCheckResult result)
    {
        if (result.Valid)
        {
            return 0;
        }

        foreach (var error in result.Errors.DefaultIfEmpty("policy is invalid"))
        {
            await run.Error.WriteLineAsync($"error: {error}");
        }

        return 1;
    }
}
