using Mesh.Control.Store;

namespace Mesh.Control.Tests.Store;

/// <summary>A temporary directory holding one database; removed on dispose.</summary>
internal sealed class TempDatabase : IDisposable
{
    public TempDatabase()
    {
        Directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mesh-store-tests", Guid.NewGuid().ToString("N"));
        Path = System.IO.Path.Combine(Directory, "data", "mesh.db");
    }

    public string Directory { get; }

    public string Path { get; }

    public MeshStore Open() => new(Path);

    /// <summary>The database and its -wal and -shm files, concatenated.</summary>
    public byte[] AllFileBytes()
    {
        var bytes = new List<byte>();
        foreach (var file in System.IO.Directory.GetFiles(System.IO.Path.GetDirectoryName(Path)!, "mesh.db*"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            bytes.AddRange(copy.ToArray());
        }

        return [.. bytes];
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Samples
{
    public static readonly DateTimeOffset Now = new(2025, 6, 1, 12, 0, 0, 123, TimeSpan.Zero);

    public static NodeRecord Node(int n, long? userId, string? ipv4 = null, string? ipv6 = null) => new(
        Id: 0,
        MachineKey: $"mkey:{n:x64}",
        NodeKey: $"nodekey:{n:x64}",
        DiscoKey: $"discokey:{n:x64}",
        UserId: userId,
        Hostname: $"host-{n}",
        GivenName: $"node-{n}",
        Tags: [],
        IPv4: ipv4 ?? $"100.64.0.{n}",
        IPv6: ipv6 ?? $"fd7a:115c:a1e0::{n:x}",
        Endpoints: [$"198.18.0.{n}:41641"],
        HomeRelay: 999,
        LastSeen: Now,
        Expiry: Now.AddDays(180),
        KeyExpiryDisabled: false,
        Ephemeral: false,
        AuthKeyId: null,
        HostinfoJson: """{"OS":"linux"}""",
        CreatedAt: Now);
}
