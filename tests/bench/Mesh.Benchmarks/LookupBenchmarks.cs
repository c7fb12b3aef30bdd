using System.Net;
using BenchmarkDotNet.Attributes;
using Mesh.WireGuard;

namespace Mesh.Benchmarks;

/// <summary>
/// The two per-packet table operations besides the cipher: the cryptokey-routing lookup
/// (<see cref="AllowedIps{T}.Lookup"/>, once per packet each way) over a table of 1,000 IPv4 and
/// 1,000 IPv6 prefixes, and <see cref="ReplayWindow.TryAccept"/> with in-order counters (the
/// common case on a clean path). Each invocation does <see cref="Batch"/> operations over
/// pre-made inputs, so the reported time is per single lookup or accept.
/// </summary>
[MemoryDiagnoser]
public class LookupBenchmarks
{
    public const int Batch = 1024;
    private const int PrefixesPerFamily = 1000;
    private const int Owners = 100;

    private AllowedIps<object> _table = null!;
    private byte[] _v4Queries = null!;
    private byte[] _v6Queries = null!;
    private ReplayWindow _window = null!;
    private ulong _counter;

    [GlobalSetup]
    public void Setup()
    {
        // Fixed seed: the same table and queries every run, so runs compare.
        var random = new Random(20261125);
        var owners = new object[Owners];
        for (var i = 0; i < owners.Length; i++)
        {
            owners[i] = new object();
        }

        _table = new AllowedIps<object>();
        var v4Prefixes = new List<(byte[] Address, int Length)>();
        var v6Prefixes = new List<(byte[] Address, int Length)>();
        while (v4Prefixes.Count < PrefixesPerFamily)
        {
            v4Prefixes.Add(AddPrefix(random, 4, random.Next(8, 33), owners));
        }

        while (v6Prefixes.Count < PrefixesPerFamily)
        {
            v6Prefixes.Add(AddPrefix(random, 16, random.Next(16, 129), owners));
        }

        _v4Queries = Queries(random, 4, v4Prefixes);
        _v6Queries = Queries(random, 16, v6Prefixes);
        if (LookupV4() == 0 || LookupV6() == 0)
        {
            throw new InvalidOperationException("No query matched a prefix: the lookup would measure only misses.");
        }

        _window = new ReplayWindow();
        _counter = 0;
    }

    /// <summary>Returns how many of the batch matched, so the lookups cannot be optimised away.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV4() => LookupAll(_v4Queries, 4);

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV6() => LookupAll(_v6Queries, 16);

    [Benchmark(OperationsPerInvoke = Batch)]
    public int ReplayWindowInOrder()
    {
        var accepted = 0;
        var counter = _counter;
        for (var i = 0; i < Batch; i++)
        {
            if (_window.TryAccept(counter++, Protocol.RejectAfterMessages))
            {
                accepted++;
            }
        }

        _counter = counter;
        return accepted == Batch ? accepted : throw new InvalidOperationException("An in-order counter was rejected.");
    }

    private int LookupAll(byte[] queries, int size)
    {
        var table = _table;
        var hits = 0;
        for (var offset = 0; offset < queries.Length; offset += size)
        {
            if (table.Lookup(queries.AsSpan(offset, size)) is not null)
            {
                hits++;
            }
        }

        return hits;
    }

    private (byte[] Address, int Length) AddPrefix(Random random, int size, int length, object[] owners)
    {
        var address = new byte[size];
        random.NextBytes(address);
        _table.Insert(new IPAddress(address), length, owners[random.Next(owners.Length)]);
        return (address, length);
    }

    /// <summary>
    /// Three in four queries fall inside a random inserted prefix (random host bits), one in four
    /// is a random address (mostly a miss, or a hit on a short prefix), like a mix of routed and
    /// stray traffic.
    /// </summary>
    private static byte[] Queries(Random random, int size, List<(byte[] Address, int Length)> prefixes)
    {
        var queries = new byte[Batch * size];
        for (var i = 0; i < Batch; i++)
        {
            var query = queries.AsSpan(i * size, size);
            random.NextBytes(query);
            if (i % 4 == 3)
            {
                continue;
            }

            var (address, length) = prefixes[random.Next(prefixes.Count)];
            for (var bit = 0; bit < length; bit++)
            {
                var mask = (byte)(0x80 >> (bit & 7));
                query[bit >> 3] = (byte)((query[bit >> 3] & ~mask) | (address[bit >> 3] & mask));
            }
        }

        return queries;
    }
}
