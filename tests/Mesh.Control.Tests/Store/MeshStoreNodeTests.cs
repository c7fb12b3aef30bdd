using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

public sealed class MeshStoreNodeTests : IDisposable
{
    private readonly TempDatabase _db = new();
    private readonly MeshStore _store;
    private readonly UserRecord _alice;

    public MeshStoreNodeTests()
    {
        _store = _db.Open();
        _alice = _store.CreateUser("alice", null, null, Samples.Now);
    }

    public void Dispose()
    {
        _store.Dispose();
        _db.Dispose();
    }

    [Fact]
    public void CreateUser_NameTaken_ConflictNamesTheField()
    {
        var ex = Assert.Throws<StoreConflictException>(() => _store.CreateUser("alice", null, null, Samples.Now));

        Assert.Equal("user", ex.Entity);
        Assert.Equal("name", ex.Field);
        Assert.Equal("a user with name \"alice\" already exists", ex.Message);
    }

    [Fact]
    public void Users_GetByIdAndName_DeleteMissingIsFalse()
    {
        Assert.Equal(_alice, _store.GetUserByName("alice"));
        Assert.Null(_store.GetUserByName("nobody"));
        Assert.Null(_store.GetUser(999));
        Assert.False(_store.DeleteUser(999));
    }

    [Fact]
    public void DeleteUser_OwningNodes_RefusedUntilTheyAreGone()
    {
        var node = _store.InsertNode(Samples.Node(1, _alice.Id));

        var ex = Assert.Throws<StoreConflictException>(() => _store.DeleteUser(_alice.Id));
        Assert.Equal("nodes", ex.Field);
        Assert.Contains("alice", ex.Message);

        Assert.True(_store.DeleteNode(node.Id));
        Assert.True(_store.DeleteUser(_alice.Id));
        Assert.Empty(_store.ListUsers());
    }

    [Fact]
    public void InsertNode_AssignsIdAndReturnsStoredRecord()
    {
        var a = _store.InsertNode(Samples.Node(1, _alice.Id));
        var b = _store.InsertNode(Samples.Node(2, userId: null) with { Tags = ["tag:server"] });

        Assert.NotEqual(0, a.Id);
        Assert.NotEqual(a.Id, b.Id);
        MeshStorePersistenceTests.AssertSameNode(Samples.Node(1, _alice.Id) with { Id = a.Id }, a);
        Assert.Equal([a.Id], _store.ListNodes(_alice.Id).Select(n => n.Id));
        Assert.Equal([a.Id, b.Id], _store.ListNodes().Select(n => n.Id));
    }

    public static TheoryData<string, string> UniqueFields() => new()
    {
        { "machine key", "MachineKey" },
        { "node key", "NodeKey" },
        { "given name", "GivenName" },
        { "IPv4 address", "IPv4" },
        { "IPv6 address", "IPv6" },
    };

    [Theory]
    [MemberData(nameof(UniqueFields))]
    public void InsertNode_UniqueFieldTaken_ConflictNamesFieldAndValue(string field, string property)
    {
        var first = _store.InsertNode(Samples.Node(1, _alice.Id));
        var second = Samples.Node(2, _alice.Id);
        second = property switch
        {
            "MachineKey" => second with { MachineKey = first.MachineKey },
            "NodeKey" => second with { NodeKey = first.NodeKey },
            "GivenName" => second with { GivenName = first.GivenName },
            "IPv4" => second with { IPv4 = first.IPv4 },
            _ => second with { IPv6 = first.IPv6 },
        };

        var ex = Assert.Throws<StoreConflictException>(() => _store.InsertNode(second));

        Assert.Equal("node", ex.Entity);
        Assert.Equal(field, ex.Field);
        Assert.StartsWith($"a node with {field} \"", ex.Message);
        Assert.Single(_store.ListNodes());
    }

    [Fact]
    public void InsertNode_GivenNameDiffersOnlyInCase_Conflict()
    {
        _store.InsertNode(Samples.Node(1, _alice.Id) with { GivenName = "web" });

        var ex = Assert.Throws<StoreConflictException>(() => _store.InsertNode(Samples.Node(2, _alice.Id) with { GivenName = "WEB" }));
        Assert.Equal("given name", ex.Field);
    }

    [Fact]
    public void InsertNode_SameAddressSpelledDifferently_Conflict()
    {
        var first = _store.InsertNode(Samples.Node(1, _alice.Id, ipv6: "fd7a:115c:a1e0:0:0:0:0:1"));
        Assert.Equal("fd7a:115c:a1e0::1", first.IPv6);

        var ex = Assert.Throws<StoreConflictException>(() => _store.InsertNode(Samples.Node(2, _alice.Id, ipv6: "FD7A:115C:A1E0::0001")));
        Assert.Equal("IPv6 address", ex.Field);
    }

