using System.Net;
using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

public sealed partial class MeshStore
{
    private const string RouteColumns = "id, node_id, prefix, advertised, enabled, is_primary";

    /// <summary>All routes (or one node's), by id.</summary>
    public IReadOnlyList<RouteRecord> ListRoutes(long? nodeId = null) => Locked(() => ListRoutesLocked(nodeId));

    public RouteRecord? GetRoute(long id) =>
        Locked(() => QuerySingle(ReadRoute, $"SELECT {RouteColumns} FROM routes WHERE id = $id", ("$id", id)));

    /// <summary>
    /// Records the prefixes a node now advertises and returns its routes. New prefixes are added
    /// advertised and not enabled; ones advertised again keep their approval. A prefix no longer
    /// advertised is deleted if it was never enabled, and kept as not advertised (and not primary) if
    /// it was, so that an admin's approval survives the node restarting or briefly dropping the route.
    /// Prefixes must be canonical CIDR (no host bits); <see cref="StoreNotFoundException"/> when the node does not exist.
    /// </summary>
    public IReadOnlyList<RouteRecord> SetAdvertisedRoutes(long nodeId, IReadOnlyCollection<string> prefixes)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        var canonical = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prefix in prefixes)
        {
            canonical.Add(CanonicalPrefix(prefix));
        }

        return InTransaction(() =>
        {
            if (Scalar("SELECT 1 FROM nodes WHERE id = $id", ("$id", nodeId)) is null)
            {
                throw new StoreNotFoundException("node", $"node {nodeId} does not exist");
            }

            foreach (var route in ListRoutesLocked(nodeId))
            {
                if (canonical.Contains(route.Prefix))
                {
                    continue;
                }

                if (route.Enabled)
                {
                    Execute("UPDATE routes SET advertised = 0, is_primary = 0 WHERE id = $id", ("$id", route.Id));
                }
                else
                {
                    Execute("DELETE FROM routes WHERE id = $id", ("$id", route.Id));
                }
            }

            foreach (var prefix in canonical)
            {
                Execute(
                    """
                    INSERT INTO routes (node_id, prefix, advertised, enabled, is_primary) VALUES ($node, $prefix, 1, 0, 0)
                    ON CONFLICT (node_id, prefix) DO UPDATE SET advertised = 1
                    """,
                    ("$node", nodeId), ("$prefix", prefix));
            }

            return ListRoutesLocked(nodeId);
        });
    }

    /// <summary>Approves or withdraws a route; withdrawing also clears <see cref="RouteRecord.IsPrimary"/>.</summary>
    public RouteRecord SetRouteEnabled(long id, bool enabled) => Locked(() => UpdateRouteLocked(
        id,
        enabled ? "enabled = 1" : "enabled = 0, is_primary = 0"));

    /// <summary>Marks which node serves a route (the state's choice among the nodes advertising it).</summary>
    public RouteRecord SetRoutePrimary(long id, bool isPrimary) => Locked(() => UpdateRouteLocked(
        id,
        isPrimary ? "is_primary = 1" : "is_primary = 0"));

    public bool DeleteRoute(long id) => Locked(() => Execute("DELETE FROM routes WHERE id = $id", ("$id", id)) == 1);

    private List<RouteRecord> ListRoutesLocked(long? nodeId) => nodeId is { } node
        ? Query(ReadRoute, $"SELECT {RouteColumns} FROM routes WHERE node_id = $node ORDER BY id", ("$node", node))
        : Query(ReadRoute, $"SELECT {RouteColumns} FROM routes ORDER BY id");

    private RouteRecord UpdateRouteLocked(long id, string assignments) =>
        QuerySingle(ReadRoute, $"UPDATE routes SET {assignments} WHERE id = $id RETURNING {RouteColumns}", ("$id", id))
        ?? throw new StoreNotFoundException("route", $"route {id} does not exist");

    private static string CanonicalPrefix(string prefix)
    {
        // IPNetwork.TryParse masks host bits away; a prefix with them is a typo we refuse rather than guess at.
        var slash = prefix?.IndexOf('/') ?? -1;
        if (prefix is null || slash < 0 || !IPNetwork.TryParse(prefix, out var network)
            || !IPAddress.TryParse(prefix.AsSpan(0, slash), out var address) || !address.Equals(network.BaseAddress))
        {
            throw new ArgumentException($"\"{prefix}\" is not a canonical CIDR prefix (address/length, no host bits)", nameof(prefix));
        }

        return network.ToString();
    }

    private static RouteRecord ReadRoute(SqliteDataReader r) =>
        new(r.GetInt64(0), r.GetInt64(1), r.GetString(2), SqlValues.Bool(r, 3), SqlValues.Bool(r, 4), SqlValues.Bool(r, 5));
}
