// Package budget holds this instance's reservations against spend
// budgets. A forwarded LLM call reserves its estimated cost against every
// budget that applies (key, owner, team, member) before it is sent, and
// holds its real cost until the recorded spend is part of the cached
// budget figures; so concurrent calls cannot all pass a check that each,
// alone, would pass. Reservations are per instance: with N replicas a
// budget can be overshot by at most what N instances each admit (README,
// "Budgets and reservations").
package budget

import (
	"sync"

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
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{flight: map[string]float64{}, pending: map[string]float64{}} }

// Hold is one call's reservation.
type Hold struct {
	l       *Ledger
	ids     []string
	amount  float64
	settled bool
	done    bool
}

// Reserve holds est against every budget in budgets, or refuses (429
// budget_exceeded) when one cannot take it. A budget takes a call when
// spend + what finished calls cost + what calls in flight may cost + est
// stays within it — or, when no call is in flight against it and it is not
// used up (counting the finished calls), when the call would be the only
// one in flight: a budget never stops a lone call that LiteLLM would let
// through, and the most it can be overshot on this instance is that one
// call's real cost beyond its estimate. Budgets whose period has ended
// (reset pending) are skipped.
func (l *Ledger) Reserve(budgets []auth.Budget, est float64) (*Hold, error) {
	if est < 0 {
		est = 0
	}
	h := &Hold{l: l, amount: est}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range budgets {
		if b.ResetDue || b.ID == "" {
			continue
		}
		flight, pending := l.flight[b.ID], l.pending[b.ID]
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
	defer h.l.mu.Unlock()
	if h.done || h.settled {
		return
	}
	for _, id := range h.ids {
		h.l.add(h.l.flight, id, -h.amount)
		h.l.add(h.l.pending, id, real)
	}
	h.amount, h.settled = real, true
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
	m := h.l.flight
	if h.settled {
		m = h.l.pending
	}
	for _, id := range h.ids {
		h.l.add(m, id, -h.amount)
	}
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
