package metrics

import (
	"context"
	"sync"

	"github.com/keygate/keygate/store"
)

// InstrumentStore returns st wrapped so that every audit event and every
// usage record written through it is counted (ObserveAudit,
// ObserveSpend). The audit log already announces every security-relevant
// event — logins, lockouts, key and user changes — in the transaction that
// makes the change, so counting it gives those metrics without a metrics
// call in the service layer. Writes inside Tx are counted only after the
// transaction commits: a rolled-back change counts nothing.
//
// Give the wrapped store to the service layer only; the verification hot
// path reads the plain store.
func (m *Metrics) InstrumentStore(st store.Store) store.Store {
	return &instrumented{Store: st, m: m}
}

// instrumented embeds the store, so methods added to store.Store later
// pass through untouched.
type instrumented struct {
	store.Store
	m *Metrics
	// pending is set inside a transaction: events wait there for commit.
	pending *pending
}

type pending struct {
	mu     sync.Mutex
	audits []string
	spends []float64
}

func (p *pending) reset() {
	p.mu.Lock()
	p.audits, p.spends = nil, nil
	p.mu.Unlock()
}

func (i *instrumented) AppendAudit(ctx context.Context, e *store.AuditEvent) error {
	if err := i.Store.AppendAudit(ctx, e); err != nil {
		return err
	}
	if i.pending == nil {
		i.m.ObserveAudit(e.Action)
		return nil
	}
	i.pending.mu.Lock()
	i.pending.audits = append(i.pending.audits, e.Action)
	i.pending.mu.Unlock()
	return nil
}

func (i *instrumented) RecordSpend(ctx context.Context, e store.SpendEntry) error {
	if err := i.Store.RecordSpend(ctx, e); err != nil {
		return err
	}
	if i.pending == nil {
		i.m.ObserveSpend(e.Spend)
		return nil
	}
	i.pending.mu.Lock()
	i.pending.spends = append(i.pending.spends, e.Spend)
	i.pending.mu.Unlock()
	return nil
}

func (i *instrumented) RecordSpendBatch(ctx context.Context, es []store.SpendEntry) ([]store.SpendEntry, error) {
	done, err := i.Store.RecordSpendBatch(ctx, es)
	if err != nil {
		return nil, err
	}
	if i.pending == nil {
		for _, e := range done {
			i.m.ObserveSpend(e.Spend)
		}
		return done, nil
	}
	i.pending.mu.Lock()
	for _, e := range done {
		i.pending.spends = append(i.pending.spends, e.Spend)
	}
	i.pending.mu.Unlock()
	return done, nil
}

// Tx wraps the transaction-bound store the same way. A nested Tx joins
// the outer transaction (as store.Store specifies) and so shares its
// pending events; only the outermost Tx flushes them, after commit.
func (i *instrumented) Tx(ctx context.Context, fn func(store.Store) error) error {
	if i.pending != nil {
		return i.Store.Tx(ctx, func(tx store.Store) error {
			return fn(&instrumented{Store: tx, m: i.m, pending: i.pending})
		})
	}
	p := &pending{}
	err := i.Store.Tx(ctx, func(tx store.Store) error {
		p.reset() // an implementation may retry fn
		return fn(&instrumented{Store: tx, m: i.m, pending: p})
	})
	if err != nil {
		return err
	}
	for _, a := range p.audits {
		i.m.ObserveAudit(a)
	}
	for _, s := range p.spends {
		i.m.ObserveSpend(s)
	}
	return nil
}
