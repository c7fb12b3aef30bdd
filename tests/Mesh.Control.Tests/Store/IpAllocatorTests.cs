using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using CsCheck;
using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

public sealed class IpAllocatorTests
{
    [Fact]
    public void Default_FirstAddresses_AreTheFirstHostsOfEachPrefix()
    {
        var allocator = new IpAllocator();

        Assert.Equal((IPAddress.Parse("100.64.0.1"), IPAddress.Parse("fd7a:115c:a1e0::1")), allocator.Allocate());
        Assert.Equal((IPAddress.Parse("100.64.0.2"), IPAddress.Parse("fd7a:115c:a1e0::2")), allocator.Allocate());
        Assert.Equal(IPAddress.Parse("100.64.0.3"), allocator.AllocateV4());
    }

    [Fact]
    public void V4_SmallPrefix_SkipsNetworkAndBroadcast_ThenExhaustedWithClearError()
    {
        var allocator = new IpAllocator(IPNetwork.Parse("100.64.0.0/29"), null);

        var given = Enumerable.Range(0, 6).Select(_ => allocator.AllocateV4().ToString()).ToList();

        Assert.Equal(Enumerable.Range(1, 6).Select(i => $"100.64.0.{i}"), given);
        var ex = Assert.Throws<IpAllocationException>(allocator.AllocateV4);
        Assert.Equal("the prefix 100.64.0.0/29 is exhausted: every usable address is in use", ex.Message);
        Assert.Throws<InvalidOperationException>(allocator.AllocateV6);
    }

    [Fact]
    public void V4_ServiceRange_NeverHandedOut()
    {
        var allocator = new IpAllocator(IPNetwork.Parse("100.100.100.0/22"), null);

        Assert.Equal(IPAddress.Parse("100.100.101.0"), allocator.AllocateV4());
        Assert.Throws<IpAllocationException>(() => new IpAllocator(IPNetwork.Parse("100.100.100.96/28"), null).AllocateV4());
    }

    [Fact]
    public void V4_ChromeOsRange_NeverHandedOut()
    {
        var allocator = new IpAllocator(IPNetwork.Parse("100.115.92.0/22"), null);

        Assert.Equal(IPAddress.Parse("100.115.94.0"), allocator.AllocateV4());
    }

    [Fact]
    public void V6_MagicDnsAddress_Skipped()
    {
        var allocator = new IpAllocator(null, IPNetwork.Parse("fd7a:115c:a1e0::/120"));

        var given = Enumerable.Range(0, 0x52).Select(_ => allocator.AllocateV6()).ToList();

        Assert.Equal(IPAddress.Parse("fd7a:115c:a1e0::52"), given[^1]);
        Assert.Equal(IPAddress.Parse("fd7a:115c:a1e0::54"), allocator.AllocateV6());
        Assert.False(allocator.IsInUse(IpAllocator.MagicDnsV6));
    }

    [Fact]
    public void Release_ThenAllocate_ReusesTheLowestFreeAddress()
    {
        var allocator = new IpAllocator();
        var addresses = Enumerable.Range(0, 10).Select(_ => allocator.AllocateV4()).ToList();

        Assert.True(allocator.Release(addresses[7]));
        Assert.True(allocator.Release(addresses[3]));
        Assert.False(allocator.Release(addresses[3]));

        Assert.Equal(addresses[3], allocator.AllocateV4());
        Assert.Equal(addresses[7], allocator.AllocateV4());
        Assert.Equal(IPAddress.Parse("100.64.0.11"), allocator.AllocateV4());
    }

    [Fact]
    public void MarkInUse_StoredAddresses_NeverHandedOut()
    {
        var allocator = new IpAllocator();

        Assert.True(allocator.MarkInUse(IPAddress.Parse("100.64.0.1")));
        Assert.True(allocator.MarkInUse(IPAddress.Parse("100.64.0.3")));
        Assert.True(allocator.MarkInUse(IPAddress.Parse("::ffff:100.64.0.4")));
        Assert.False(allocator.MarkInUse(IPAddress.Parse("100.64.0.3")));
        Assert.False(allocator.MarkInUse(IPAddress.Parse("10.0.0.1")));
        Assert.False(allocator.MarkInUse(IPAddress.Parse("fd00::1")));

        Assert.Equal(IPAddress.Parse("100.64.0.2"), allocator.AllocateV4());
        Assert.Equal(IPAddress.Parse("100.64.0.5"), allocator.AllocateV4());
        Assert.True(allocator.IsInUse(IPAddress.Parse("100.64.0.4")));
    }

    [Fact]
    public void Allocate_OneFamilyExhausted_TakesNeitherAddress()
    {
        var allocator = new IpAllocator(IPNetwork.Parse("100.64.0.0/24"), IPNetwork.Parse("fd7a:115c:a1e0::/126"));
        for (var i = 0; i < 3; i++)
        {
            allocator.Allocate();
        }

        Assert.Throws<IpAllocationException>(() => allocator.Allocate());

        Assert.False(allocator.IsInUse(IPAddress.Parse("100.64.0.4")));
        Assert.Equal(IPAddress.Parse("100.64.0.4"), allocator.AllocateV4());
    }

