namespace Mesh.WireGuard;

/// <summary>
/// The receive-side sliding window over transport-data counters of one keypair: it accepts each
/// counter at most once and rejects counters that fall too far behind the highest one seen, so
/// that a captured packet cannot be replayed.
/// </summary>
/// <remarks>
/// <para>
/// What it is: the bitmap-of-words window of RFC 6479 (https://www.rfc-editor.org/rfc/rfc6479),
/// laid out as WireGuard's Linux implementation lays it out (drivers/net/wireguard/receive.c,
/// <c>counter_validate</c>): a ring of <see cref="RingWords"/> 64-bit words (8192 bits). Moving the
/// window forward zeroes whole words instead of shifting bits, so an accept is O(1) apart from the
/// words skipped over, and at most the whole ring is cleared on a big jump. One word of the ring is
/// always being recycled, so the usable window is 8192 − 64 = <see cref="WindowSize"/> counters.
/// </para>
/// <para>
/// What it is not: it does not decrypt or authenticate. Call <see cref="TryAccept"/> only after the
/// packet's AEAD tag has been verified (whitepaper §5.4.6), otherwise forged counters would move the
/// window and lock out the real sender.
/// </para>
/// <para>
/// Threading: not thread-safe. The caller serializes all calls for one keypair (the receive path
/// holds the keypair's lock, or runs one receive worker per keypair). No method allocates.
/// </para>
/// </remarks>
public sealed class ReplayWindow
{
    /// <summary>Total bits in the ring (the kernel's <c>COUNTER_BITS_TOTAL</c>).</summary>
    public const int RingBits = 8192;

    /// <summary>How many counters behind the highest accepted one are still tracked.</summary>
    public const int WindowSize = RingBits - BitsPerWord;

    private const int BitsPerWord = 64;
    private const int WordShift = 6; // log2(BitsPerWord)
    private const int RingWords = RingBits / BitsPerWord;
    private const ulong RingWordMask = RingWords - 1;

    private readonly ulong[] _ring = new ulong[RingWords];

    // One more than the highest counter accepted so far; zero means nothing has been accepted.
    // Storing counter + 1 (as the kernel does) lets counter zero be accepted by a fresh window
    // without a separate "empty" flag.
    private ulong _top;

    /// <summary>
    /// Checks <paramref name="counter"/> and records it. Returns false when the counter was already
    /// accepted, lies more than <see cref="WindowSize"/> behind the highest accepted counter, or is
    /// not below <paramref name="rejectAfterMessages"/>; the window is unchanged in those cases.
    /// </summary>
    public bool TryAccept(ulong counter, ulong rejectAfterMessages)
    {
        if (counter >= rejectAfterMessages)
        {
            return false;
        }

        // counter < rejectAfterMessages <= ulong.MaxValue, so this cannot wrap.
        var position = counter + 1;

        if (position > _top)
        {
            // Advance: zero every word between the old top word (exclusive) and the new one
            // (inclusive); after a jump of a full ring or more that is simply every word.
            var newWord = position >> WordShift;
            var oldWord = _top >> WordShift;
            var toClear = Math.Min(newWord - oldWord, (ulong)RingWords);
            for (ulong i = 1; i <= toClear; i++)
            {
                _ring[(int)((oldWord + i) & RingWordMask)] = 0;
            }

            _top = position;
        }
        else if (_top - position > WindowSize)
        {
            // Written as a subtraction (not position + WindowSize < _top) so that counters near
            // ulong.MaxValue cannot overflow.
            return false;
        }

        ref var word = ref _ring[(int)((position >> WordShift) & RingWordMask)];
        var bit = 1UL << (int)(position & (BitsPerWord - 1));
        if ((word & bit) != 0)
        {
            return false;
        }

        word |= bit;
        return true;
    }

    /// <summary>Forgets every counter, as for a fresh keypair.</summary>
    public void Reset()
    {
        _top = 0;
        Array.Clear(_ring);
    }
}
