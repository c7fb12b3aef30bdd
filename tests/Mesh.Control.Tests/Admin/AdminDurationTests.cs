using Mesh.Control.Admin;

namespace Mesh.Control.Tests.Admin;

public sealed class AdminDurationTests
{
    [Theory]
    [InlineData("90m", 90 * 60)]
    [InlineData("24h", 24 * 3600)]
    [InlineData("7d", 7 * 86400)]
    [InlineData("2w", 14 * 86400)]
    [InlineData("1h30m", 5400)]
    [InlineData("1.5h", 5400)]
    [InlineData("45s", 45)]
    [InlineData(" 1d12h ", 36 * 3600)]
    public void TryParse_GoStyle_Accepted(string text, int seconds)
    {
        Assert.True(AdminDuration.TryParse(text, out var duration, out var error), error);
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("24")]
    [InlineData("h")]
    [InlineData("5ms")]
    [InlineData("1y")]
    [InlineData("-1h")]
    [InlineData("0h")]
    [InlineData("1..5h")]
    [InlineData("99999999d")]
    [InlineData("1h 30m")]
    public void TryParse_Malformed_RefusedWithReason(string text)
    {
        Assert.False(AdminDuration.TryParse(text, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Theory]
    [InlineData(5400, "1h30m")]
    [InlineData(86400 * 7, "7d")]
    [InlineData(61, "1m1s")]
    [InlineData(90061, "1d1h1m1s")]
    public void Format_IsShortestAndReadsBack(int seconds, string expected)
    {
        var text = AdminDuration.Format(TimeSpan.FromSeconds(seconds));
        Assert.Equal(expected, text);
        Assert.True(AdminDuration.TryParse(text, out var back, out _));
        Assert.Equal(TimeSpan.FromSeconds(seconds), back);
    }
}
