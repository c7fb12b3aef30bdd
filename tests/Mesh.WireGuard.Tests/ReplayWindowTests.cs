using CsCheck;

namespace Mesh.WireGuard.Tests;

public sealed class ReplayWindowTests
{
    // The limit used by the ported self-test: 2^64 - 2^4 - 1, far enough from ulong.MaxValue to
    // exercise the "at or past the limit" rule without arithmetic wrapping.
    private const ulong TestRejectAfter = ulong.MaxValue - (1UL << 4);

    // One more than the window, so T_LIM - 1 is the oldest counter still inside it when T_LIM is the top.
    private const ulong Lim = ReplayWindow.WindowSize + 1;

    /// <summary>
    /// The numbered T(n, expected) sequence of the Linux kernel's replay-counter self-test
    /// (drivers/net/wireguard/selftest/counter.c), as ported to wireguard-go
    /// (replay/replay_test.go, TestReplay); the numbers in comments are the original test numbers.
    /// </summary>
    [Fact]
    public void TryAccept_KernelSelfTestSequence_MatchesExpected()
    {
        var window = new ReplayWindow();
        var cases = new (ulong Counter, bool Expected)[]
        {
            (0, true), // 1
            (1, true), // 2
            (1, false), // 3
            (9, true), // 4
            (8, true), // 5
            (7, true), // 6
            (7, false), // 7
            (Lim, true), // 8
            (Lim - 1, true), // 9
            (Lim - 1, false), // 10
            (Lim - 2, true), // 11
            (2, true), // 12
            (2, false), // 13
            (Lim + 16, true), // 14
            (3, false), // 15
            (Lim + 16, false), // 16
            (Lim * 4, true), // 17
            (Lim * 4 - (Lim - 1), true), // 18
            (10, false), // 19
            (Lim * 4 - Lim, false), // 20
            (Lim * 4 - (Lim + 1), false), // 21
            (Lim * 4 - (Lim - 2), true), // 22
            (Lim * 4 + 1 - Lim, false), // 23
            (0, false), // 24
            (TestRejectAfter, false), // 25
            (TestRejectAfter - 1, true), // 26
            (TestRejectAfter, false), // 27
            (TestRejectAfter - 1, false), // 28
            (TestRejectAfter - 2, true), // 29
            (TestRejectAfter + 1, false), // 30
            (TestRejectAfter + 2, false), // 31
            (TestRejectAfter - 2, false), // 32
            (TestRejectAfter - 3, true), // 33
            (0, false), // 34
        };

        for (var i = 0; i < cases.Length; i++)
        {
            var (counter, expected) = cases[i];
            Assert.True(
                window.TryAccept(counter, TestRejectAfter) == expected,
                $"self-test case {i + 1}: counter {counter} expected {expected}");
        }
    }

    // Bulk tests 1-6 of the same self-test.
    [Fact]
    public void TryAccept_FillWindowAscendingThenZero_ZeroAcceptedOnce()
    {
        var window = new ReplayWindow();
        for (ulong i = 1; i <= ReplayWindow.WindowSize; i++)
        {
            Assert.True(window.TryAccept(i, TestRejectAfter), $"counter {i}");
        }

        Assert.True(window.TryAccept(0, TestRejectAfter));
        Assert.False(window.TryAccept(0, TestRejectAfter));
    }

    [Fact]
    public void TryAccept_WindowShiftedByOne_ZeroFallsOut()
    {
        var window = new ReplayWindow();
        for (ulong i = 2; i <= ReplayWindow.WindowSize + 1; i++)
        {
            Assert.True(window.TryAccept(i, TestRejectAfter), $"counter {i}");
        }

        Assert.True(window.TryAccept(1, TestRejectAfter));
        Assert.False(window.TryAccept(0, TestRejectAfter));
    }

    [Fact]
    public void TryAccept_DescendingFullWindow_AllAccepted()
    {
        var window = new ReplayWindow();
        for (var i = (ulong)ReplayWindow.WindowSize + 1; i > 0; i--)
        {
            Assert.True(window.TryAccept(i, TestRejectAfter), $"counter {i}");
        }
    }

    [Fact]
    public void TryAccept_DescendingPastWindow_OldestRejected()
    {
        var window = new ReplayWindow();
        for (var i = (ulong)ReplayWindow.WindowSize + 2; i > 1; i--)
        {
            Assert.True(window.TryAccept(i, TestRejectAfter), $"counter {i}");
        }

        Assert.False(window.TryAccept(0, TestRejectAfter));
    }

    [Fact]
    public void TryAccept_DescendingThenAdvance_ZeroFallsOut()
    {
        var window = new ReplayWindow();
        for (var i = (ulong)ReplayWindow.WindowSize; i > 0; i--)
        {
            Assert.True(window.TryAccept(i, TestRejectAfter), $"counter {i}");
        }

        Assert.True(window.TryAccept(ReplayWindow.WindowSize + 1, TestRejectAfter));
        Assert.False(window.TryAccept(0, TestRejectAfter));
    }

