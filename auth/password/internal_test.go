package password

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func cheapParams() Params { return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32} }

func TestNewDefaultsConcurrencyToNumCPU(t *testing.T) {
	h, err := New(cheapParams(), 0)
	require.NoError(t, err)
	require.Equal(t, runtime.NumCPU(), cap(h.sem))
}

// The dummy must cost what a real user's hash costs, so it has to be made
// with the Hasher's own parameters.
func TestDummyUsesCurrentParams(t *testing.T) {
	p := Params{Memory: 256, Time: 3, Threads: 2, SaltLen: 24, KeyLen: 48}
	h, err := New(p, 1)
	require.NoError(t, err)
	d, err := parse(h.dummy)
	require.NoError(t, err)
	require.Equal(t, p, d.params)
}

// With every slot taken, Hash must wait (not compute) and then either
// finish once a slot frees up or give up when its context ends.
func TestSemaphoreBlocksAndHonoursContext(t *testing.T) {
	h, err := New(cheapParams(), 2)
	require.NoError(t, err)
	h.sem <- struct{}{}
	h.sem <- struct{}{}

	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "a fine password"); waiting <- err }()
	finishing := make(chan error, 1)
	go func() { _, err := h.Hash(context.Background(), "a fine password"); finishing <- err }()

	// Neither may return while the slots are held. The pause only gives a
	// broken implementation time to show itself; a correct one passes
	// regardless of scheduling.
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-waiting:
		t.Fatalf("Hash returned (%v) while all slots were taken", err)
	case err := <-finishing:
		t.Fatalf("Hash returned (%v) while all slots were taken", err)
	default:
	}

	cancel()
	require.ErrorIs(t, <-waiting, context.Canceled)

	<-h.sem // free one slot
	require.NoError(t, <-finishing)
	require.Len(t, h.sem, 1, "a finished Hash gives its slot back")
}

// FuzzVerify: no PHC string may panic the parser or Verify, every
// rejection wraps ErrInvalidHash, and whatever parses re-encodes to the
// identical string (one spelling per hash, so nothing slips past the
// bounds in an alternative notation).
func FuzzVerify(f *testing.F) {
	h, err := New(cheapParams(), 0)
	require.NoError(f, err)
	good, err := h.Hash(context.Background(), "correct horse battery")
	require.NoError(f, err)
	f.Add(good, "correct horse battery")
	f.Add(good, "wrong")
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", "")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$$", "x")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "x")
	f.Add("$argon2id$v=19$m=64,t=1,p=1,keyid=x$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "x")
	f.Add("", "")
	f.Add("$$$$$$", "$")

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, phc, pw string) {
		d, perr := parse(phc)
		if perr != nil {
			require.ErrorIs(t, perr, ErrInvalidHash)
			ok, rehash, err := h.Verify(ctx, phc, pw)
			require.ErrorIs(t, err, ErrInvalidHash)
			require.False(t, ok || rehash)
			return
		}
		require.Equal(t, phc, encode(d.params, d.salt, d.key))
		require.NoError(t, d.params.Validate())
		// Parsing is what is being fuzzed; skip running argon2 on costly
		// (but legal) parameters so the fuzzer keeps its pace.
		if uint64(d.params.Memory)*uint64(d.params.Time) > 8192 {
			return
		}
		ok, rehash, err := h.Verify(ctx, phc, pw)
		require.NoError(t, err)
		require.False(t, rehash && !ok)
	})
}

// TestQueueIsBounded: with every slot taken and the queue full, the next
// caller gets ErrBusy at once instead of waiting behind the others; the
// queued ones still finish once slots free up.
func TestQueueIsBounded(t *testing.T) {
	h, err := New(cheapParams(), 1)
	require.NoError(t, err)
	h.LimitQueue(3)
	h.sem <- struct{}{} // the only slot is busy
	done := make(chan error, 3)
	for range 3 {
		go func() { _, err := h.Hash(context.Background(), "a fine password"); done <- err }()
	}
	require.Eventually(t, func() bool { return h.waiting.Load() == 3 }, 10*time.Second, time.Millisecond)
	_, err = h.Hash(context.Background(), "a fine password")
	require.ErrorIs(t, err, ErrBusy)
	_, _, err = h.Verify(context.Background(), h.dummy, "a fine password")
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorIs(t, h.VerifyDummy(context.Background(), "a fine password"), ErrBusy)

	<-h.sem
	for range 3 {
		require.NoError(t, <-done)
	}
	require.Zero(t, h.waiting.Load())
}

// TestReservationKeepsItsPlace: a reservation is a place in the bounded
// queue taken ahead of the check. While it is held, callers past the
// bound are refused; its own check is never refused, and a released or
// used reservation frees the place.
func TestReservationKeepsItsPlace(t *testing.T) {
	ctx := context.Background()
	h, err := New(cheapParams(), 1)
	require.NoError(t, err)
	h.LimitQueue(0) // the one slot is the only place
	phc, err := h.Hash(ctx, "a fine password")
	require.NoError(t, err)

	r, err := h.Reserve()
	require.NoError(t, err)
	_, err = h.Reserve()
	require.ErrorIs(t, err, ErrBusy)
	_, _, err = h.Verify(ctx, phc, "a fine password")
	require.ErrorIs(t, err, ErrBusy, "the reserved place is not free")
	ok, _, err := r.Verify(ctx, phc, "a fine password")
	require.NoError(t, err)
	require.True(t, ok)
	r.Release() // after use: nothing
	require.Zero(t, h.waiting.Load())

	r, err = h.Reserve()
	require.NoError(t, err)
	r.Release()
	r.Release()
	require.Zero(t, h.waiting.Load())
	r, err = h.Reserve()
	require.NoError(t, err)
	require.NoError(t, r.VerifyDummy(ctx, "a fine password"))
	require.Zero(t, h.waiting.Load())
}
