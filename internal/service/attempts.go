package service

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/store"
)

// Password guessing is limited twice, with different rules (README,
// "Security"):
//
//   - per account: every attempt is recorded before its password is
//     checked, in one atomic step with the count (store.TakeLoginAttempt),
//     so at most MaxFailures attempts per Window are ever evaluated,
//     however a burst is spread over connections or replicas;
//   - per client address: failures slow the address down progressively,
//     one check at a time, because one address may be a whole office
//     behind NAT (or a proxy not listed in KEYGATE_TRUSTED_PROXIES). A
//     flood from that address would still hold everyone behind it, so a
//     browser that signed in to an account before (a device cookie,
//     internal/websession; OWASP's "device cookies") skips the slow-down
//     for that account, and the others are told they are being slowed,
//     after a bounded wait, never that they are locked.

// tooMany is the 429 of a full window that frees up at oldest + window.
func tooMany(msg string, oldest time.Time, window time.Duration, now time.Time) error {
	secs := int(math.Max(1, math.Ceil(oldest.Add(window).Sub(now).Seconds())))
	e := apperr.Invalid("%s; try again in %d seconds.", msg, secs)
	e.Kind = apperr.KindRateLimited
	e.RetryAfterSeconds = secs
	return e
}

// takeAttempt records one attempt of subject before its secret is
// checked; a full window is a 429.
func (s *Service) takeAttempt(ctx context.Context, subject string, limit int64, window time.Duration, msg string) (store.AttemptWindow, error) {
	now := s.Now()
	w, err := s.store.TakeLoginAttempt(ctx, subject, now, now.Add(-window), limit)
	if err != nil {
		return w, err
	}
	if !w.Taken {
		return w, tooMany(msg, w.Oldest, window, now)
	}
	return w, nil
}

// addrDelay is the wait before a password check from an address with n
// recent failures: none for the first AddrFreeFailures, then AddrDelay
// doubling per failure up to AddrMaxDelay.
func (o SessionOptions) addrDelay(n int64) time.Duration {
	over := n - o.AddrFreeFailures
	if over < 0 {
		return 0
	}
	d := o.AddrDelay
	for i := int64(0); i < over && d < o.AddrMaxDelay; i++ {
		d *= 2
	}
	return min(d, o.AddrMaxDelay)
}

// slowAddress waits as long as the client address's recent failures ask
// for, holding the address's turn, so parallel requests cannot share one
// wait. The returned release must be called after the password check.
// trusted (a valid device cookie for the account being signed in to)
// skips it.
func (s *Service) slowAddress(ctx context.Context, ip string, trusted bool) (release func(), err error) {
	none := func() {}
	if ip == "" || trusted {
		return none, nil
	}
	n, _, err := s.store.CountLoginFailures(ctx, addrSubject(ip), s.Now().Add(-s.sessions.Window))
	if err != nil {
		return nil, err
	}
	d := s.sessions.addrDelay(n)
	if d == 0 {
		return none, nil
	}
	// A turn that does not come within the longest delay is a flood from
	// this address: answer 429 rather than queue without end. Nothing is
	// locked, so the answer says to retry, not that logins failed.
	wctx, cancel := context.WithTimeout(ctx, s.sessions.AddrMaxDelay)
	defer cancel()
	release, err = s.turns.acquire(wctx, ip)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("service: waiting for the address's turn: %w", ctx.Err())
		}
		secs := int(math.Ceil(s.sessions.AddrMaxDelay.Seconds()))
		e := apperr.Invalid("Sign-ins from your network are being slowed down after many failed attempts; retry in %d seconds.", secs)
		e.Kind = apperr.KindRateLimited
		e.RetryAfterSeconds = secs
		return nil, e
	}
	if err := s.sessions.Sleep(ctx, d); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

func addrSubject(ip string) string { return "ip:" + ip }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addrTurns hands out one turn per client address at a time (in this
// process; each replica slows an address on its own).
type addrTurns struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	slot  chan struct{}
	users int // holders and waiters; the entry goes at zero
}

func newAddrTurns() *addrTurns { return &addrTurns{m: map[string]*turn{}} }

func (a *addrTurns) acquire(ctx context.Context, key string) (func(), error) {
	a.mu.Lock()
	t := a.m[key]
	if t == nil {
		t = &turn{slot: make(chan struct{}, 1)}
		a.m[key] = t
	}
	t.users++
	a.mu.Unlock()
	leave := func() {
		a.mu.Lock()
		if t.users--; t.users == 0 {
			delete(a.m, key)
		}
		a.mu.Unlock()
	}
	select {
	case t.slot <- struct{}{}:
		return func() { <-t.slot; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