    [Fact]
    public void TryAccept_DescendingThenZeroThenAdvance_AllAccepted()
    {
        var window = new ReplayWindow();
        for (var i = (ulong)ReplayWindow.WindowSize; i > 0; i--)
        {
            Assert.True(window.TryAccept(i, TestRejectAfter), $"counter {i}");
        }

        Assert.True(window.TryAccept(0, TestRejectAfter));
        Assert.True(window.TryAccept(ReplayWindow.WindowSize + 1, TestRejectAfter));
    }

    [Fact]
    public void WindowSize_IsAtLeast2048()
    {
        Assert.True(ReplayWindow.WindowSize >= 2048);
        Assert.Equal(8128, ReplayWindow.WindowSize);
    }

    [Fact]
    public void Reset_AfterUse_BehavesLikeNewWindow()
    {
        var window = new ReplayWindow();
        for (ulong i = 0; i < 20_000; i += 3)
        {
            window.TryAccept(i, TestRejectAfter);
        }

        window.Reset();

        // Counters accepted before the reset (0 and 3), and one far behind the old top, are new again.
        Assert.True(window.TryAccept(3, TestRejectAfter));
        Assert.True(window.TryAccept(0, TestRejectAfter));
        Assert.False(window.TryAccept(3, TestRejectAfter));
    }

    [Fact]
    public void TryAccept_CounterAtOrPastLimit_Rejected()
    {
        var window = new ReplayWindow();
        Assert.False(window.TryAccept(10, 10));
        Assert.False(window.TryAccept(11, 10));
        Assert.True(window.TryAccept(9, 10));
        Assert.False(window.TryAccept(0, 0));
        Assert.True(window.TryAccept(ulong.MaxValue - 1, ulong.MaxValue));
        Assert.True(window.TryAccept(ulong.MaxValue - 1 - ReplayWindow.WindowSize, ulong.MaxValue));
        Assert.False(window.TryAccept(ulong.MaxValue - 2 - ReplayWindow.WindowSize, ulong.MaxValue));
    }

    [Fact]
    public void TryAccept_SteadyState_DoesNotAllocate()
    {
        var window = new ReplayWindow();
        for (ulong i = 0; i < 1000; i++)
        {
            window.TryAccept(i, TestRejectAfter);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 1000; i < 100_000; i++)
        {
            window.TryAccept(i, TestRejectAfter);
            window.TryAccept(i - 500, TestRejectAfter);
        }

        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    /// <summary>
    /// Random sequences against the obvious model: a set of every accepted counter plus the rule
    /// "more than WindowSize below the highest accepted counter is too old". Steps are drawn
    /// relative to the highest counter so that most of them land near the window's edges.
    /// </summary>
    [Fact]
    public void TryAccept_RandomSequences_MatchesNaiveModel()
    {
        const ulong w = ReplayWindow.WindowSize;
        var step = Gen.Frequency(
            (4, Gen.ULong[0, 70].Select(d => (Kind: 0, Amount: d))), // just ahead of the top
            (2, Gen.ULong[0, 3 * w].Select(d => (Kind: 0, Amount: d))), // a jump ahead, maybe past a full ring
            (4, Gen.ULong[0, w + 130].Select(d => (Kind: 1, Amount: d))), // behind the top, near the edge
            (2, Gen.ULong[w - 70, w + 70].Select(d => (Kind: 1, Amount: d))), // exactly around the edge
            (1, Gen.ULong.Select(d => (Kind: 2, Amount: d)))); // anywhere, including past the limit
        var gen = Gen.Select(
            Gen.OneOf(Gen.Const(ulong.MaxValue), Gen.Const(TestRejectAfter), Gen.ULong[1, 50_000]),
            step.Array[1, 400]);

        gen.Sample(
            (limit, steps) =>
            {
                var window = new ReplayWindow();
                var seen = new HashSet<ulong>();
                ulong? max = null;
                foreach (var (kind, amount) in steps)
                {
                    var top = max ?? 0;
                    var counter = kind switch
                    {
                        0 => top + Math.Min(amount, ulong.MaxValue - top),
                        1 => top - Math.Min(amount, top),
                        _ => amount,
                    };

                    var expected = counter < limit
                        && !seen.Contains(counter)
                        && (max is null || counter > max.Value || max.Value - counter <= w);
                    Assert.Equal(expected, window.TryAccept(counter, limit));
                    if (expected)
                    {
                        seen.Add(counter);
                        max = max is null ? counter : Math.Max(max.Value, counter);
                    }
                }
            },
            iter: 500,
            threads: 1);
    }
}
