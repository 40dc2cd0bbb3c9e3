// Package budget holds this instance's reservations against spend
// budgets. A forwarded LLM call reserves its estimated cost against every
// budget that applies (key, owner, team, member) before it is sent, and
// holds its real cost until the recorded spend is part of the cached
// budget figures; so concurrent calls cannot all pass a check that each,
// alone, would pass. The Ledger holds this instance's reservations; with
// replicas, Shared also takes each in the database, so that together they
// keep the bound one instance keeps (README, "Budgets and reservations").
package budget

import (
	"errors"
	"sync"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
)

// Ledger tracks amounts held against budgets by ID (auth.Budget.ID):
// estimates of calls in flight, and real costs of finished calls whose
// spend is not yet in the cached budget figures.
type Ledger struct {
	mu      sync.Mutex
	flight  map[string]float64
	pending map[string]float64

	// A released real cost is in the cached figures from then on, but a
	// caller may hold budget figures read before it got there (a
	// principal authenticated, or loaded from the database, just before
	// the recording). Releases are numbered; a Reserve given the number
	// current when its figures were read counts the later ones as still
	// held.
	epoch    uint64
	released map[string][]release
	count    int    // entries in released
	floor    uint64 // releases up to floor have been forgotten
	now      func() time.Time
}

type release struct {
	epoch  uint64
	at     time.Time
	amount float64
}

// Bounds on the releases remembered: a caller whose figures are older
// than what is remembered gets ErrStale and reads them again.
const (
	releaseMemory = 2 * time.Minute
	maxReleases   = 1 << 16
)

// ErrStale: the budget figures given to Reserve were read before releases
// the ledger no longer remembers; read them again (re-authenticate) and
// retry with a fresh Epoch.
var ErrStale = errors.New("budget: budget figures older than the ledger remembers")

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{flight: map[string]float64{}, pending: map[string]float64{}, released: map[string][]release{}, now: time.Now}
}

// Epoch numbers the releases so far: take it before reading the budget
// figures a Reserve will be given.
func (l *Ledger) Epoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Hold is one call's reservation.
type Hold struct {
	l       *Ledger
	ids     []string
	amount  float64
	settled bool
	done    bool
	// shared and sharedID: the call's hold in the database (Shared.Take),
	// if it has one.
	shared   *Shared
	sharedID string
}

// SharedID names the call's hold in the database ("" when it has none):
// the spend entry carries it, so recording the spend ends the hold.
func (h *Hold) SharedID() string {
	if h == nil {
		return ""
	}
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	return h.sharedID
}

// Reserve holds est against every budget in budgets, or refuses (429
// budget_exceeded) when one cannot take it. A budget takes a call when
// spend + what finished calls cost + what calls in flight may cost + est
// stays within it — or, when no call is in flight against it and it is not
// used up (counting the finished calls), when the call would be the only
// one in flight: a budget never stops a lone call that LiteLLM would let
// through, and the most it can be overshot on this instance is that one
// call's real cost beyond its estimate. Budgets whose period has ended
// (reset pending) are skipped. since is the Epoch taken before budgets
// were read: costs released after it count as pending, as budgets may not
// show them yet.
func (l *Ledger) Reserve(budgets []auth.Budget, est float64, since uint64) (*Hold, error) {
	if est < 0 {
		est = 0
	}
	h := &Hold{l: l, amount: est}
	l.mu.Lock()
	defer l.mu.Unlock()
	if since < l.floor {
		return nil, ErrStale
	}
	for _, b := range budgets {
		if b.ResetDue || b.ID == "" {
			continue
		}
		flight, pending := l.flight[b.ID], l.pending[b.ID]+l.releasedSince(b.ID, since)
		spent := b
		spent.Spend += pending
		fits := spent.Spend+flight+est <= b.Max || (flight == 0 && !access.Exhausted(spent))
		if !fits {
			held := flight + pending
			e := apperr.Forbidden("Budget exceeded: the %s has %.4f left of its %.4f budget and %.4f is reserved by calls in progress; this call may cost up to %.4f.",
				b.Scope, max(b.Max-b.Spend, 0), b.Max, held, est)
			e.Kind = apperr.KindBudgetExceeded
			return nil, e
		}
		h.ids = append(h.ids, b.ID)
	}
	for _, id := range h.ids {
		l.flight[id] += est
	}
	return h, nil
}

// Settle ends the call's flight: its estimate is replaced by its real
// cost, which stays held, as spent, until Release (the recorded spend is
// not yet in the cached figures).
func (h *Hold) Settle(real float64) {
	if h == nil {
		return
	}
	h.l.mu.Lock()
	if h.done || h.settled {
		h.l.mu.Unlock()
		return
	}
	for _, id := range h.ids {
		h.l.add(h.l.flight, id, -h.amount)
		h.l.add(h.l.pending, id, real)
	}
	h.amount, h.settled = real, true
	shared, id := h.shared, h.sharedID
	h.l.mu.Unlock()
	if shared != nil {
		shared.settle(id, real) // a database write: not under the ledger's lock
	}
}

// Release drops the hold: the call failed, or its spend is now counted in
// the budget figures. Calling it again does nothing.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.done {
		return
	}
	h.done = true
	if h.shared != nil {
		// Unsettled: the call ends unbilled, delete its database hold.
		// Settled: the spend's recording deleted it (or it expires).
		h.shared.end(h.sharedID, !h.settled)
	}
	if !h.settled {
		for _, id := range h.ids {
			h.l.add(h.l.flight, id, -h.amount)
		}
		return
	}
	h.l.epoch++
	at := h.l.now()
	for _, id := range h.ids {
		h.l.add(h.l.pending, id, -h.amount)
		h.l.remember(id, release{epoch: h.l.epoch, at: at, amount: h.amount})
	}
}

// remember keeps a release for the Reserves whose figures predate it,
// forgetting what is older than releaseMemory, or everything when too
// much is remembered (those Reserves then get ErrStale).
func (l *Ledger) remember(id string, r release) {
	if r.amount <= 0 {
		return
	}
	rs := l.released[id]
	drop := 0
	for drop < len(rs) && r.at.Sub(rs[drop].at) > releaseMemory {
		l.floor = max(l.floor, rs[drop].epoch)
		drop++
	}
	rs = append(rs[drop:], r)
	l.count += 1 - drop
	l.released[id] = rs
	if l.count > maxReleases {
		clear(l.released)
		l.count, l.floor = 0, l.epoch
	}
}

// releasedSince sums the costs released against id after epoch since.
func (l *Ledger) releasedSince(id string, since uint64) float64 {
	rs := l.released[id]
	sum := 0.0
	for i := len(rs) - 1; i >= 0 && rs[i].epoch > since; i-- {
		sum += rs[i].amount
	}
	return sum
}

// add changes m[id] by d, forgetting amounts that reach zero.
func (l *Ledger) add(m map[string]float64, id string, d float64) {
	if v := m[id] + d; v > 1e-12 {
		m[id] = v
	} else {
		delete(m, id)
	}
}

// Held returns what is held against a budget, in flight and finished
// (tests, metrics).
func (l *Ledger) Held(id string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flight[id] + l.pending[id]
}
