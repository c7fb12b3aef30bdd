using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.Operator.Injection;

/// <summary>The manifests with the sidecar injected, or why they could not be.</summary>
/// <param name="Output">Every document in input order; empty when there are <paramref name="Errors"/>.</param>
/// <param name="Errors">One line per problem, naming the document (number, kind, name).</param>
/// <param name="Warnings">Pods injected with a caveat, or skipped for a reason worth telling.</param>
/// <param name="Injected">How many pod templates got the sidecar.</param>
internal sealed record ManifestResult(string Output, IReadOnlyList<string> Errors, IReadOnlyList<string> Warnings, int Injected);

/// <summary>
/// `mesh-operator inject` without the command line: reads a multi-document YAML stream, finds the
/// pod template of every workload (Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet,
/// ReplicationController, Job, CronJob, and the items of a List), asks the
/// <see cref="SidecarInjector"/> about each, and applies the injector's JSON Patch to the document
/// as it was read. Other kinds, and workloads whose pods are not injected, pass through byte for
/// byte; injected documents are written anew (their comments are lost).
/// </summary>
/// <remarks>
/// A manifest cannot show its namespace's <c>mesh.meshoperator.io/inject=enabled</c> label, so every
/// pod is injected unless it opts out with <c>inject: "false"</c>, as if that label were set. The
/// namespace for a pod's DNS search list is the workload's <c>metadata.namespace</c>, or else
/// <c>defaultNamespace</c>.
/// </remarks>
internal sealed class ManifestInjector(SidecarInjector injector, string? defaultNamespace)
{
    private readonly SidecarInjector _injector = injector;
    private readonly string? _defaultNamespace = defaultNamespace;

    /// <summary>Where a kind keeps its pod template, by API group ("" is the core group).</summary>
    private static readonly Dictionary<(string Group, string Kind), string[]> TemplatePaths = new()
    {
        [("", "Pod")] = [],
        [("", "ReplicationController")] = ["spec", "template"],
        [("apps", "Deployment")] = ["spec", "template"],
        [("apps", "ReplicaSet")] = ["spec", "template"],
        [("apps", "StatefulSet")] = ["spec", "template"],
        [("apps", "DaemonSet")] = ["spec", "template"],
        [("extensions", "Deployment")] = ["spec", "template"],
        [("extensions", "ReplicaSet")] = ["spec", "template"],
        [("extensions", "DaemonSet")] = ["spec", "template"],
        [("batch", "Job")] = ["spec", "template"],
        [("batch", "CronJob")] = ["spec", "jobTemplate", "spec", "template"],
    };

    public ManifestResult Inject(string yaml)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var run = new Run(this);
        var output = new List<string>();
        var number = 0;
        foreach (var chunk in ManifestDocuments.Split(yaml))
        {
            if (chunk.IsBlank)
            {
                continue;
            }

            var root = run.Parse(chunk, ref number, out var label);
            if (root is null)
            {
                output.Add(chunk.Text);
                continue;
            }

            var changed = run.Object(root, label, out var replaced);
            output.Add(changed ? YamlJson.ToYaml(replaced) : chunk.Text);
        }

