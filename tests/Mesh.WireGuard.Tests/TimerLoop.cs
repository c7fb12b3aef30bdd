using Mesh.WireGuard.Noise;

namespace Mesh.WireGuard.Tests;

/// <summary>One datagram that a peer's timers wrote, with the engine time it was written at.</summary>
internal sealed record TimerOutput(TimeSpan At, Peer From, byte[] Datagram)
{
    public uint Type => Messages.ReadType(Datagram);

    public bool IsInitiation => Type == Messages.TypeInitiation;

    public bool IsKeepalive => Type == Messages.TypeTransport && Datagram.Length == Messages.TransportMinSize;

    public uint InitiationSender => Messages.ReadIndex(Datagram, Messages.InitSender);
}

/// <summary>What a run of <see cref="TimerLoop.Run"/> saw: every timer output and every packet written to a TUN.</summary>
internal sealed class TimerTrace
{
    public List<TimerOutput> Outputs { get; } = [];

    public List<(WireGuardEngine Engine, byte[] Packet)> Delivered { get; } = [];

    public IEnumerable<TimerOutput> From(Peer peer) => Outputs.Where(o => o.From == peer);
}

/// <summary>
/// Drives peers' timers the way the device's timer loop does: <see cref="Peer.UpdateTimers"/> on
/// every tick of the fake clock, and again while it returns SendToPeer.
/// </summary>
internal static class TimerLoop
{
    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>Calls UpdateTimers until it stops asking to send; returns what it wrote (at most 16, so a runaway loop shows up as a failure).</summary>
    public static List<byte[]> Drain(Peer peer)
    {
        var written = new List<byte[]>();
        var buffer = t_buffer ??= new byte[2048];
        while (written.Count < 16)
        {
            var result = peer.UpdateTimers(buffer);
            if (result.Action != TunnelAction.SendToPeer)
            {
                break;
            }

            written.Add(buffer[..result.Length]);
        }

        return written;
    }

    /// <summary>
    /// Advances the clock by <paramref name="step"/> until <paramref name="duration"/> has passed. On
    /// each tick the timers of <paramref name="peers"/> (default: both) run; what they write is
    /// recorded and, when <paramref name="deliver"/> is set, delivered to the other engine (replies included).
    /// </summary>
    public static TimerTrace Run(BackToBack net, TimeSpan duration, TimeSpan step, Peer[]? peers = null, bool deliver = true, TimerTrace? trace = null)
    {
        trace ??= new TimerTrace();
        peers ??= [net.PeerOfA, net.PeerOfB];
        for (var elapsed = step; elapsed <= duration; elapsed += step)
        {
            net.Clock.Advance(step);
            foreach (var peer in peers)
            {
                var from = peer == net.PeerOfA ? net.A : net.B;
                var to = from == net.A ? net.B : net.A;
                foreach (var datagram in Drain(peer))
                {
                    trace.Outputs.Add(new TimerOutput(from.Now, peer, datagram));
                    if (deliver)
                    {
                        trace.Delivered.AddRange(net.Deliver(to, datagram));
                    }
                }
            }
        }

        return trace;
    }

    /// <summary>A pair with a session: A sent one packet (A is the initiator) and B received it at the returned time.</summary>
    public static BackToBack Established(out TimeSpan sessionStart, bool presharedKey = false)
    {
        var net = new BackToBack(presharedKey);
        var delivered = net.Deliver(net.B, BackToBack.Send(net.A, AToB())!);
        Assert.Single(delivered);
        sessionStart = net.A.Now;
        Assert.Equal(sessionStart, net.PeerOfA.CurrentKeypair!.Created);
        Assert.Equal(sessionStart, net.PeerOfB.CurrentKeypair!.Created);
        return net;
    }

    public static byte[] AToB(int payload = 12, byte fill = 0xAB) => BackToBack.Ipv4Packet("100.64.0.1", "100.64.0.2", payload, fill);

    public static byte[] BToA(int payload = 12, byte fill = 0xBA) => BackToBack.Ipv4Packet("100.64.0.2", "100.64.0.1", payload, fill);
}
