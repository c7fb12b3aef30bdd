using System.Net;

namespace Mesh.Sidecar.Dns;

/// <summary>
/// Points a resolv.conf at MagicDNS while the agent runs, and puts the original back afterwards.
/// <see cref="Install"/> keeps the original beside the file (<c>PATH.mesh-backup</c>) before
/// writing ours; <see cref="Restore"/> (or <see cref="Dispose"/>) writes it back and removes the backup.
/// </summary>
/// <remarks>
/// <para>Files are rewritten in place, not renamed over: in a container /etc/resolv.conf is a bind
/// mount, and rename(2) onto a mount point fails with EBUSY. A symbolic link (systemd-resolved's
/// stub file) is the exception: writing through it would change the file it points to, so the
/// link itself is moved to the backup path and restored as a link.</para>
/// <para>Crash safety: if the agent died without restoring, the next <see cref="Install"/> finds our
/// marker in the file and a backup beside it, and keeps that backup as the original instead of
/// backing up its own file.</para>
/// <para>Not thread-safe: the agent's DNS setup calls it from one place.</para>
/// </remarks>
public sealed class ResolvConfTakeover : IDisposable
{
    /// <summary>Appended to the file's path to name the backup.</summary>
    public const string BackupSuffix = ".mesh-backup";

    // Written as the backup when there was no file at all, so Restore removes ours instead of writing one.
    private const string AbsentMarker = "# mesh-sidecar: no resolv.conf existed here\n";

    private readonly string _path;
    private readonly string _backupPath;
    private readonly IReadOnlyList<IPAddress> _nameservers;
    private bool _restored;

    private ResolvConfTakeover(string path, ResolvConf original, IReadOnlyList<IPAddress> nameservers)
    {
        _path = path;
        _backupPath = path + BackupSuffix;
        Original = original;
        _nameservers = nameservers;
    }

    /// <summary>The host's configuration before the takeover: its nameservers are MagicDNS's fallback upstreams.</summary>
    public ResolvConf Original { get; }

    /// <summary>The file being managed.</summary>
    public string Path => _path;

    /// <summary>
    /// Backs up <paramref name="path"/> and writes one naming <paramref name="nameservers"/> (by default
    /// <see cref="MagicDnsAddresses.IPv4"/>), with <paramref name="searchDomains"/> first in the search
    /// list followed by the original's, and the original's options (a pod's <c>ndots:5</c> keeps working).
    /// </summary>
    public static ResolvConfTakeover Install(string path, IReadOnlyList<string> searchDomains, IReadOnlyList<IPAddress>? nameservers = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(searchDomains);
        var backupPath = path + BackupSuffix;

        string? originalText;
        if (BackupExists(backupPath) && File.Exists(path) && ResolvConf.IsGenerated(File.ReadAllText(path)))
        {
            // Left over from an agent that did not restore: the backup is still the host's file.
            originalText = File.ReadAllText(backupPath);
        }
        else
        {
            originalText = WriteBackup(path, backupPath);
        }

        var original = originalText is null || originalText == AbsentMarker ? new ResolvConf([], [], []) : ResolvConf.Parse(originalText);
        var takeover = new ResolvConfTakeover(path, original, nameservers ?? [MagicDnsAddresses.IPv4]);
        takeover.Write(searchDomains);
        return takeover;
    }

    /// <summary>Rewrites the file with new search domains (the netmap's changed).</summary>
    public void Update(IReadOnlyList<string> searchDomains)
    {
        ArgumentNullException.ThrowIfNull(searchDomains);
        ObjectDisposedException.ThrowIf(_restored, this);
        Write(searchDomains);
    }

    /// <summary>Puts the original file back and removes the backup. Idempotent.</summary>
    public void Restore()
    {
        if (_restored)
        {
            return;
        }

        if (IsSymlink(_backupPath))
        {
            File.Delete(_path);
            File.Move(_backupPath, _path);
        }
        else if (File.Exists(_backupPath))
        {
            var text = File.ReadAllText(_backupPath);
            if (text == AbsentMarker)
            {
                File.Delete(_path);
            }
            else
            {
                File.WriteAllText(_path, text);
            }

            File.Delete(_backupPath);
        }

        _restored = true;
    }

    /// <summary>Same as <see cref="Restore"/>.</summary>
    public void Dispose() => Restore();

    private void Write(IReadOnlyList<string> searchDomains)
    {
        var search = new List<string>(searchDomains.Count + Original.Search.Count);
        foreach (var domain in searchDomains)
        {
            AddDistinct(search, domain);
        }

        foreach (var domain in Original.Search)
        {
            AddDistinct(search, domain);
        }

        var text = new ResolvConf(_nameservers, search, Original.Options).Render(_backupPath);
        if (IsSymlink(_path))
        {
            File.Delete(_path);
        }

        File.WriteAllText(_path, text);
    }

    private static void AddDistinct(List<string> search, string domain)
    {
        var trimmed = domain.TrimEnd('.');
        foreach (var existing in search)
        {
            if (existing.Equals(trimmed, StringComparison.OrdinalIgnoreCase))
            {
                return;
            }
        }

        search.Add(trimmed);
    }

    /// <summary>Saves the current file (or its absence) to the backup path; returns its text, or null when there was none.</summary>
    private static string? WriteBackup(string path, string backupPath)
    {
        DeleteBackup(backupPath);
        if (IsSymlink(path))
        {
            var text = File.Exists(path) ? File.ReadAllText(path) : null;
            File.Move(path, backupPath);
            return text;
        }

        var original = File.Exists(path) ? File.ReadAllText(path) : AbsentMarker;

        // Write the backup completely before it can be seen, so a crash never leaves half a backup.
        var temporary = backupPath + ".tmp";
        File.WriteAllText(temporary, original);
        File.Move(temporary, backupPath, overwrite: true);
        return original;
    }

    private static void DeleteBackup(string backupPath)
    {
        if (BackupExists(backupPath))
        {
            File.Delete(backupPath);
        }
    }

    private static bool BackupExists(string backupPath) => File.Exists(backupPath) || IsSymlink(backupPath);

    private static bool IsSymlink(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is not null;
    }
}
