package service

import (
	"context"

	"github.com/keygate/keygate/store"
)

// Compound operations (a user with its first key and invitation, an SSO
// login with its session) run their parts inside one transaction. The
// parts are the service's own operations, run on a copy of the Service
// bound to the transaction: their own Tx calls join it (store.Store.Tx),
// and the cache-invalidation hooks they fire are held back until the
// transaction has committed, so no replica drops — and re-reads — an
// entry before the change is visible.

// pendingHooks collects the local cache drops of the parts; their
// notifications to other replicas are sent inside the transaction already
// (s.tx's Notify joins it), like every other change.
type pendingHooks struct {
	changes Changes
}

// within returns a copy of s whose store is tx and whose local cache
// drops are collected into the returned pendingHooks; call s.fire after
// commit.
func (s *Service) within(tx store.Store) (*Service, *pendingHooks) {
	ph := &pendingHooks{}
	c := *s
	c.store = tx
	c.hooks = Hooks{Invalidate: func(_ context.Context, ch Changes) {
		ph.changes.Key(ch.Keys...)
		ph.changes.User(ch.Users...)
		ph.changes.Team(ch.Teams...)
		ph.changes.Session(ch.Sessions...)
	}}
	return &c, ph
}

// fire drops this replica's cached answers collected by within.
func (s *Service) fire(ctx context.Context, ph *pendingHooks) {
	s.invalidateLocal(ctx, ph.changes)
}
