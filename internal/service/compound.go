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

// pendingHooks collects hook calls made inside a transaction.
type pendingHooks struct {
	keys, users, sessions []string
}

// within returns a copy of s whose store is tx and whose hooks are
// collected into the returned pendingHooks; call s.fire after commit.
func (s *Service) within(tx store.Store) (*Service, *pendingHooks) {
	ph := &pendingHooks{}
	c := *s
	c.store = tx
	c.hooks = Hooks{
		KeysChanged:     func(_ context.Context, hashes ...string) { ph.keys = append(ph.keys, hashes...) },
		UserChanged:     func(_ context.Context, id string) { ph.users = append(ph.users, id) },
		SessionsChanged: func(_ context.Context, ids ...string) { ph.sessions = append(ph.sessions, ids...) },
	}
	return &c, ph
}

// fire runs the hook calls collected by within.
func (s *Service) fire(ctx context.Context, ph *pendingHooks) {
	s.keysChanged(ctx, ph.keys...)
	s.userChanged(ctx, ph.users...)
	s.sessionsChanged(ctx, ph.sessions...)
}