    [Theory]
    [InlineData("100.64.0.300", null)]
    [InlineData("fd7a::1", null)]
    [InlineData(null, "100.64.0.1")]
    public void InsertNode_AddressOfWrongFamilyOrInvalid_Rejected(string? ipv4, string? ipv6)
    {
        Assert.Throws<ArgumentException>(() => _store.InsertNode(Samples.Node(1, _alice.Id) with { IPv4 = ipv4, IPv6 = ipv6 }));
    }

    [Fact]
    public void InsertNode_WithoutAddresses_AllowedManyTimes()
    {
        _store.InsertNode(Samples.Node(1, _alice.Id) with { IPv4 = null, IPv6 = null });
        _store.InsertNode(Samples.Node(2, _alice.Id) with { IPv4 = null, IPv6 = null });

        Assert.Equal(2, _store.ListNodes().Count);
    }

    [Fact]
    public void InsertNode_MissingUserOrKey_NotFound()
    {
        Assert.Equal("user", Assert.Throws<StoreNotFoundException>(() => _store.InsertNode(Samples.Node(1, 999))).Entity);
        Assert.Equal("pre-auth key", Assert.Throws<StoreNotFoundException>(() => _store.InsertNode(Samples.Node(1, _alice.Id) with { AuthKeyId = 999 })).Entity);
    }

    [Fact]
    public void TargetedUpdates_ChangeOnlyTheirFields()
    {
        var node = _store.InsertNode(Samples.Node(1, _alice.Id));
        var later = Samples.Now.AddMinutes(3);

        var updated = _store.UpdateNodeKey(node.Id, "nodekey:new", later.AddDays(90));
        Assert.Equal(node with { NodeKey = "nodekey:new", Expiry = later.AddDays(90), Tags = updated.Tags, Endpoints = updated.Endpoints }, updated);

        updated = _store.UpdateNodeEndpoints(node.Id, "discokey:new", ["198.18.0.9:41641", "[2001:db8::1]:41641"], 1, later);
        Assert.Equal(["198.18.0.9:41641", "[2001:db8::1]:41641"], updated.Endpoints);
        Assert.Equal("discokey:new", updated.DiscoKey);
        Assert.Equal(1, updated.HomeRelay);
        Assert.Equal(later, updated.LastSeen);

        Assert.Equal(later.AddHours(1), _store.SetNodeLastSeen(node.Id, later.AddHours(1)).LastSeen);
        Assert.Equal(["tag:a", "tag:b"], _store.SetNodeTags(node.Id, ["tag:a", "tag:b"]).Tags);
        Assert.Equal("renamed", _store.RenameNode(node.Id, "renamed").GivenName);
        Assert.Null(_store.SetNodeExpiry(node.Id, null).Expiry);
        updated = _store.UpdateNodeHostinfo(node.Id, "new-host", """{"OS":"windows"}""");
        Assert.Equal("new-host", updated.Hostname);
        Assert.Equal("renamed", updated.GivenName);

        var stored = _store.GetNode(node.Id)!;
        Assert.Equal(node.MachineKey, stored.MachineKey);
        Assert.Equal(node.IPv4, stored.IPv4);
        Assert.Equal(node.CreatedAt, stored.CreatedAt);
        Assert.Equal(["tag:a", "tag:b"], stored.Tags);
    }

    [Fact]
    public void TargetedUpdates_Conflicts_NameTheField()
    {
        _store.InsertNode(Samples.Node(1, _alice.Id));
        var node = _store.InsertNode(Samples.Node(2, _alice.Id));

        var rename = Assert.Throws<StoreConflictException>(() => _store.RenameNode(node.Id, "NODE-1"));
        Assert.Equal("a node with given name \"NODE-1\" already exists", rename.Message);
        Assert.Equal("node key", Assert.Throws<StoreConflictException>(() => _store.UpdateNodeKey(node.Id, Samples.Node(1, null).NodeKey, null)).Field);
        Assert.Equal("node-2", _store.GetNode(node.Id)!.GivenName);
    }

    [Fact]
    public void Updates_MissingNode_NotFound()
    {
        Assert.Throws<StoreNotFoundException>(() => _store.RenameNode(999, "x"));
        Assert.Throws<StoreNotFoundException>(() => _store.UpdateNode(Samples.Node(1, _alice.Id) with { Id = 999 }));
        Assert.False(_store.DeleteNode(999));
    }

    [Fact]
    public void UpdateNode_WholeRecord_ReplacesAllButCreationTime()
    {
        var node = _store.InsertNode(Samples.Node(1, _alice.Id));
        var changed = Samples.Node(7, userId: null) with
        {
            Id = node.Id,
            Tags = ["tag:x"],
            Ephemeral = true,
            KeyExpiryDisabled = true,
            HomeRelay = null,
            HostinfoJson = null,
            CreatedAt = Samples.Now.AddYears(1),
        };

        var updated = _store.UpdateNode(changed);

        MeshStorePersistenceTests.AssertSameNode(changed with { CreatedAt = node.CreatedAt }, updated);
    }

