using System.CommandLine;
using System.Text.Json;
using Mesh.Control.Admin;

namespace Mesh.Operator.Cli;

/// <summary>
/// What every admin verb shares: the options that say how to reach the coordinator
/// (<c>--socket</c>, <c>--server</c>, <c>--api-key</c>) and how to print (<c>-o table|json</c>), and
/// the run loop that opens an <see cref="AdminClient"/>, calls the verb, and turns every failure
/// into one line on stderr and exit code 1.
///
/// Where the coordinator is, first match wins: <c>--server</c>, then <c>$MESH_SERVER</c> (both
/// need <c>--api-key</c> or <c>$MESH_API_KEY</c>); else the unix socket <c>--socket</c>, then
/// <c>$MESH_SOCKET</c>, then <see cref="DefaultSocket"/> (beside the default database
/// <c>./mesh-data/mesh.db</c>).
/// </summary>
internal sealed class AdminVerb
{
    public const string DefaultSocket = "mesh-data/mesh.sock";

    private const string Hint = "(is `mesh-operator coordinator` running? pass --socket or --server)";

    private readonly Option<string?> _socket = new("--socket")
    {
        Description = $"The coordinator's admin socket [default: $MESH_SOCKET or {DefaultSocket}]",
        HelpName = "PATH",
    };

    private readonly Option<string?> _server = new("--server")
    {
        Description = "The coordinator's URL, e.g. http://127.0.0.1:8080, instead of the socket (needs --api-key) [default: $MESH_SERVER]",
        HelpName = "URL",
    };

    private readonly Option<string?> _apiKey = new("--api-key")
    {
        Description = "API key for --server; prefer $MESH_API_KEY, which other users cannot see in the process list [default: $MESH_API_KEY]",
        HelpName = "KEY",
    };

    private readonly Option<string> _output = new Option<string>("--output", "-o")
    {
        Description = "Output format",
        DefaultValueFactory = _ => "table",
    }.AcceptOnlyFromAmong("table", "json");

    private AdminVerb(TimeProvider time) => Time = time;

    public TimeProvider Time { get; }

    /// <summary>Adds the connection and output options to <paramref name="command"/> and runs <paramref name="run"/> as its action.</summary>
    public static void Bind(Command command, TimeProvider time, Func<AdminRun, CancellationToken, Task<int>> run)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(run);
        var verb = new AdminVerb(time);
        command.Add(verb._socket);
        command.Add(verb._server);
        command.Add(verb._apiKey);
        command.Add(verb._output);
        command.SetAction((parseResult, ct) => verb.RunAsync(parseResult, run, ct));
    }

    /// <summary>Resolves where to connect from the flags and the environment; throws <see cref="UsageException"/>.</summary>
    internal static AdminClient Connect(string? socket, string? server, string? apiKey, Func<string, string?> environment)
    {
        server ??= Blank(environment("MESH_SERVER"));
        if (server is not null)
        {
            apiKey ??= Blank(environment("MESH_API_KEY"));
            if (apiKey is null)
            {
                throw new UsageException("--server needs an API key: pass --api-key or set MESH_API_KEY (create one with `mesh-operator apikeys create` on the coordinator's host)");
            }

            if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new UsageException($"--server \"{server}\" is not an http:// or https:// URL");
            }

            return AdminClient.ForServer(uri, apiKey);
        }

        return AdminClient.ForSocket(socket ?? Blank(environment("MESH_SOCKET")) ?? DefaultSocket);
    }

    private async Task<int> RunAsync(ParseResult parseResult, Func<AdminRun, CancellationToken, Task<int>> run, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        try
        {
            using var client = Connect(
                parseResult.GetValue(_socket),
                parseResult.GetValue(_server),
                parseResult.GetValue(_apiKey),
                Environment.GetEnvironmentVariable);
            var json = parseResult.GetValue(_output) == "json";
            return await run(new AdminRun(parseResult, client, output, error, json, Time.GetUtcNow()), cancellationToken);
        }
        catch (AdminUnreachableException e)
        {
            await error.WriteLineAsync($"error: {e.Message} {Hint}");
        }
        catch (AdminException e)
        {
            await error.WriteLineAsync($"error: {e.Message}");
        }
        catch (Exception e) when (e is UsageException or ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"error: {e.Message}");
        }

        return 1;
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

/// <summary>One admin verb's invocation: its parse result, the client, where to print, and "now" for relative times.</summary>
internal sealed record AdminRun(ParseResult Parse, AdminClient Client, TextWriter Output, TextWriter Error, bool Json, DateTimeOffset Now)
{
    public async Task WriteJsonAsync<T>(T value)
    {
        await Output.WriteLineAsync(JsonSerializer.Serialize(value, AdminJson.Indented));
    }

    /// <summary>The result: <paramref name="value"/> as JSON with `-o json`, else <paramref name="line"/> for a person.</summary>
    public Task ReportAsync<T>(T value, string line) => Json ? WriteJsonAsync(value) : Output.WriteLineAsync(line);

    /// <summary>The result: <paramref name="value"/> as JSON with `-o json`, else what <paramref name="human"/> prints.</summary>
    public Task ReportAsync<T>(T value, Func<Task> human) => Json ? WriteJsonAsync(value) : human();

    /// <summary>As above, for output written at once (a table).</summary>
    public Task ReportAsync<T>(T value, Action human)
    {
        if (Json)
        {
            return WriteJsonAsync(value);
        }

        human();
        return Task.CompletedTask;
    }
}

/// <summary>A mistake on the command line the parser cannot see (a bad duration, a missing key): message only, exit 1.</summary>
internal sealed class UsageException(string message) : Exception(message);
