using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

public sealed class MeshStoreApiKeyTests : IDisposable
{
    private readonly TempDatabase _db = new();
    private readonly MeshStore _store;

    public MeshStoreApiKeyTests() => _store = _db.Open();

    public void Dispose()
    {
        _store.Dispose();
        _db.Dispose();
    }

    [Fact]
    public void Create_ReturnsKeyOfDocumentedShape()
    {
        var created = _store.CreateApiKey(Samples.Now, Samples.Now.AddDays(90));

        Assert.Matches("^mskey-api-[0-9A-Za-z]{12}-[0-9A-Za-z]{48}$", created.Key);
        Assert.Equal(created.Key.Substring("mskey-api-".Length, 12), created.Record.Prefix);
        Assert.DoesNotContain(created.Key, created.ToString());
        Assert.Null(created.Record.LastSeen);
    }

    [Fact]
    public void Validate_LiveKey_TrueAndRecordsLastSeen()
    {
        var created = _store.CreateApiKey(Samples.Now, null);

        Assert.True(_store.ValidateApiKey(created.Key, Samples.Now.AddMinutes(1)));

        Assert.Equal(Samples.Now.AddMinutes(1), _store.GetApiKeyByPrefix(created.Record.Prefix)!.LastSeen);
    }

    [Fact]
    public void Validate_WrongSecretUnknownMalformedOrPreAuthKey_False()
    {
        var created = _store.CreateApiKey(Samples.Now, null);
        var wrong = created.Key[..^1] + (created.Key[^1] == 'a' ? 'b' : 'a');

        Assert.False(_store.ValidateApiKey(wrong, Samples.Now));
        Assert.False(_store.ValidateApiKey(ApiKeySecrets.Generate().Key, Samples.Now));
        Assert.False(_store.ValidateApiKey("", Samples.Now));
        Assert.False(_store.ValidateApiKey(created.Key.Replace("mskey-api-", "mskey-auth-", StringComparison.Ordinal), Samples.Now));
        Assert.Null(_store.GetApiKeyByPrefix(created.Record.Prefix)!.LastSeen);
    }

    [Fact]
    public void Validate_ExpiredOrExpiredByPrefix_False()
    {
        var dated = _store.CreateApiKey(Samples.Now, Samples.Now.AddHours(1));
        var open = _store.CreateApiKey(Samples.Now, null);

        Assert.True(_store.ValidateApiKey(dated.Key, Samples.Now.AddMinutes(59)));
        Assert.False(_store.ValidateApiKey(dated.Key, Samples.Now.AddHours(1)));

        Assert.Equal(Samples.Now.AddMinutes(1), _store.ExpireApiKey(open.Record.Prefix, Samples.Now.AddMinutes(1))!.Expiration);
        Assert.False(_store.ValidateApiKey(open.Key, Samples.Now.AddMinutes(2)));
        Assert.Null(_store.ExpireApiKey("nosuchprefix", Samples.Now));
    }

    [Fact]
    public void ListAndDelete()
    {
        var a = _store.CreateApiKey(Samples.Now, null);
        var b = _store.CreateApiKey(Samples.Now, null);

        Assert.Equal([a.Record.Prefix, b.Record.Prefix], _store.ListApiKeys().Select(k => k.Prefix));
        Assert.True(_store.DeleteApiKey(a.Record.Prefix));
        Assert.False(_store.ValidateApiKey(a.Key, Samples.Now));
        Assert.Equal([b.Record.Prefix], _store.ListApiKeys().Select(k => k.Prefix));
    }
}
