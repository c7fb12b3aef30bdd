using System.Net;
using CsCheck;

namespace Mesh.WireGuard.Tests;

public sealed class AllowedIpsTests
{
    private sealed class Peer(string name)
    {
        public string Name { get; } = name;

        public override string ToString() => Name;
    }

    private static readonly Peer A = new("a");
    private static readonly Peer B = new("b");
    private static readonly Peer C = new("c");
    private static readonly Peer D = new("d");

    private static Peer? Find(AllowedIps<Peer> table, string address) =>
        table.Lookup(IPAddress.Parse(address).GetAddressBytes());

    [Fact]
    public void Lookup_Empty_ReturnsNull()
    {
        var table = new AllowedIps<Peer>();
        Assert.Null(Find(table, "10.0.0.1"));
        Assert.Null(Find(table, "fd00::1"));
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void Lookup_OverlappingV4Prefixes_LongestWins()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.Insert(IPAddress.Parse("10.1.0.0"), 16, B);
        table.Insert(IPAddress.Parse("10.1.2.0"), 24, C);
        table.Insert(IPAddress.Parse("10.1.2.3"), 32, D);

        Assert.Same(A, Find(table, "10.200.0.1"));
        Assert.Same(B, Find(table, "10.1.200.1"));
        Assert.Same(C, Find(table, "10.1.2.4"));
        Assert.Same(D, Find(table, "10.1.2.3"));
        Assert.Null(Find(table, "11.0.0.0"));
        Assert.Null(Find(table, "9.255.255.255"));
        Assert.Equal(4, table.Count);
    }

