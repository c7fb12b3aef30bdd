using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Mesh.Sidecar.Tests.Infrastructure;

/// <summary>What each end of a transfer saw: byte counts and SHA-256 of the stream as sent and as received.</summary>
internal sealed record TransferResult(long SentBytes, string SentSha256, long ReceivedBytes, string ReceivedSha256, TimeSpan Elapsed)
{
    public double Gbps => ReceivedBytes * 8 / Elapsed.TotalSeconds / 1e9;
}

/// <summary>
/// A one-way TCP stream between sockets the test process opens in two namespaces (see
/// <see cref="NetNs.CreateSocket"/>). The sender hashes what it wrote, the receiver what it read;
/// the caller compares them. The content is random per run and varies per chunk, so a duplicated,
/// dropped or misordered chunk changes the hash.
/// </summary>
internal static class TcpTransfer
{
    private const int ChunkSize = 64 * 1024;
    private const int PatternSize = 1024 * 1024;

    public static async Task<TransferResult> RunAsync(NetNs senderNs, NetNs receiverNs, IPAddress receiverAddress, long bytes, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var family = receiverAddress.AddressFamily;
        using var listener = receiverNs.CreateSocket(family, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(receiverAddress, 0));
        listener.Listen(1);
        var started = Stopwatch.GetTimestamp();
        var receive = CancelOnFailure(ReceiveAsync(listener, deadline.Token), deadline);
        using var client = senderNs.CreateSocket(family, SocketType.Stream, ProtocolType.Tcp);
        var send = CancelOnFailure(SendAsync(client, (IPEndPoint)listener.LocalEndPoint!, bytes, deadline.Token), deadline);
        try
        {
            await Task.WhenAll(send, receive);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            var progress = receive.IsCompletedSuccessfully ? "receiver finished" : "receiver unfinished";
            throw new TimeoutException($"TCP transfer of {bytes} bytes to {receiverAddress} did not finish within {timeout.TotalSeconds:0} s ({progress}; send: {send.Status}, {send.Exception?.InnerException?.Message})");
        }

        var (sent, sentHash) = await send;
        var (received, receivedHash) = await receive;
        return new TransferResult(sent, sentHash, received, receivedHash, Stopwatch.GetElapsedTime(started));
    }

    private static async Task<T> CancelOnFailure<T>(Task<T> task, CancellationTokenSource deadline)
    {
        try
        {
            return await task;
        }
        catch
        {
            await deadline.CancelAsync();
            throw;
        }
    }

    private static async Task<(long, string)> SendAsync(Socket client, IPEndPoint endpoint, long bytes, CancellationToken cancellationToken)
    {
        await client.ConnectAsync(endpoint, cancellationToken);
        var pattern = RandomNumberGenerator.GetBytes(PatternSize);
        var chunk = new byte[ChunkSize];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long sent = 0;
        for (long index = 0; sent < bytes; index++)
        {
            var length = (int)Math.Min(ChunkSize, bytes - sent);
            var offset = (int)(index * ChunkSize % PatternSize);
            pattern.AsSpan(offset, length).CopyTo(chunk);
            BitConverter.TryWriteBytes(chunk.AsSpan(0, Math.Min(8, length)), index);
            for (var pending = chunk.AsMemory(0, length); !pending.IsEmpty;)
            {
                pending = pending[await client.SendAsync(pending, SocketFlags.None, cancellationToken)..];
            }

            hash.AppendData(chunk, 0, length);
            sent += length;
        }

        client.Shutdown(SocketShutdown.Send);
        return (sent, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static async Task<(long, string)> ReceiveAsync(Socket listener, CancellationToken cancellationToken)
    {
        using var connection = await listener.AcceptAsync(cancellationToken);
        var buffer = new byte[ChunkSize];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = 0;
        while (true)
        {
            var read = await connection.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, read);
            received += read;
        }

        return (received, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }
}
