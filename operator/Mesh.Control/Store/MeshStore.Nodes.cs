using System.Net;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;

namespace Mesh.Control.Store;

public sealed partial class MeshStore
{
    private const string NodeColumns =
        "id, machine_key, node_key, disco_key, user_id, hostname, given_name, tags, ipv4, ipv6, endpoints, " +
        "home_relay, last_seen, expiry, key_expiry_disabled, ephemeral, auth_key_id, hostinfo, created_at";

    /// <summary>
    /// Adds a node (its <see cref="NodeRecord.Id"/> is ignored and assigned) and returns it as stored.
    /// Addresses are stored in canonical form. <see cref="StoreConflictException"/> names the field when
    /// the machine key, node key, given name (case-insensitive), IPv4 or IPv6 address is taken;
    /// <see cref="StoreNotFoundException"/> when the user or pre-auth key it refers to does not exist.
    /// </summary>
    public NodeRecord InsertNode(NodeRecord node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return InTransaction(() => InsertNodeLocked(node));
    }

    /// <summary>Replaces every field of node <see cref="NodeRecord.Id"/> but its creation time; same errors as <see cref="InsertNode"/>.</summary>
    public NodeRecord UpdateNode(NodeRecord node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var n = Normalize(node);
        return InTransaction(() =>
        {
            CheckNodeReferencesLocked(n);
            return UpdateNodeLocked(
                n,
                """
                machine_key = $machine, node_key = $nodekey, disco_key = $disco, user_id = $user, hostname = $hostname,
                given_name = $given, tags = $tags, ipv4 = $ipv4, ipv6 = $ipv6, endpoints = $endpoints, home_relay = $relay,
                last_seen = $seen, expiry = $expiry, key_expiry_disabled = $noexpiry, ephemeral = $ephemeral,
                auth_key_id = $authkey, hostinfo = $hostinfo
                """,
                NodeParameters(n));
        });
    }

    /// <summary>A node rotated its node key (re-login); <paramref name="expiry"/> is the new key's expiry.</summary>
    public NodeRecord UpdateNodeKey(long id, string nodeKey, DateTimeOffset? expiry)
    {
        ArgumentException.ThrowIfNullOrEmpty(nodeKey);
        return Locked(() => UpdateNodeLocked(
            NodeRecordKey(id, nodeKey: nodeKey), "node_key = $nodekey, expiry = $expiry", ("$nodekey", nodeKey), ("$expiry", expiry)));
    }

