using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

public sealed class KeySecretsTests
{
    [Fact]
    public void Generate_KeysAreDistinctAndParseToTheirPrefix()
    {
        var keys = Enumerable.Range(0, 100).Select(_ => PreAuthKeySecrets.Generate()).ToList();

        Assert.Equal(100, keys.Select(k => k.Key).Distinct().Count());
        Assert.All(keys, k =>
        {
            Assert.True(PreAuthKeySecrets.TryParse(k.Key, out var prefix));
            Assert.Equal(k.Prefix, prefix);
            Assert.True(PreAuthKeySecrets.Matches(k.Key, k.Hash));
            Assert.Equal(32, k.Hash.Length);
        });
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("mskey-auth-")]
    [InlineData("mskey-auth-abcdefghijkl-")]
    [InlineData("mskey-auth-abcdefghijkl_0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("mskey-auth-abcdefghijk-0123456789abcdef0123456789abcdef0123456789abcdefX")]
    [InlineData("mskey-auth-abcdefghijkl-0123456789abcdef0123456789abcdef0123456789abcde!")]
    [InlineData("mskey-auth-abcdefghijkl-0123456789abcdef0123456789abcdef0123456789abcdef0")]
    [InlineData("MSKEY-AUTH-abcdefghijkl-0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("mskey-api-abcdefghijkl-0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void TryParse_NotExactlyAPreAuthKey_False(string? presented)
    {
        Assert.False(PreAuthKeySecrets.TryParse(presented, out _));
    }

    [Fact]
    public void TryParse_WellFormed_True()
    {
        Assert.True(PreAuthKeySecrets.TryParse("mskey-auth-abcdefghijkl-0123456789abcdef0123456789abcdef0123456789abcdef", out var prefix));
        Assert.Equal("abcdefghijkl", prefix);
        Assert.True(ApiKeySecrets.TryParse("mskey-api-abcdefghijkl-0123456789abcdef0123456789abcdef0123456789abcdef", out _));
    }

    [Fact]
    public void Matches_OtherKeyOrTruncatedHash_False()
    {
        var (key, _, hash) = ApiKeySecrets.Generate();
        var (other, _, _) = ApiKeySecrets.Generate();

        Assert.False(ApiKeySecrets.Matches(other, hash));
        Assert.False(ApiKeySecrets.Matches(key, hash[..16]));
        Assert.False(ApiKeySecrets.Matches(key, []));
    }
}