    [Fact]
    public void Lookup_InsertOrderReversed_SameAnswers()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.1.2.3"), 32, D);
        table.Insert(IPAddress.Parse("10.1.2.0"), 24, C);
        table.Insert(IPAddress.Parse("10.1.0.0"), 16, B);
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);

        Assert.Same(A, Find(table, "10.200.0.1"));
        Assert.Same(B, Find(table, "10.1.200.1"));
        Assert.Same(C, Find(table, "10.1.2.4"));
        Assert.Same(D, Find(table, "10.1.2.3"));
    }

    [Fact]
    public void Lookup_DefaultRoutes_MatchEverythingInTheirFamilyOnly()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Any, 0, A);
        Assert.Same(A, Find(table, "1.2.3.4"));
        Assert.Same(A, Find(table, "255.255.255.255"));
        Assert.Null(Find(table, "::1"));

        table.Insert(IPAddress.IPv6Any, 0, B);
        Assert.Same(B, Find(table, "::1"));
        Assert.Same(B, Find(table, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        Assert.Same(A, Find(table, "0.0.0.0"));
    }

    [Fact]
    public void Lookup_HostRoutes_ExactOnly()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("192.168.4.20"), 32, A);
        table.Insert(IPAddress.Parse("fd7a:115c:a1e0::1"), 128, B);

        Assert.Same(A, Find(table, "192.168.4.20"));
        Assert.Null(Find(table, "192.168.4.21"));
        Assert.Same(B, Find(table, "fd7a:115c:a1e0::1"));
        Assert.Null(Find(table, "fd7a:115c:a1e0::"));
        Assert.Null(Find(table, "fd7a:115c:a1e0::3"));
    }

    [Fact]
    public void Lookup_OverlappingV6Prefixes_LongestWins()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("fd7a:115c:a1e0::"), 48, A);
        table.Insert(IPAddress.Parse("fd7a:115c:a1e0:ab12::"), 64, B);
        table.Insert(IPAddress.Parse("fd7a:115c:a1e0:ab12:4843:cd96:6258:b240"), 127, C);
        table.Insert(IPAddress.Parse("2001:db8::"), 32, D);

        Assert.Same(A, Find(table, "fd7a:115c:a1e0:1::1"));
        Assert.Same(B, Find(table, "fd7a:115c:a1e0:ab12::99"));
        Assert.Same(C, Find(table, "fd7a:115c:a1e0:ab12:4843:cd96:6258:b241"));
        Assert.Same(B, Find(table, "fd7a:115c:a1e0:ab12:4843:cd96:6258:b242"));
        Assert.Same(D, Find(table, "2001:db8:ffff::"));
        Assert.Null(Find(table, "2001:db9::"));
    }

    [Fact]
    public void Insert_HostBitsSet_AreMasked()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.1.2.3"), 16, A);

        Assert.Same(A, Find(table, "10.1.99.99"));
        var prefix = Assert.Single(table.PrefixesOf(A));
        Assert.Equal(IPNetwork.Parse("10.1.0.0/16"), prefix);
    }

    [Fact]
    public void Insert_SamePrefix_ReplacesOwnerWithoutGrowing()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 24, A);
        table.Insert(IPAddress.Parse("10.0.0.77"), 24, B);

        Assert.Same(B, Find(table, "10.0.0.1"));
        Assert.Equal(1, table.Count);
        Assert.Empty(table.PrefixesOf(A));
        Assert.Single(table.PrefixesOf(B));
    }

    [Fact]
    public void Insert_InvalidArguments_Throw()
    {
        var table = new AllowedIps<Peer>();
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Insert(IPAddress.Any, 33, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Insert(IPAddress.IPv6Any, 129, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Insert(IPAddress.Any, -1, A));
        Assert.Throws<ArgumentNullException>(() => table.Insert(null!, 8, A));
        Assert.Throws<ArgumentNullException>(() => table.Insert(IPAddress.Any, 8, null!));
    }

    [Fact]
    public void Lookup_NotAnAddressLength_ReturnsNull()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Any, 0, A);
        table.Insert(IPAddress.IPv6Any, 0, B);
        Assert.Null(table.Lookup(new byte[5]));
        Assert.Null(table.Lookup([]));
    }

    [Fact]
    public void Remove_ExactPrefixOnly_KeepsCoveringAndCoveredPrefixes()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.Insert(IPAddress.Parse("10.1.0.0"), 16, B);
        table.Insert(IPAddress.Parse("10.1.2.0"), 24, C);

        Assert.False(table.Remove(IPAddress.Parse("10.1.0.0"), 17));
        Assert.False(table.Remove(IPAddress.Parse("10.2.0.0"), 16));
        Assert.True(table.Remove(IPAddress.Parse("10.1.9.9"), 16));
        Assert.False(table.Remove(IPAddress.Parse("10.1.0.0"), 16));

        Assert.Same(A, Find(table, "10.1.200.1"));
        Assert.Same(C, Find(table, "10.1.2.1"));
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void RemoveAll_Peer_RemovesOnlyItsPrefixesInBothFamilies()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.Insert(IPAddress.Parse("10.1.0.0"), 16, B);
        table.Insert(IPAddress.Parse("10.1.2.0"), 24, A);
        table.Insert(IPAddress.Parse("fd00::"), 8, A);
        table.Insert(IPAddress.Parse("fd00::1"), 128, B);

        table.RemoveAll(A);

        Assert.Null(Find(table, "10.2.0.0"));
        Assert.Same(B, Find(table, "10.1.2.1"));
        Assert.Null(Find(table, "fd00::2"));
        Assert.Same(B, Find(table, "fd00::1"));
        Assert.Empty(table.PrefixesOf(A));
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void RemoveAll_ComparesByReference()
    {
        var table = new AllowedIps<Peer>();
        var twin = new Peer("a");
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.RemoveAll(twin);
        Assert.Same(A, Find(table, "10.0.0.1"));
    }

    [Fact]
    public void PrefixesOf_ListsV4ThenV6InAddressOrder()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("fd00::"), 64, A);
        table.Insert(IPAddress.Parse("10.9.0.0"), 16, A);
        table.Insert(IPAddress.Parse("10.1.0.0"), 16, A);
        table.Insert(IPAddress.Parse("10.1.0.0"), 24, B);

        Assert.Equal(
            [IPNetwork.Parse("10.1.0.0/16"), IPNetwork.Parse("10.9.0.0/16"), IPNetwork.Parse("fd00::/64")],
            table.PrefixesOf(A));
    }

    [Fact]
    public void Clear_RemovesEverything()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.Insert(IPAddress.IPv6Any, 0, B);
        table.Clear();
        Assert.Equal(0, table.Count);
        Assert.Null(Find(table, "10.0.0.1"));
        Assert.Null(Find(table, "::"));
    }

    [Fact]
    public void Lookup_DoesNotAllocate()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.Insert(IPAddress.Parse("10.1.2.0"), 24, B);
        table.Insert(IPAddress.Parse("fd7a:115c:a1e0::"), 48, C);
        ReadOnlySpan<byte> v4 = [10, 1, 2, 3];
        ReadOnlySpan<byte> v6 = [0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        for (var i = 0; i < 1000; i++)
        {
            table.Lookup(v4);
            table.Lookup(v6);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100_000; i++)
        {
            table.Lookup(v4);
            table.Lookup(v6);
        }

        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    /// <summary>
    /// Readers on other threads, while a writer keeps moving one prefix between two owners and
    /// adding and dropping a more specific one, must only ever see an owner that was valid at some
    /// point: never null for an address that is always covered, never a torn answer.
    /// </summary>
    [Fact]
    public async Task Lookup_ConcurrentWithWriter_SeesOnlyValidOwners()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(IPAddress.Parse("10.0.0.0"), 8, A);
        table.Insert(IPAddress.Parse("fd00::"), 8, A);
        var failures = 0;
        var lookups = 0L;
        using var stop = new CancellationTokenSource();

        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            ReadOnlySpan<byte> v4 = [10, 1, 2, 3];
            ReadOnlySpan<byte> v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
            while (!stop.IsCancellationRequested)
            {
                var owner4 = table.Lookup(v4);
                var owner6 = table.Lookup(v6);
                if (owner4 is null || owner4 == D || owner6 is null || owner6 == D)
                {
                    Interlocked.Increment(ref failures);
                }

                Interlocked.Increment(ref lookups);
            }
        })).ToArray();

        for (var i = 0; i < 5000; i++)
        {
            var owner = i % 2 == 0 ? B : A;
            table.Insert(IPAddress.Parse("10.0.0.0"), 8, owner);
            table.Insert(IPAddress.Parse("10.1.2.0"), 24, C);
            table.Insert(IPAddress.Parse("fd00::"), 8, owner);
            table.Insert(IPAddress.Parse("fd00::7"), 128, C);
            table.Insert(IPAddress.Parse("11.0.0.0"), 8, D);
            table.Remove(IPAddress.Parse("10.1.2.0"), 24);
            table.Remove(IPAddress.Parse("fd00::7"), 128);
            table.RemoveAll(D);
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Interlocked.Read(ref lookups) < 10_000 && DateTime.UtcNow < deadline)
        {
            Thread.Yield();
        }

        await stop.CancelAsync();
        await Task.WhenAll(readers);
        Assert.Equal(0, failures);
        Assert.True(Interlocked.Read(ref lookups) > 0);
    }

    // ---- Random comparison against a linear scan ----

    private sealed record Op(int Kind, byte[] Address, int PrefixLength, int Owner);

    private sealed class LinearTable
    {
        private readonly Dictionary<(string Key, int Length), Peer> _entries = [];

        public int Count => _entries.Count;

        public void Insert(byte[] address, int length, Peer owner) => _entries[(Key(address, length), length)] = owner;

        public bool Remove(byte[] address, int length) => _entries.Remove((Key(address, length), length));

        public void RemoveAll(Peer owner)
        {
            foreach (var entry in _entries.Where(e => ReferenceEquals(e.Value, owner)).ToList())
            {
                _entries.Remove(entry.Key);
            }
        }

        public Peer? Lookup(byte[] address)
        {
            Peer? best = null;
            var bestLength = -1;
            foreach (var ((key, length), owner) in _entries)
            {
                if (key.Length == address.Length * 2 && key == Key(address, length) && length > bestLength)
                {
                    best = owner;
                    bestLength = length;
                }
            }

            return best;
        }

        public IEnumerable<IPNetwork> PrefixesOf(Peer owner) =>
            _entries.Where(e => ReferenceEquals(e.Value, owner))
                .Select(e => new IPNetwork(new IPAddress(Convert.FromHexString(e.Key.Key)), e.Key.Length));

        private static string Key(byte[] address, int length)
        {
            var masked = (byte[])address.Clone();
            for (var bit = length; bit < masked.Length * 8; bit++)
            {
                masked[bit / 8] &= (byte)~(0x80 >> (bit % 8));
            }

            return Convert.ToHexString(masked);
        }
    }

    // Addresses drawn from a small alphabet of bytes so that random prefixes overlap often.
    private static Gen<byte[]> AddressGen(int size) =>
        Gen.Frequency(
                (3, Gen.OneOf<byte>(0x00, 0x0a, 0x80, 0xff)),
                (1, Gen.Byte))
            .Array[size];

    private static Gen<Op> OpGen(int size)
    {
        var bits = size * 8;
        var length = Gen.Frequency(
            (3, Gen.Int[0, bits]),
            (1, Gen.OneOf(0, 1, bits - 1, bits)));
        return Gen.Select(Gen.Int[0, 9], AddressGen(size), length, Gen.Int[0, 3])
            .Select((kind, address, prefixLength, owner) => new Op(kind, address, prefixLength, owner));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(16)]
    public void Random_OperationsAndLookups_MatchLinearScan(int size)
    {
        var owners = new[] { A, B, C, D };
        Gen.Select(OpGen(size).Array[1, 120], AddressGen(size).Array[8])
            .Sample(
                (ops, probes) =>
                {
                    var table = new AllowedIps<Peer>();
                    var model = new LinearTable();
                    foreach (var op in ops)
                    {
                        var owner = owners[op.Owner];
                        switch (op.Kind)
                        {
                            case <= 5:
                                table.Insert(new IPAddress(op.Address), op.PrefixLength, owner);
                                model.Insert(op.Address, op.PrefixLength, owner);
                                break;
                            case <= 7:
                                Assert.Equal(
                                    model.Remove(op.Address, op.PrefixLength),
                                    table.Remove(new IPAddress(op.Address), op.PrefixLength));
                                break;
                            case 8:
                                table.RemoveAll(owner);
                                model.RemoveAll(owner);
                                break;
                            default:
                                Assert.Same(model.Lookup(op.Address), table.Lookup(op.Address));
                                break;
                        }

                        Assert.Equal(model.Count, table.Count);
                    }

                    foreach (var probe in probes.Concat(ops.Select(o => o.Address)))
                    {
                        Assert.Same(model.Lookup(probe), table.Lookup(probe));
                    }

                    foreach (var owner in owners)
                    {
                        Assert.Equal(
                            model.PrefixesOf(owner).Select(p => p.ToString()).Order(),
                            table.PrefixesOf(owner).Select(p => p.ToString()).Order());
                    }
                },
                iter: 300,
                threads: 1);
    }
}