    /// <summary>What a node reports on each map request: its disco key, endpoints, home relay, and that it was seen.</summary>
    public NodeRecord UpdateNodeEndpoints(long id, string? discoKey, IReadOnlyList<string> endpoints, int? homeRelay, DateTimeOffset lastSeen)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var list = endpoints.ToArray();
        return Locked(() => UpdateNodeLocked(
            NodeRecordKey(id),
            "disco_key = $disco, endpoints = $endpoints, home_relay = $relay, last_seen = $seen",
            ("$disco", discoKey), ("$endpoints", list), ("$relay", homeRelay), ("$seen", lastSeen)));
    }

    /// <summary>The host name and host info a node reports (the given name is not changed).</summary>
    public NodeRecord UpdateNodeHostinfo(long id, string hostname, string? hostinfoJson)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostname);
        return Locked(() => UpdateNodeLocked(
            NodeRecordKey(id), "hostname = $hostname, hostinfo = $hostinfo", ("$hostname", hostname), ("$hostinfo", hostinfoJson)));
    }

    public NodeRecord SetNodeLastSeen(long id, DateTimeOffset lastSeen) =>
        Locked(() => UpdateNodeLocked(NodeRecordKey(id), "last_seen = $seen", ("$seen", lastSeen)));

    /// <summary>
    /// Records when many nodes were last seen, in one transaction (one sync to disk, however many
    /// nodes). A time not later than the stored one, or a node that no longer exists, is skipped.
    /// Returns how many nodes were updated.
    /// </summary>
    public int SetNodesLastSeen(IReadOnlyCollection<(long Id, DateTimeOffset LastSeen)> seen)
    {
        ArgumentNullException.ThrowIfNull(seen);
        if (seen.Count == 0)
        {
            return 0;
        }

        return InTransaction(() =>
        {
            var updated = 0;
            foreach (var (id, lastSeen) in seen)
            {
                updated += Execute(
                    "UPDATE nodes SET last_seen = $seen WHERE id = $id AND (last_seen IS NULL OR last_seen < $seen)",
                    ("$seen", lastSeen), ("$id", id));
            }

            return updated;
        });
    }

    /// <summary>Replaces the node's tags (validation against the policy is the caller's).</summary>
    public NodeRecord SetNodeTags(long id, IReadOnlyList<string> tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        var list = tags.ToArray();
        return Locked(() => UpdateNodeLocked(NodeRecordKey(id), "tags = $tags", ("$tags", list)));
    }

    /// <summary>Renames the node (its MagicDNS name); <see cref="StoreConflictException"/> (field "given name") when another node has it, in any case.</summary>
    public NodeRecord RenameNode(long id, string givenName)
    {
        ArgumentException.ThrowIfNullOrEmpty(givenName);
        return Locked(() => UpdateNodeLocked(NodeRecordKey(id, givenName: givenName), "given_name = $given", ("$given", givenName)));
    }

    /// <summary>Sets when the node's key expires (null: never, by the mesh's default).</summary>
    public NodeRecord SetNodeExpiry(long id, DateTimeOffset? expiry) =>
        Locked(() => UpdateNodeLocked(NodeRecordKey(id), "expiry = $expiry", ("$expiry", expiry)));

    public NodeRecord? GetNode(long id) =>
        Locked(() => QuerySingle(ReadNode, $"SELECT {NodeColumns} FROM nodes WHERE id = $id", ("$id", id)));

    public NodeRecord? GetNodeByMachineKey(string machineKey) =>
        Locked(() => QuerySingle(ReadNode, $"SELECT {NodeColumns} FROM nodes WHERE machine_key = $key", ("$key", machineKey)));

    public NodeRecord? GetNodeByNodeKey(string nodeKey) =>
        Locked(() => QuerySingle(ReadNode, $"SELECT {NodeColumns} FROM nodes WHERE node_key = $key", ("$key", nodeKey)));

    /// <summary>All nodes (or one user's), by id.</summary>
    public IReadOnlyList<NodeRecord> ListNodes(long? userId = null) => Locked(() => userId is { } user
        ? Query(ReadNode, $"SELECT {NodeColumns} FROM nodes WHERE user_id = $user ORDER BY id", ("$user", user))
        : Query(ReadNode, $"SELECT {NodeColumns} FROM nodes ORDER BY id"));

    /// <summary>Deletes a node and its routes. False when there is no such node.</summary>
    public bool DeleteNode(long id) => Locked(() => Execute("DELETE FROM nodes WHERE id = $id", ("$id", id)) == 1);

    private NodeRecord InsertNodeLocked(NodeRecord node)
    {
        var n = Normalize(node);
        CheckNodeReferencesLocked(n);
        try
        {
            return QuerySingle(
                ReadNode,
                $"""
                INSERT INTO nodes (machine_key, node_key, disco_key, user_id, hostname, given_name, tags, ipv4, ipv6, endpoints,
                    home_relay, last_seen, expiry, key_expiry_disabled, ephemeral, auth_key_id, hostinfo, created_at)
                VALUES ($machine, $nodekey, $disco, $user, $hostname, $given, $tags, $ipv4, $ipv6, $endpoints,
                    $relay, $seen, $expiry, $noexpiry, $ephemeral, $authkey, $hostinfo, $created)
                RETURNING {NodeColumns}
                """,
                NodeParameters(n))!;
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
        {
            throw Conflict(ex, "node", NodeConflictValues(n));
        }
    }

    private NodeRecord UpdateNodeLocked(NodeRecord node, string assignments, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var all = new (string, object?)[parameters.Length + 1];
        parameters.CopyTo(all);
        all[^1] = ("$id", node.Id);
        try
        {
            return QuerySingle(ReadNode, $"UPDATE nodes SET {assignments} WHERE id = $id RETURNING {NodeColumns}", all)
                ?? throw new StoreNotFoundException("node", $"node {node.Id} does not exist");
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
        {
            throw Conflict(ex, "node", NodeConflictValues(node));
        }
    }

    private void CheckNodeReferencesLocked(NodeRecord node)
    {
        if (node.UserId is { } user && Scalar("SELECT 1 FROM users WHERE id = $id", ("$id", user)) is null)
        {
            throw new StoreNotFoundException("user", $"user {user} does not exist");
        }

        if (node.AuthKeyId is { } key && Scalar("SELECT 1 FROM pre_auth_keys WHERE id = $id", ("$id", key)) is null)
        {
            throw new StoreNotFoundException("pre-auth key", $"pre-auth key {key} does not exist");
        }
    }

    /// <summary>Only the fields a targeted update's conflict message may name.</summary>
    private static NodeRecord NodeRecordKey(long id, string nodeKey = "", string givenName = "") =>
        new(id, "", nodeKey, null, null, "", givenName, [], null, null, [], null, null, null, false, false, null, null, default);

    private static (string, string?)[] NodeConflictValues(NodeRecord n) =>
        [("machine_key", n.MachineKey), ("node_key", n.NodeKey), ("given_name", n.GivenName), ("ipv4", n.IPv4), ("ipv6", n.IPv6)];

    private static (string, object?)[] NodeParameters(NodeRecord n) =>
    [
        ("$machine", n.MachineKey), ("$nodekey", n.NodeKey), ("$disco", n.DiscoKey), ("$user", n.UserId), ("$hostname", n.Hostname),
        ("$given", n.GivenName), ("$tags", n.Tags), ("$ipv4", n.IPv4), ("$ipv6", n.IPv6), ("$endpoints", n.Endpoints),
        ("$relay", n.HomeRelay), ("$seen", n.LastSeen), ("$expiry", n.Expiry), ("$noexpiry", n.KeyExpiryDisabled),
        ("$ephemeral", n.Ephemeral), ("$authkey", n.AuthKeyId), ("$hostinfo", n.HostinfoJson), ("$created", n.CreatedAt),
    ];

    /// <summary>Validates what the schema cannot and puts addresses in canonical form, so that uniqueness holds for the address, not its spelling.</summary>
    private static NodeRecord Normalize(NodeRecord node)
    {
        ArgumentException.ThrowIfNullOrEmpty(node.MachineKey, "node.MachineKey");
        ArgumentException.ThrowIfNullOrEmpty(node.NodeKey, "node.NodeKey");
        ArgumentException.ThrowIfNullOrEmpty(node.Hostname, "node.Hostname");
        ArgumentException.ThrowIfNullOrEmpty(node.GivenName, "node.GivenName");
        ArgumentNullException.ThrowIfNull(node.Tags, "node.Tags");
        ArgumentNullException.ThrowIfNull(node.Endpoints, "node.Endpoints");
        return node with
        {
            IPv4 = Canonical(node.IPv4, AddressFamily.InterNetwork, "node.IPv4"),
            IPv6 = Canonical(node.IPv6, AddressFamily.InterNetworkV6, "node.IPv6"),
            Tags = node.Tags.ToArray(),
            Endpoints = node.Endpoints.ToArray(),
        };
    }

    private static string? Canonical(string? address, AddressFamily family, string name)
    {
        if (address is null)
        {
            return null;
        }

        if (!IPAddress.TryParse(address, out var parsed) || parsed.AddressFamily != family || (family == AddressFamily.InterNetworkV6 && parsed.ScopeId != 0))
        {
            throw new ArgumentException($"\"{address}\" is not an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address", name);
        }

        return parsed.ToString();
    }

    private static NodeRecord ReadNode(SqliteDataReader r) => new(
        Id: r.GetInt64(0),
        MachineKey: r.GetString(1),
        NodeKey: r.GetString(2),
        DiscoKey: SqlValues.String(r, 3),
        UserId: SqlValues.Long(r, 4),
        Hostname: r.GetString(5),
        GivenName: r.GetString(6),
        Tags: SqlValues.List(r, 7),
        IPv4: SqlValues.String(r, 8),
        IPv6: SqlValues.String(r, 9),
        Endpoints: SqlValues.List(r, 10),
        HomeRelay: (int?)SqlValues.Long(r, 11),
        LastSeen: SqlValues.TimeOrNull(r, 12),
        Expiry: SqlValues.TimeOrNull(r, 13),
        KeyExpiryDisabled: SqlValues.Bool(r, 14),
        Ephemeral: SqlValues.Bool(r, 15),
        AuthKeyId: SqlValues.Long(r, 16),
        HostinfoJson: SqlValues.String(r, 17),
        CreatedAt: SqlValues.Time(r, 18));
}
