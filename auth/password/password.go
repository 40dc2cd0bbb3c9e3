// Package password hashes and verifies user passwords with argon2id and
// stores them as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// (salt and key in standard base64 without padding). DefaultParams is the
// OWASP minimum (19 MiB, 2 passes, 1 lane). Every hash and verification
// runs under a semaphore of maxConcurrent slots, so peak memory is about
// maxConcurrent × Memory however many logins arrive at once; waiting for a
// slot honours the context. Stored strings are parsed strictly and
// bounded (MaxMemory, MaxTime, ...) so a bad database row can neither
// crash nor stall the server.
//
// Unknown users must cost as much as wrong passwords, or login timing
// tells an attacker which emails exist: call VerifyDummy for them.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password policy. Lengths count Unicode code points (runes), not bytes:
// a person types characters, and counting bytes would let a three-letter
// CJK password (9 bytes) pass the minimum while penalising non-Latin
// passphrases at the maximum. NIST SP 800-63B §5.1.1.2 counts characters
// the same way. 128 runes is at most 512 bytes of argon2 input.
const (
	MinLength = 8
	MaxLength = 128
	// maxInputBytes is the longest byte string any valid password can be;
	// Verify refuses to spend a KDF run on anything longer.
	maxInputBytes = MaxLength * utf8.UTFMax
)

// Errors. The policy errors' messages are safe to show to the user.
var (
	ErrTooShort    = errors.New("password must be at least 8 characters")
	ErrTooLong     = errors.New("password must be at most 128 characters")
	ErrInvalidUTF8 = errors.New("password must be valid UTF-8 text")
	// ErrInvalidHash: a stored PHC string is malformed or out of bounds.
	ErrInvalidHash = errors.New("password: invalid stored hash")
	// ErrInvalidParams: New was given unusable parameters.
	ErrInvalidParams = errors.New("password: invalid parameters")
	// ErrBusy: every hashing slot is taken and the queue for them is
	// full; the caller should answer "try again shortly" (429).
	ErrBusy = errors.New("password: too many password checks waiting")
)