    [Fact]
    public void SetAdvertisedRoutes_AddsKeepsApprovalAndDropsUnapproved()
    {
        var node = _store.InsertNode(Samples.Node(1, _alice.Id));
        var routes = _store.SetAdvertisedRoutes(node.Id, ["10.1.0.0/16", "10.2.0.0/16", "0.0.0.0/0"]);
        Assert.All(routes, r => Assert.True(r.Advertised && !r.Enabled && !r.IsPrimary));
        var ten1 = routes.Single(r => r.Prefix == "10.1.0.0/16");
        _store.SetRouteEnabled(ten1.Id, true);
        _store.SetRoutePrimary(ten1.Id, true);

        routes = _store.SetAdvertisedRoutes(node.Id, ["10.2.0.0/16", "fd00:0::/64"]);

        Assert.Equal(["10.1.0.0/16", "10.2.0.0/16", "fd00::/64"], routes.Select(r => r.Prefix).Order(StringComparer.Ordinal));
        Assert.Equal(new RouteRecord(ten1.Id, node.Id, "10.1.0.0/16", Advertised: false, Enabled: true, IsPrimary: false), routes.Single(r => r.Id == ten1.Id));

        routes = _store.SetAdvertisedRoutes(node.Id, ["10.1.0.0/16"]);
        Assert.Equal(new RouteRecord(ten1.Id, node.Id, "10.1.0.0/16", Advertised: true, Enabled: true, IsPrimary: false), Assert.Single(routes));
    }

    [Fact]
    public void SetAdvertisedRoutes_HostBitsOrGarbage_Rejected()
    {
        var node = _store.InsertNode(Samples.Node(1, _alice.Id));

        Assert.Throws<ArgumentException>(() => _store.SetAdvertisedRoutes(node.Id, ["10.1.2.3/16"]));
        Assert.Throws<ArgumentException>(() => _store.SetAdvertisedRoutes(node.Id, ["not a prefix"]));
        Assert.Throws<StoreNotFoundException>(() => _store.SetAdvertisedRoutes(999, ["10.0.0.0/8"]));
    }

    [Fact]
    public void SetRouteEnabled_DisablingClearsPrimary_MissingRouteNotFound()
    {
        var node = _store.InsertNode(Samples.Node(1, _alice.Id));
        var route = _store.SetAdvertisedRoutes(node.Id, ["10.1.0.0/16"])[0];

        Assert.True(_store.SetRouteEnabled(route.Id, true).Enabled);
        Assert.True(_store.SetRoutePrimary(route.Id, true).IsPrimary);
        var disabled = _store.SetRouteEnabled(route.Id, false);

        Assert.False(disabled.Enabled);
        Assert.False(disabled.IsPrimary);
        Assert.Equal(disabled, _store.GetRoute(route.Id));
        Assert.Throws<StoreNotFoundException>(() => _store.SetRouteEnabled(999, true));
    }

    [Fact]
    public void DeleteNode_DeletesItsRoutes()
    {
        var a = _store.InsertNode(Samples.Node(1, _alice.Id));
        var b = _store.InsertNode(Samples.Node(2, _alice.Id));
        _store.SetAdvertisedRoutes(a.Id, ["10.1.0.0/16"]);
        var kept = _store.SetAdvertisedRoutes(b.Id, ["10.1.0.0/16"]);

        Assert.True(_store.DeleteNode(a.Id));

        Assert.Equal(kept, _store.ListRoutes());
        Assert.Empty(_store.ListRoutes(a.Id));
    }

    [Fact]
    public void Nodes_ManyInserts_ListedInOrder()
    {
        for (var i = 1; i <= 200; i++)
        {
            _store.InsertNode(Samples.Node(i, _alice.Id, ipv4: $"100.64.{i / 256}.{i % 256}"));
        }

        Assert.Equal(Enumerable.Range(1, 200).Select(i => $"node-{i}"), _store.ListNodes().Select(n => n.GivenName));
    }

    [Fact]
    public void ManyThreads_MixedWritesAndReads_AllLand()
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            try
            {
                for (var i = 0; i < 50; i++)
                {
                    var n = (t * 50) + i + 1;
                    var node = _store.InsertNode(Samples.Node(n, _alice.Id, ipv4: $"100.64.{n / 256}.{n % 256}"));
                    _store.SetAdvertisedRoutes(node.Id, [$"10.{t}.{i}.0/24"]);
                    _store.UpdateNodeEndpoints(node.Id, null, ["198.18.0.1:41641"], 999, Samples.Now);
                    _store.ListNodes(_alice.Id);
                }
            }
            catch (Exception ex)
            {
                failures.Enqueue(ex);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Empty(failures);
        Assert.Equal(400, _store.ListNodes().Count);
        Assert.Equal(400, _store.ListRoutes().Count);
    }
}