        return run.Errors.Count > 0
            ? new ManifestResult("", run.Errors, run.Warnings, 0)
            : new ManifestResult(ManifestDocuments.Join(output), [], run.Warnings, run.Injected);
    }

    /// <summary>The state of one pass: messages and counts.</summary>
    private sealed class Run(ManifestInjector owner)
    {
        public List<string> Errors { get; } = [];

        public List<string> Warnings { get; } = [];

        public int Injected { get; private set; }

        /// <summary>The document's object, or null when it has none (comments only) or is broken (an error is recorded).</summary>
        public JsonObject? Parse(ManifestChunk chunk, ref int number, out string label)
        {
            var stream = new YamlStream();
            label = $"document {number + 1}";
            try
            {
                stream.Load(new StringReader(chunk.Text));
            }
            catch (YamlException e)
            {
                number++;
                Errors.Add($"{label}: line {chunk.FirstLine + e.Start.Line - 1}, column {e.Start.Column}: {e.Message}");
                return null;
            }

            if (stream.Documents.Count == 0)
            {
                return null;
            }

            number++;
            if (stream.Documents.Count > 1)
            {
                Errors.Add($"{label} (line {chunk.FirstLine}): holds {stream.Documents.Count} YAML documents; start each with a line that reads ---");
                return null;
            }

            JsonNode? json;
            try
            {
                json = YamlJson.ToJson(stream.Documents[0].RootNode);
            }
            catch (YamlJsonException e)
            {
                Errors.Add($"{label}: line {chunk.FirstLine + e.Start.Line - 1}, column {e.Start.Column}: {e.Message}");
                return null;
            }

            if (json is not JsonObject obj)
            {
                if (json is not null)
                {
                    Errors.Add($"{label} (line {chunk.FirstLine}): is a {Describe(json)}, not a Kubernetes object");
                }

                return null;
            }

            label = Label(label, obj);
            return obj;
        }

        /// <summary>Injects into one object (recursing into a List's items); true with the new object when it changed.</summary>
        public bool Object(JsonObject obj, string label, out JsonObject result)
        {
            result = obj;
            var apiVersion = String(obj, "apiVersion");
            var kind = String(obj, "kind");
            if (apiVersion is null || kind is null)
            {
                Errors.Add($"{label}: needs string fields apiVersion and kind, as every Kubernetes object");
                return false;
            }

            if (kind.EndsWith("List", StringComparison.Ordinal) && obj["items"] is JsonArray items)
            {
                return List(obj, items, label, out result);
            }

            var group = apiVersion.Contains('/', StringComparison.Ordinal) ? apiVersion[..apiVersion.IndexOf('/', StringComparison.Ordinal)] : "";
            if (!TemplatePaths.TryGetValue((group, kind), out var path))
            {
                return false;
            }

            JsonObject parent = obj;
            for (var i = 0; i < path.Length - 1; i++)
            {
                if (parent[path[i]] is not JsonObject child)
                {
                    Errors.Add($"{label}: {string.Join('.', path)} is missing or not a mapping");
                    return false;
                }

                parent = child;
            }

            JsonObject template;
            if (path.Length == 0)
            {
                template = obj;
            }
            else if (parent[path[^1]] is JsonObject found)
            {
                template = found;
            }
            else
            {
                Errors.Add($"{label}: {string.Join('.', path)} is missing or not a mapping");
                return false;
            }

            var where = path.Length == 0 ? "" : string.Join('.', path) + ": ";
            V1PodTemplateSpec pod;
            try
            {
                pod = KubernetesJson.Deserialize<V1PodTemplateSpec>(template);
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or ArgumentException)
            {
                Errors.Add($"{label}: {where}not a pod template: {FirstPart(e.Message)}");
                return false;
            }

            var podNamespace = (obj["metadata"] as JsonObject)?["namespace"] is JsonValue ns && ns.GetValueKind() == JsonValueKind.String ? ns.GetValue<string>() : owner._defaultNamespace;
            var outcome = owner._injector.Inject(pod, new PodContext(podNamespace, NamespaceInjectionEnabled: true));
            var prefix = where.Length > 0 ? $"{label}: {where}" : $"{label}: ";
            switch (outcome.Outcome)
            {
                case InjectionOutcome.Refused:
                    Errors.AddRange(outcome.Messages.Select(m => prefix + m));
                    return false;
                case InjectionOutcome.NotApplicable:
                    Warnings.AddRange(outcome.Messages.Select(m => $"{prefix}not injected: {m}"));
                    return false;
                case not InjectionOutcome.Injected:
                    return false;
            }

            Warnings.AddRange(outcome.Messages.Select(m => prefix + m));
            JsonNode? patched;
            try
            {
                patched = JsonPatch.Apply(template, outcome.Patch);
            }
            catch (JsonPatchException e)
            {
                // The patch was computed from this very template: failing here is a bug, not bad input.
                throw new InvalidOperationException($"{label}: the injection patch does not apply to the manifest: {e.Message}", e);
            }

            Injected++;
            if (path.Length == 0)
            {
                result = (JsonObject)patched!;
            }
            else
            {
                result = (JsonObject)obj.DeepClone();
                var target = result;
                for (var i = 0; i < path.Length - 1; i++)
                {
                    target = (JsonObject)target[path[i]]!;
                }

                target[path[^1]] = patched;
            }

            return true;
        }

        private bool List(JsonObject obj, JsonArray items, string label, out JsonObject result)
        {
            result = obj;
            var copy = (JsonObject)obj.DeepClone();
            var copyItems = (JsonArray)copy["items"]!;
            var changed = false;
            for (var i = 0; i < items.Count; i++)
            {
                var itemLabel = $"{label}, item {i + 1}";
                if (items[i] is not JsonObject item)
                {
                    Errors.Add($"{itemLabel}: is not a Kubernetes object");
                    continue;
                }

                if (Object(item, Label(itemLabel, item), out var replaced))
                {
                    copyItems[i] = replaced.DeepClone();
                    changed = true;
                }
            }

            if (changed)
            {
                result = copy;
            }

            return changed;
        }

        private static string Label(string label, JsonObject obj)
        {
            var kind = String(obj, "kind");
            var metadata = obj["metadata"] as JsonObject;
            var name = metadata is null ? null : String(metadata, "name") ?? (String(metadata, "generateName") is { } g ? g + "*" : null);
            var ns = metadata is null ? null : String(metadata, "namespace");
            var what = string.Join(' ', new[] { kind, ns is null || name is null ? name : $"{ns}/{name}" }.Where(s => s is not null));
            return what.Length == 0 ? label : $"{label} ({what})";
        }

        private static string? String(JsonObject obj, string name) =>
            obj[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

        private static string Describe(JsonNode node) => node switch
        {
            JsonArray => "list",
            _ => $"{node.GetValueKind().ToString().ToLowerInvariant()} scalar",
        };

        /// <summary>System.Text.Json's message without its "| LineNumber: 0 | BytePositionInLine: N." tail (positions in our re-encoded JSON, not the file).</summary>
        private static string FirstPart(string message) => message.Split(" | ", 2)[0];
    }
}