// Params are the argon2id cost parameters for new hashes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams returns OWASP's minimum argon2id configuration (Password
// Storage Cheat Sheet: m=19 MiB, t=2, p=1) with a 16-byte salt and a
// 32-byte key. Configuration should never go below it; New does not
// enforce that so that tests elsewhere may use cheap parameters.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Validate reports whether p is usable: inside the bounds a stored hash
// may have (MaxMemory, MaxTime, ...), so every hash New makes can be
// parsed back. Errors wrap ErrInvalidParams.
func (p Params) Validate() error {
	if err := p.checkCost(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	if err := checkLen("salt", p.SaltLen, MinSaltLen, MaxSaltLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	if err := checkLen("key", p.KeyLen, MinKeyLen, MaxKeyLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	return nil
}

// checkCost bounds m, t and p. x/crypto panics on t=0 or p=0 and silently
// raises m below 8·p, so both are refused here instead. The error names
// the offending value only; callers add the sentinel.
func (p Params) checkCost() error {
	switch {
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("time %d outside 1..%d", p.Time, MaxTime)
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("parallelism %d outside 1..%d", p.Threads, MaxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxMemory:
		return fmt.Errorf("memory %d KiB outside %d..%d", p.Memory, 8*uint32(p.Threads), MaxMemory)
	}
	return nil
}

func checkLen(what string, n, lo, hi uint32) error {
	if n < lo || n > hi {
		return fmt.Errorf("%s length %d outside %d..%d bytes", what, n, lo, hi)
	}
	return nil
}

// weakerThan reports whether any cost or length in p is below q's, which
// is when a stored hash should be upgraded at the next successful login.
func (p Params) weakerThan(q Params) bool {
	return p.Memory < q.Memory || p.Time < q.Time || p.Threads < q.Threads ||
		p.SaltLen < q.SaltLen || p.KeyLen < q.KeyLen
}

// Validate checks a new password against the policy (MinLength..MaxLength
// runes of valid UTF-8). It returns one of ErrInvalidUTF8, ErrTooShort,
// ErrTooLong, whose messages may be shown to the user.
func Validate(password string) error {
	if !utf8.ValidString(password) {
		return ErrInvalidUTF8
	}
	switch n := utf8.RuneCountInString(password); {
	case n < MinLength:
		return ErrTooShort
	case n > MaxLength:
		return ErrTooLong
	}
	return nil
}

// Hasher hashes and verifies passwords with fixed parameters under a
// concurrency limit. It is safe for concurrent use.
type Hasher struct {
	params Params
	// sem holds one token per running argon2 computation; its capacity is
	// the concurrency limit and hence the memory bound.
	sem chan struct{}
	// dummy is a random PHC string with the current parameters, made once
	// in New, that VerifyDummy checks against.
	dummy   string
	dummies atomic.Uint64
	// waiting counts callers admitted but not yet holding a slot
	// (reservations included); past maxQueued plus the free slots a
	// caller gets ErrBusy at once. An unbounded queue lets a burst of bad
	// logins make every legitimate one wait behind it.
	waiting   atomic.Int64
	maxQueued int64
	// freed counts big argon2 buffers let go of since the last
	// collection (collectFreed); returning is set while a goroutine hands
	// free pages back to the OS (returnPages).
	freed     atomic.Int64
	returning atomic.Bool
}

// collectAbove is the argon2 memory from which freed buffers are collected
// before the next computation: smaller buffers are left to the pacer.
const collectAbove = 4 << 20

// DefaultQueuePerSlot is how many callers may wait per hashing slot
// (with 2 slots and ~25 ms per hash, a wait of at most ~0.1 s).
const DefaultQueuePerSlot = 4

// New returns a Hasher producing hashes with params and running at most
// maxConcurrent argon2 computations at once (runtime.NumCPU() when
// maxConcurrent ≤ 0: more would only queue for CPU while holding memory).
// The dummy hash VerifyDummy checks against is random, so New runs no KDF.
func New(params Params, maxConcurrent int) (*Hasher, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.NumCPU()
	}
	h := &Hasher{params: params, sem: make(chan struct{}, maxConcurrent), maxQueued: int64(DefaultQueuePerSlot * maxConcurrent)}
	// The dummy needs no KDF run to make: a random salt and a random
	// "derived key" form a PHC string no password can match, and
	// verifying against it costs exactly one argon2id computation with
	// the current parameters. Making it this way keeps start-up fast and
	// its memory peak away.
	salt := make([]byte, params.SaltLen)
	key := make([]byte, params.KeyLen)
	// crypto/rand.Read never fails on supported platforms (Go ≥ 1.24).
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	dummy := encode(params, salt, key)
	h.dummy = dummy
	return h, nil
}

// LimitQueue sets how many callers may wait for a slot (default
// DefaultQueuePerSlot per slot); 0 allows none to wait. Call it before use.
func (h *Hasher) LimitQueue(n int) {
	h.maxQueued = int64(max(n, 0))
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash validates password against the policy and returns its PHC string
// with a fresh random salt. It waits for a free slot, or for ctx.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := Validate(password); err != nil {
		return "", err
	}
	return h.hash(ctx, []byte(password))
}

func (h *Hasher) hash(ctx context.Context, password []byte) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt)
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	h.collectFreed()
	key := argon2.IDKey(password, salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	h.release()
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string phc, and
// whether phc was made with parameters weaker than the Hasher's (then
// the caller should store a fresh Hash after a successful login). A
// malformed or out-of-bounds phc returns an error wrapping
// ErrInvalidHash before any KDF run (log it; a caller wanting even that
// case to take the usual time can follow up with VerifyDummy); a
// cancelled wait returns ctx's error. Passwords longer than any valid one
// do not match and cost no KDF run.
func (h *Hasher) Verify(ctx context.Context, phc, password string) (ok, needsRehash bool, err error) {
	return h.verify(ctx, phc, password, h.acquire)
}

func (h *Hasher) verify(ctx context.Context, phc, password string, take func(context.Context) error) (ok, needsRehash bool, err error) {
	d, err := parse(phc)
	if err != nil {
		return false, false, err
	}
	if len(password) > maxInputBytes {
		return false, false, nil
	}
	ok, err = h.check(ctx, d, password, take)
	if err != nil {
		return false, false, err
	}
	return ok, ok && d.params.weakerThan(h.params), nil
}

// VerifyDummy does the work of one Verify against a hash no password
// matches. Call it when the user does not exist (or has no password) so
// the response takes as long as for a wrong password. It returns only a
// context error.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	return h.verifyDummy(ctx, password, h.acquire)
}

func (h *Hasher) verifyDummy(ctx context.Context, password string, take func(context.Context) error) error {
	d, err := parse(h.dummy)
	if err != nil {
		return fmt.Errorf("password: dummy hash: %w", err)
	}
	if len(password) > maxInputBytes {
		return nil
	}
	if _, err := h.check(ctx, d, password, take); err != nil {
		return err
	}
	h.dummies.Add(1)
	return nil
}

// DummyVerifications counts completed VerifyDummy computations, so tests
// can assert that an unknown-user login really paid for a KDF run.
func (h *Hasher) DummyVerifications() uint64 { return h.dummies.Load() }

// check recomputes d's key for password under the semaphore and compares
// in constant time. take gets the slot (acquire, or a Reservation's).
func (h *Hasher) check(ctx context.Context, d decoded, password string, take func(context.Context) error) (bool, error) {
	if err := take(ctx); err != nil {
		return false, err
	}
	h.collectFreed()
	key := argon2.IDKey([]byte(password), d.salt, d.params.Time, d.params.Memory, d.params.Threads, d.params.KeyLen)
	h.release()
	return subtle.ConstantTimeCompare(key, d.key) == 1, nil
}

// acquire takes a computation slot, gives up when ctx ends, or refuses
// with ErrBusy when the queue of waiters is full.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	if !h.admit() {
		return ErrBusy
	}
	return h.wait(ctx)
}

