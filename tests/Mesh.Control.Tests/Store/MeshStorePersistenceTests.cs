using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

public sealed class MeshStorePersistenceTests : IDisposable
{
    private readonly TempDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public void Reopen_AfterWritesOfEveryKind_ReturnsTheSameData()
    {
        UserRecord alice;
        NewPreAuthKey key;
        NodeRecord node;
        IReadOnlyList<RouteRecord> routes;
        NewApiKey api;
        using (var store = _db.Open())
        {
            alice = store.CreateUser("alice", "alice@example.com", "Alice", Samples.Now);
            store.CreateUser("bob", null, null, Samples.Now);
            key = store.CreatePreAuthKey(alice.Id, reusable: true, ephemeral: true, ["tag:web", "tag:db"], Samples.Now, Samples.Now.AddHours(1));
            node = store.InsertNode(Samples.Node(1, alice.Id) with { Tags = ["tag:web"], AuthKeyId = key.Record.Id, KeyExpiryDisabled = true });
            routes = store.SetAdvertisedRoutes(node.Id, ["10.1.0.0/16", "fd00::/64"]);
            store.SetRouteEnabled(routes[0].Id, true);
            routes = store.ListRoutes();
            api = store.CreateApiKey(Samples.Now, Samples.Now.AddDays(90));
            store.SetPolicy("""{ "acls": [] } // kept verbatim""", Samples.Now);
            store.SetSetting("control-private-key", "privkey:abc");
        }

        using (var store = _db.Open())
        {
            Assert.Equal(alice, store.GetUser(alice.Id));
            Assert.Equal(["alice", "bob"], store.ListUsers().Select(u => u.Name));

            var storedKey = Assert.Single(store.ListPreAuthKeys());
            AssertSameKey(key.Record, storedKey);
            Assert.Equal(["tag:web", "tag:db"], storedKey.Tags);

            AssertSameNode(node, store.GetNode(node.Id)!);
            Assert.Equal(node.Id, store.GetNodeByMachineKey(node.MachineKey)!.Id);
            Assert.Equal(node.Id, store.GetNodeByNodeKey(node.NodeKey)!.Id);

            Assert.Equal(routes, store.ListRoutes());
            Assert.True(store.ListRoutes()[0].Enabled);

            var storedApi = Assert.Single(store.ListApiKeys());
            Assert.Equal(api.Record.Prefix, storedApi.Prefix);
            Assert.Equal(api.Record.Hash, storedApi.Hash);
            Assert.True(store.ValidateApiKey(api.Key, Samples.Now));

            Assert.Equal(new StoredPolicy("""{ "acls": [] } // kept verbatim""", Samples.Now), store.GetPolicy());
            Assert.Equal("privkey:abc", store.GetSetting("control-private-key"));
        }
    }

    [Fact]
    public void Times_RoundTripToTheTick_AndAreReturnedInUtc()
    {
        var odd = new DateTimeOffset(2031, 12, 31, 23, 59, 59, TimeSpan.FromHours(-7)).AddTicks(1234567);
        using var store = _db.Open();
        var user = store.CreateUser("alice", null, null, odd);

        var read = store.GetUser(user.Id)!.CreatedAt;

        Assert.Equal(odd, read);
        Assert.Equal(odd.UtcTicks, read.UtcTicks);
        Assert.Equal(TimeSpan.Zero, read.Offset);
    }

    [Fact]
    public void Policy_NeverSet_IsNull_ThenLastSetWins()
    {
        using var store = _db.Open();
        Assert.Null(store.GetPolicy());

        store.SetPolicy("first", Samples.Now);
        store.SetPolicy("second", Samples.Now.AddMinutes(1));

        Assert.Equal(new StoredPolicy("second", Samples.Now.AddMinutes(1)), store.GetPolicy());
    }

    [Fact]
    public void Settings_SetGetOverwriteDelete()
    {
        using var store = _db.Open();
        Assert.Null(store.GetSetting("a"));

        store.SetSetting("a", "1");
        store.SetSetting("a", "2");
        Assert.Equal("2", store.GetSetting("a"));

        Assert.True(store.DeleteSetting("a"));
        Assert.False(store.DeleteSetting("a"));
        Assert.Null(store.GetSetting("a"));
    }

    [Fact]
    public void GetOrAddSetting_Missing_StoresCreatedValueOnce()
    {
        using var store = _db.Open();
        var calls = 0;

        var first = store.GetOrAddSetting("control-key", () => $"key-{++calls}");
        var second = store.GetOrAddSetting("control-key", () => $"key-{++calls}");

        Assert.Equal("key-1", first);
        Assert.Equal("key-1", second);
        Assert.Equal(1, calls);
    }

    internal static void AssertSameKey(PreAuthKeyRecord expected, PreAuthKeyRecord actual)
    {
        Assert.Equal(expected with { Hash = [], Tags = [] }, actual with { Hash = [], Tags = [] });
        Assert.Equal(expected.Hash, actual.Hash);
        Assert.Equal(expected.Tags, actual.Tags);
    }

    internal static void AssertSameNode(NodeRecord expected, NodeRecord actual)
    {
        Assert.Equal(expected with { Tags = [], Endpoints = [] }, actual with { Tags = [], Endpoints = [] });
        Assert.Equal(expected.Tags, actual.Tags);
        Assert.Equal(expected.Endpoints, actual.Endpoints);
    }
}
