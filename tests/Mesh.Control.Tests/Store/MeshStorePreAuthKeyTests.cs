using System.Text;
using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

public sealed class MeshStorePreAuthKeyTests : IDisposable
{
    private readonly TempDatabase _db = new();
    private readonly MeshStore _store;
    private readonly UserRecord _alice;

    public MeshStorePreAuthKeyTests()
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
    public void Create_ReturnsKeyOfDocumentedShape_StoresPrefixAndHashOnly()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, [], Samples.Now, null);

        Assert.Matches("^mskey-auth-[0-9A-Za-z]{12}-[0-9A-Za-z]{48}$", created.Key);
        Assert.Equal(created.Key.Substring("mskey-auth-".Length, 12), created.Record.Prefix);
        Assert.Equal(PreAuthKeySecrets.Hash(created.Key), created.Record.Hash);
        Assert.DoesNotContain(created.Key, created.ToString());
        Assert.False(created.Record.Used);
    }

    [Fact]
    public void DatabaseFiles_NeverContainTheSecret()
    {
        var keys = Enumerable.Range(0, 5).Select(_ => _store.CreatePreAuthKey(_alice.Id, true, false, [], Samples.Now, null).Key).ToList();
        var api = _store.CreateApiKey(Samples.Now, null).Key;
        Assert.True(_store.TryConsumePreAuthKey(keys[0], Samples.Now, out _, out _));
        Assert.True(_store.ValidateApiKey(api, Samples.Now));

        AssertAbsent(_db.AllFileBytes());
        _store.Dispose();
        AssertAbsent(_db.AllFileBytes());

        void AssertAbsent(byte[] file)
        {
            foreach (var key in keys.Append(api))
            {
                var secret = key[(key.LastIndexOf('-') + 1)..];
                Assert.Equal(-1, file.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)));
                Assert.Equal(-1, file.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret[..16])));
            }

            // The prefix is stored in clear: proof that the search looks at the right bytes.
            Assert.NotEqual(-1, file.AsSpan().IndexOf(Encoding.UTF8.GetBytes(keys[0].Split('-')[2])));
        }
    }

    [Fact]
    public void Consume_SingleUse_SucceedsOnceThenRefusedAsUsed()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, ["tag:ci"], Samples.Now, Samples.Now.AddHours(1));

        Assert.True(_store.TryConsumePreAuthKey(created.Key, Samples.Now, out var key, out var reason));
        Assert.Null(reason);
        Assert.Equal(created.Record.Id, key.Id);
        Assert.True(key.Used);
        Assert.Equal(["tag:ci"], key.Tags);

        Assert.False(_store.TryConsumePreAuthKey(created.Key, Samples.Now, out key, out reason));
        Assert.Null(key);
        Assert.Equal("single-use key already used", reason);
        Assert.True(_store.GetPreAuthKey(created.Record.Id)!.Used);
    }

    [Fact]
    public void Consume_SingleUseFromTenThreadsAtOnce_ExactlyOneSucceeds()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, [], Samples.Now, null);
        var successes = 0;
        var reasons = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var start = new Barrier(10);

        var threads = Enumerable.Range(0, 10).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            if (_store.TryConsumePreAuthKey(created.Key, Samples.Now, out _, out var reason))
            {
                Interlocked.Increment(ref successes);
            }
            else
            {
                reasons.Add(reason);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(1, successes);
        Assert.Equal(Enumerable.Repeat("single-use key already used", 9), reasons);
    }

    [Fact]
    public void Consume_SingleUseFromTwoStoresOnOneFile_ExactlyOneSucceeds()
    {
        // Two processes (say, a coordinator restarted over a lingering one) share only the file:
        // the guarded UPDATE, not the in-process lock, keeps the key single-use.
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, [], Samples.Now, null);
        using var other = _db.Open();
        var successes = 0;
        using var start = new Barrier(10);

        var threads = Enumerable.Range(0, 10).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            if ((i % 2 == 0 ? _store : other).TryConsumePreAuthKey(created.Key, Samples.Now, out _, out _))
            {
                Interlocked.Increment(ref successes);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(1, successes);
    }

    [Fact]
    public void Consume_Reusable_SucceedsEveryTime()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, reusable: true, ephemeral: true, [], Samples.Now, null);

        for (var i = 0; i < 5; i++)
        {
            Assert.True(_store.TryConsumePreAuthKey(created.Key, Samples.Now, out var key, out _));
            Assert.True(key.Reusable);
            Assert.True(key.Ephemeral);
        }

        Assert.True(_store.GetPreAuthKey(created.Record.Id)!.Used);
    }

    [Fact]
    public void Consume_AtOrAfterExpiration_RefusedWithTheTime()
    {
        var expiration = new DateTimeOffset(2025, 6, 1, 13, 0, 0, TimeSpan.Zero);
        var created = _store.CreatePreAuthKey(_alice.Id, true, false, [], Samples.Now, expiration);

        Assert.True(_store.TryConsumePreAuthKey(created.Key, expiration.AddTicks(-1), out _, out _));
        Assert.False(_store.TryConsumePreAuthKey(created.Key, expiration, out _, out var reason));
        Assert.Equal("key expired at 2025-06-01 13:00:00Z", reason);
    }

    [Fact]
    public void Consume_SingleUseExpired_NotMarkedUsed()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, [], Samples.Now, Samples.Now);

        Assert.False(_store.TryConsumePreAuthKey(created.Key, Samples.Now, out _, out var reason));
        Assert.StartsWith("key expired at ", reason);
        Assert.False(_store.GetPreAuthKey(created.Record.Id)!.Used);
    }

    [Fact]
    public void Expire_ThenConsume_Refused()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, true, false, [], Samples.Now, Samples.Now.AddDays(1));

        var expired = _store.ExpirePreAuthKey(created.Record.Id, Samples.Now.AddMinutes(5));
        Assert.Equal(Samples.Now.AddMinutes(5), expired!.Expiration);
        Assert.Equal(Samples.Now.AddMinutes(5), _store.ExpirePreAuthKey(created.Record.Id, Samples.Now.AddMinutes(9))!.Expiration);
        Assert.Null(_store.ExpirePreAuthKey(12345, Samples.Now));

        Assert.False(_store.TryConsumePreAuthKey(created.Key, Samples.Now.AddMinutes(6), out _, out var reason));
        Assert.StartsWith("key expired at", reason);
    }

    [Fact]
    public void Consume_UnknownOrWrongSecretOrMalformed_RefusedWithReason()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, true, false, [], Samples.Now, null);
        var (other, _, _) = PreAuthKeySecrets.Generate();
        var wrongSecret = created.Key[..^1] + (created.Key[^1] == 'a' ? 'b' : 'a');

        Assert.False(_store.TryConsumePreAuthKey(other, Samples.Now, out _, out var reason));
        Assert.Equal("unknown key", reason);
        Assert.False(_store.TryConsumePreAuthKey(wrongSecret, Samples.Now, out _, out reason));
        Assert.Equal("unknown key", reason);
        Assert.False(_store.TryConsumePreAuthKey("tskey-auth-abc", Samples.Now, out _, out reason));
        Assert.Equal("malformed key", reason);
        Assert.False(_store.TryConsumePreAuthKey(created.Key.Replace("mskey-auth-", "mskey-api-", StringComparison.Ordinal), Samples.Now, out _, out reason));
        Assert.Equal("malformed key", reason);
    }

    [Fact]
    public void Create_ForMissingUser_NotFound()
    {
        Assert.Throws<StoreNotFoundException>(() => _store.CreatePreAuthKey(999, false, false, [], Samples.Now, null));
    }

    [Fact]
    public void List_ByUser_ReturnsOnlyThatUsersKeys()
    {
        var bob = _store.CreateUser("bob", null, null, Samples.Now);
        var a = _store.CreatePreAuthKey(_alice.Id, false, false, [], Samples.Now, null);
        var b = _store.CreatePreAuthKey(bob.Id, false, false, [], Samples.Now, null);

        Assert.Equal([a.Record.Id], _store.ListPreAuthKeys(_alice.Id).Select(k => k.Id));
        Assert.Equal([a.Record.Id, b.Record.Id], _store.ListPreAuthKeys().Select(k => k.Id));
        Assert.Equal(b.Record.Id, _store.GetPreAuthKeyByPrefix(b.Record.Prefix)!.Id);
    }

    [Fact]
    public void RegisterNode_ConsumesKeyAndInsertsNodeTogether()
    {
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, ["tag:ci"], Samples.Now, null);

        Assert.True(_store.TryRegisterNode(
            created.Key, Samples.Now, key => Samples.Node(1, key.UserId) with { Tags = key.Tags }, out var node, out _));

        Assert.Equal(created.Record.Id, node.AuthKeyId);
        Assert.Equal(["tag:ci"], node.Tags);
        Assert.True(_store.GetPreAuthKey(created.Record.Id)!.Used);
        Assert.False(_store.TryRegisterNode(created.Key, Samples.Now, key => Samples.Node(2, key.UserId), out _, out var reason));
        Assert.Equal("single-use key already used", reason);
    }

    [Fact]
    public void RegisterNode_NodeConflicts_KeyStaysUnused()
    {
        _store.InsertNode(Samples.Node(1, _alice.Id));
        var created = _store.CreatePreAuthKey(_alice.Id, false, false, [], Samples.Now, null);

        var ex = Assert.Throws<StoreConflictException>(() =>
            _store.TryRegisterNode(created.Key, Samples.Now, _ => Samples.Node(2, _alice.Id) with { GivenName = "node-1" }, out _, out _));
        Assert.Equal("given name", ex.Field);
        Assert.False(_store.GetPreAuthKey(created.Record.Id)!.Used);

        Assert.Throws<InvalidOperationException>(() =>
            _store.TryRegisterNode(created.Key, Samples.Now, _ => throw new InvalidOperationException("no address left"), out _, out _));
        Assert.False(_store.GetPreAuthKey(created.Record.Id)!.Used);

        Assert.True(_store.TryRegisterNode(created.Key, Samples.Now, _ => Samples.Node(2, _alice.Id), out _, out _));
    }

    [Fact]
    public void DeleteUser_DeletesItsKeys_NodesRegisteredWithThemLoseTheReference()
    {
        var bob = _store.CreateUser("bob", null, null, Samples.Now);
        var created = _store.CreatePreAuthKey(bob.Id, false, false, ["tag:ci"], Samples.Now, null);
        Assert.True(_store.TryRegisterNode(created.Key, Samples.Now, _ => Samples.Node(1, userId: null), out var tagged, out _));

        Assert.True(_store.DeleteUser(bob.Id));

        Assert.Empty(_store.ListPreAuthKeys(bob.Id));
        Assert.Null(_store.GetNode(tagged.Id)!.AuthKeyId);
    }
}