// admit counts one more caller that will wait for a slot, unless the
// free slots and the queue are all spoken for. Reservations count from
// Reserve until their check gets its slot, so a burst that is refused
// here cannot push an admitted caller out.
func (h *Hasher) admit() bool {
	free := int64(cap(h.sem) - len(h.sem))
	if h.waiting.Add(1) > h.maxQueued+free {
		h.waiting.Add(-1)
		return false
	}
	return true
}

// wait takes a slot for an admitted caller, or gives up when ctx ends;
// either way the caller stops counting as waiting. ctx is checked first
// because select picks at random among ready cases.
func (h *Hasher) wait(ctx context.Context) error {
	defer h.waiting.Add(-1)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
}

// release frees the slot. A big buffer is counted as freed; when the
// hasher has nothing left to do, the freed pages go back to the OS.
func (h *Hasher) release() {
	<-h.sem
	if !h.bigBuffers() {
		return
	}
	h.freed.Add(1)
	if h.idle() {
		h.returnPages()
	}
}

func (h *Hasher) bigBuffers() bool { return uint64(h.params.Memory)*1024 >= collectAbove }

func (h *Hasher) idle() bool { return len(h.sem) == 0 && h.waiting.Load() == 0 }

// collectFreed runs before a computation allocates its argon2 buffer (19
// MiB by default): when buffers were freed since the last collection, it
// collects them first. Left to the pacer they pile up, because its next
// goal doubles whatever was live at the last cycle and during a burst of
// logins that includes the buffers in use: a server's RSS reached 150–160
// MiB (bench/README.md, "Login bursts"). This way at most one freed buffer
// per slot outlives the next allocation. A collection costs about a
// millisecond against the ~25 ms of the computation.
func (h *Hasher) collectFreed() {
	if h.bigBuffers() && h.freed.Swap(0) > 0 {
		runtime.GC()
	}
}

// returnPages hands the heap's free pages back to the OS once a burst is
// over, so the server's RSS does not stay at the burst's peak. One
// goroutine at a time; a request arriving meanwhile is covered by it.
func (h *Hasher) returnPages() {
	if !h.returning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.returning.Store(false)
		h.freed.Store(0)
		debug.FreeOSMemory()
	}()
}

// Reservation is a place in the hasher's queue taken before a check, for
// callers that must learn the hasher is overloaded before they do
// something they cannot take back: a login records its attempt against
// the account first, and an overload refusal after that would count as a
// failed attempt. Use it for one Verify or VerifyDummy, or Release it;
// it is not safe for concurrent use.
type Reservation struct {
	h    *Hasher
	done bool
}

// Reserve takes a place in the queue, or answers ErrBusy at once when
// every slot and place is spoken for (as Verify would).
func (h *Hasher) Reserve() (*Reservation, error) {
	if !h.admit() {
		return nil, ErrBusy
	}
	return &Reservation{h: h}, nil
}

// Release gives the place back if no check used it; calling it after a
// check (or twice) does nothing, so callers can defer it.
func (r *Reservation) Release() {
	if !r.done {
		r.done = true
		r.h.waiting.Add(-1)
	}
}

// take waits for a slot in the reserved place; a used or released
// reservation queues like an unreserved caller.
func (r *Reservation) take(ctx context.Context) error {
	if r.done {
		return r.h.acquire(ctx)
	}
	r.done = true
	return r.h.wait(ctx)
}

// Verify is Hasher.Verify in the reserved place: it never answers ErrBusy.
func (r *Reservation) Verify(ctx context.Context, phc, password string) (ok, needsRehash bool, err error) {
	return r.h.verify(ctx, phc, password, r.take)
}

// VerifyDummy is Hasher.VerifyDummy in the reserved place.
func (r *Reservation) VerifyDummy(ctx context.Context, password string) error {
	return r.h.verifyDummy(ctx, password, r.take)
}
