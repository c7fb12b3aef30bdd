using System.Security.Cryptography;
using CsCheck;
using Mesh.Protocol.Control;
using Mesh.WireGuard.Crypto;

namespace Mesh.Protocol.Tests.Control;

/// <summary>
/// Sealing in pieces (what the coordinator does with large maps) against the one-shot AEAD as the
/// model: the same bytes for any plaintext, associated data and cut into pieces, and frames that the
/// node's reader opens.
/// </summary>
public class StreamedSealTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public void Sealer_AnyPlaintextAndPieces_SameAsOneShotAead()
    {
        var gen = Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[12], Gen.Byte.Array[0, 40], Gen.Byte.Array[0, 5000], Gen.Int[1, 40]);
        gen.Sample((key, nonce, ad, plaintext, blocksPerPiece) =>
        {
            var expected = new byte[plaintext.Length + 16];
            using (var aead = new ChaCha20Poly1305(key))
            {
                aead.Encrypt(nonce, plaintext, expected.AsSpan(0, plaintext.Length), expected.AsSpan(plaintext.Length), ad);
            }

            var actual = new byte[plaintext.Length + 16];
            using (var sealer = new ChaChaPolySealer(key, nonce, ad))
            {
                var piece = blocksPerPiece * ChaChaPolySealer.BlockSize;
                for (var at = 0; at < plaintext.Length; at += piece)
                {
                    var n = Math.Min(piece, plaintext.Length - at);
                    sealer.Encrypt(plaintext.AsSpan(at, n), actual.AsSpan(at, n));
                }

                sealer.Finish(actual.AsSpan(plaintext.Length));
            }

            Assert.Equal(expected, actual);
        }, iter: 300);
    }

    [Fact]
    public void Sealer_InPlace_SameAsOneShot()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var nonce = new byte[12];
        var plaintext = RandomNumberGenerator.GetBytes(100_000);
        var expected = new byte[plaintext.Length + 16];
        ChaChaPoly.Seal(key, nonce, plaintext, "/machine/map"u8, expected);

        var buffer = new byte[plaintext.Length + 16];
        plaintext.CopyTo(buffer, 0);
        using var sealer = new ChaChaPolySealer(key, nonce, "/machine/map"u8);
        sealer.Encrypt(buffer.AsSpan(0, 65_536), buffer.AsSpan(0, 65_536));
        sealer.Encrypt(buffer.AsSpan(65_536, plaintext.Length - 65_536), buffer.AsSpan(65_536, plaintext.Length - 65_536));
        sealer.Finish(buffer.AsSpan(plaintext.Length));

        Assert.Equal(expected, buffer);
    }

    [Fact]
    public void Sealer_PieceAfterAPartialBlock_Refused()
    {
        using var sealer = new ChaChaPolySealer(new byte[32], new byte[12], []);
        var buffer = new byte[200];
        sealer.Encrypt(buffer.AsSpan(0, 100), buffer.AsSpan(0, 100));
        Assert.Throws<InvalidOperationException>(() => sealer.Encrypt(buffer.AsSpan(100, 64), buffer.AsSpan(100, 64)));
    }

    [Fact]
    public void Sealer_ShiftedOverlap_Refused()
    {
        using var sealer = new ChaChaPolySealer(new byte[32], new byte[12], []);
        var buffer = new byte[200];
        Assert.Throws<ArgumentException>(() => sealer.Encrypt(buffer.AsSpan(0, 128), buffer.AsSpan(64, 128)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(ControlFraming.SealChunkSize - 1)]
    [InlineData(ControlFraming.SealChunkSize)]
    [InlineData(ControlFraming.SealChunkSize + 1)]
    [InlineData(3 * ControlFraming.SealChunkSize + 777)]
    public async Task WriteSealed_Framed_OpensAsTheWholePlaintextAndMatchesOneShotFraming(int length)
    {
        var (server, client) = Sessions();
        var plaintext = RandomNumberGenerator.GetBytes(length);

        using var streamed = new MemoryStream();
        await ControlFraming.WriteSealedAsync(streamed, server, ControlPaths.Map, new TricklePlaintext(plaintext), framed: true, Token);
        using var oneShot = new MemoryStream();
        await ControlFraming.WriteFrameAsync(oneShot, server.Seal(plaintext, ControlPaths.Map), Token);

        // The next counter seals the same bytes the same way: only the counter field and what it keys differ.
        streamed.Position = 0;
        var frame = await ControlFraming.ReadFrameAsync(streamed, Token);
        Assert.NotNull(frame);
        Assert.Null(await ControlFraming.ReadFrameAsync(streamed, Token));
        Assert.Equal(plaintext, client.Open(frame, ControlPaths.Map));
        Assert.Equal(oneShot.Length, streamed.Length);

        oneShot.Position = 0;
        Assert.Equal(plaintext, client.Open((await ControlFraming.ReadFrameAsync(oneShot, Token))!, ControlPaths.Map));
    }

    [Fact]
    public async Task WriteSealed_Bare_IsAOneShotSealedReply()
    {
        var (server, client) = Sessions();
        var plaintext = RandomNumberGenerator.GetBytes(70_000);
        using var output = new MemoryStream();

        await ControlFraming.WriteSealedAsync(output, server, ControlPaths.Map, new BytesPlaintext(plaintext), framed: false, Token);

        Assert.Equal(ControlSession.HeaderSize + plaintext.Length + 16, output.Length);
        Assert.Equal(plaintext, client.Open(output.ToArray(), ControlPaths.Map));
        Assert.Null(client.Open(output.ToArray(), ControlPaths.Register));
    }

    [Fact]
    public async Task WriteSealed_PlaintextShorterThanItsLength_Throws()
    {
        var (server, _) = Sessions();
        using var output = new MemoryStream();
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await ControlFraming.WriteSealedAsync(output, server, ControlPaths.Map, new LyingPlaintext(100, 60), framed: true, Token));
    }

    [Fact]
    public async Task WriteSealed_PlaintextLongerThanItsLength_Throws()
    {
        var (server, _) = Sessions();
        using var output = new MemoryStream();
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await ControlFraming.WriteSealedAsync(output, server, ControlPaths.Map, new LyingPlaintext(100, 160), framed: true, Token));
    }

    private static (ControlSession Server, ControlSession Client) Sessions()
    {
        var serverKey = new byte[32];
        X25519.GeneratePrivateKey(serverKey);
        var machine = new byte[32];
        X25519.GeneratePrivateKey(machine);
        var server = new ControlServer(serverKey);
        var handshake = new ControlClientHandshake(machine, server.PublicKey);
        Assert.True(server.TryAccept(handshake.CreateInitiation(), out var response, out var serverSession, out var error), error);
        return (serverSession!, handshake.Complete(response));
    }

    /// <summary>Hands out its bytes a few at a time, as a plaintext made of many parts does.</summary>
    private sealed class TricklePlaintext(byte[] bytes) : ISealedPlaintext
    {
        private int _position;

        public int Length => bytes.Length;

        public int Read(Span<byte> destination)
        {
            var n = Math.Min(Math.Min(destination.Length, 1 + (_position % 997)), bytes.Length - _position);
            bytes.AsSpan(_position, n).CopyTo(destination);
            _position += n;
            return n;
        }
    }

    private sealed class LyingPlaintext(int claimed, int actual) : ISealedPlaintext
    {
        private int _position;

        public int Length => claimed;

        public int Read(Span<byte> destination)
        {
            var n = Math.Min(destination.Length, actual - _position);
            destination[..n].Fill(0x41);
            _position += n;
            return n;
        }
    }
}