    [Fact]
    public void Constructor_WrongFamilyOrNoPrefix_Rejected()
    {
        Assert.Throws<ArgumentException>(() => new IpAllocator(IPNetwork.Parse("fd00::/64"), null));
        Assert.Throws<ArgumentException>(() => new IpAllocator(null, IPNetwork.Parse("100.64.0.0/10")));
        Assert.Throws<ArgumentException>(() => new IpAllocator(null, null));
    }

    [Fact]
    public void ManyNodes_FiftyThousandAllocationsWithChurn_StayUniqueAndDense()
    {
        var allocator = new IpAllocator();
        var held = new HashSet<IPAddress>();
        for (var i = 0; i < 50_000; i++)
        {
            Assert.True(held.Add(allocator.AllocateV4()));
        }

        var random = new Random(7);
        var released = held.OrderBy(_ => random.Next()).Take(5_000).ToHashSet();
        foreach (var address in released)
        {
            Assert.True(allocator.Release(address));
        }

        var refilled = Enumerable.Range(0, 5_000).Select(_ => allocator.AllocateV4()).ToHashSet();

        Assert.Equal(released.OrderBy(Key), refilled.OrderBy(Key));
        // Offsets 1 to 50,000 are held; offset 50,001 is 100.64.195.81.
        Assert.Equal(IPAddress.Parse("100.64.195.81"), allocator.AllocateV4());

        static uint Key(IPAddress a) => BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());
    }

    [Fact]
    public void RandomOperations_MatchANaiveLowestFreeModel()
    {
        IPNetwork[] prefixes =
        [
            IPNetwork.Parse("100.64.0.0/26"),
            IPNetwork.Parse("100.100.100.0/23"),
            IPNetwork.Parse("100.115.88.0/21"),
            IPNetwork.Parse("fd7a:115c:a1e0::40/122"),
        ];
        var op = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 4095]);

        Gen.Select(Gen.Int[0, prefixes.Length - 1], op.Array[1, 400]).Sample((which, ops) =>
        {
            var prefix = prefixes[which];
            var v4 = prefix.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
            var allocator = v4 ? new IpAllocator(prefix, null) : new IpAllocator(null, prefix);
            var model = new NaivePool(prefix);

            foreach (var (kind, n) in ops)
            {
                switch (kind)
                {
                    case < 6:
                        var expected = model.Allocate();
                        if (expected is null)
                        {
                            Assert.Throws<IpAllocationException>(() => v4 ? allocator.AllocateV4() : allocator.AllocateV6());
                        }
                        else
                        {
                            Assert.Equal(expected, v4 ? allocator.AllocateV4() : allocator.AllocateV6());
                        }

                        break;
                    case < 8:
                        var any = model.At(n % model.Size);
                        Assert.Equal(model.Release(any), allocator.Release(any));
                        break;
                    case 8:
                        if (model.Held.Count > 0)
                        {
                            var held = model.Held.ElementAt(n % model.Held.Count);
                            Assert.Equal(model.Release(held), allocator.Release(held));
                        }

                        break;
                    default:
                        var mark = model.At(n % model.Size);
                        Assert.Equal(model.MarkInUse(mark), allocator.MarkInUse(mark));
                        break;
                }
            }
        }, iter: 300);
    }

    /// <summary>The specification, written plainly: scan from the start for the first address neither held nor reserved.</summary>
    private sealed class NaivePool(IPNetwork prefix)
    {
        private static readonly IPNetwork Service = IPNetwork.Parse("100.100.100.0/24");
        private static readonly IPNetwork ChromeOs = IPNetwork.Parse("100.115.92.0/23");
        private readonly bool _v4 = prefix.BaseAddress.AddressFamily == AddressFamily.InterNetwork;

        public HashSet<IPAddress> Held { get; } = [];

        public int Size => 1 << ((_v4 ? 32 : 128) - prefix.PrefixLength);

        public IPAddress At(int offset)
        {
            var bytes = prefix.BaseAddress.GetAddressBytes();
            var carry = offset;
            for (var i = bytes.Length - 1; i >= 0 && carry > 0; i--)
            {
                var sum = bytes[i] + (carry & 0xff);
                bytes[i] = (byte)sum;
                carry = (carry >> 8) + (sum >> 8);
            }

            return new IPAddress(bytes);
        }

        public IPAddress? Allocate()
        {
            for (var i = 0; i < Size; i++)
            {
                var address = At(i);
                var reserved = i == 0 || (_v4 && i == Size - 1) || Service.Contains(address) || ChromeOs.Contains(address)
                    || address.Equals(IpAllocator.MagicDnsV6);
                if (!reserved && Held.Add(address))
                {
                    return address;
                }
            }

            return null;
        }

        public bool Release(IPAddress address) => Held.Remove(address);

        public bool MarkInUse(IPAddress address) => Held.Add(address);
    }
}
