using System.Runtime.InteropServices;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>
/// The few libc calls the harness needs that .NET does not expose: switching a thread's network
/// namespace (to create sockets inside a test namespace) and sending SIGTERM (Process.Kill only
/// sends SIGKILL, and the sidecar's shutdown path is what we want to exercise).
/// </summary>
// DllImport rather than LibraryImport: the generated stubs need AllowUnsafeBlocks, which the test
// project does not enable, and these signatures are blittable ints that need no marshalling.
internal static class Native
{
    /// <summary><c>CLONE_NEWNET</c> from &lt;sched.h&gt;: setns(2) must join a network namespace.</summary>
    internal const int CloneNewNet = 0x40000000;
    internal const int SigKill = 9;
    internal const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    internal static extern int SetNs(int fd, int nsType);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "geteuid")]
    internal static extern uint GetEffectiveUserId();
}
