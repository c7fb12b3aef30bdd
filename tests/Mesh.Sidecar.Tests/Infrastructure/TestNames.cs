using System.Security.Cryptography;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// Names for one test's namespaces and links. Namespaces are <c>mt-SUFFIX-ROLE</c>; links are
/// <c>mtSUFFIXROLE</c>. Link names must be unique on the whole machine, not only inside their
/// namespace: a userspace WireGuard interface's UAPI socket lives at the global path
/// <c>/var/run/wireguard/NAME.sock</c>, and several test processes share this machine.
/// </summary>
internal sealed class TestNames
{
    /// <summary>IFNAMSIZ is 16 including the terminating NUL.</summary>
    internal const int MaxInterfaceName = 15;

    private TestNames(string suffix) => Suffix = suffix;

    /// <summary>Eight random hex digits, shared by every name of one test.</summary>
    public string Suffix { get; }

    public static TestNames Create() => new(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));

    public string Namespace(string role) => $"mt-{Suffix}-{role}";

    public string Link(string role)
    {
        var name = $"mt{Suffix}{role}";
        if (name.Length > MaxInterfaceName)
        {
            throw new ArgumentException($"link name '{name}' is longer than {MaxInterfaceName} characters", nameof(role));
        }

        return name;
    }
}
