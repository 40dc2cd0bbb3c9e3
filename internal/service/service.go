// Package service holds Keygate's operations, once: both faces (the JSON
// API in api/ and the web UI in ui/) call these methods, so a rule written
// here holds for both. Every operation takes the calling auth.Principal,
// checks its permission with rbac (and ownership where the role table says
// "own"), runs in one store transaction, writes its audit event in that
// same transaction, and tells the verification cache what changed.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Hooks are called after a transaction that changed something the
// verification path caches has committed.
type Hooks struct {
	// Invalidate drops this replica's cached answers about what changed.
	// Other replicas hear of it through the store's Notify, sent inside the
	// transaction that made the change.
	Invalidate func(ctx context.Context, c Changes)
}

// PasswordHasher hashes and checks passwords (auth/password.Hasher).
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, phc, password string) (ok bool, needsRehash bool, err error)
	VerifyDummy(ctx context.Context, password string) error
	// Reserve takes a place in the hashing queue before anything is
	// recorded for an attempt, so an overload refusal (ErrBusy) comes
	// before the attempt counts, never after.
	Reserve() (*password.Reservation, error)
}

// Options configures a Service.
type Options struct {
	Store  store.Store
	Now    func() time.Time
	Logger *slog.Logger
	Hooks  Hooks
	// Passwords is optional; without it password fields are refused.
	Passwords PasswordHasher
	// Rand is the randomness source for ids and secrets (crypto/rand by
	// default).
	Rand func(b []byte) (int, error)
	// Sessions configures logins.
	Sessions SessionOptions
	// Invitations configures invitations and password resets.
	Invitations InvitationOptions
	// InvalidationChannel is the store notification channel on which
	// changes reach every replica; empty sends none (single instance).
	InvalidationChannel string
	// InstanceID names this replica in its notifications (Changes.Origin).
	InstanceID string
	// Directory configures SCIM provisioning.
	Directory DirectoryPolicy
	// MFA configures second factors.
	MFA MFAOptions
	// Background runs work that must not hold up an answer (the reset
	// mail, whose timing would tell whether an account exists); nil
	// runs it on a goroutine. Drain waits for it either way.
	Background func(run func())
	// ReservedKey reports whether a raw value may not become an API key
	// (the master key: a key row holding it would show its hash in a
	// user's key list and act as that user's key instead of the master
	// key's). Nil reserves nothing.
	ReservedKey func(raw string) bool
}

// Service implements the operations.
type Service struct {
	store     store.Store
	now       func() time.Time
	log       *slog.Logger
	hooks     Hooks
	passwords PasswordHasher
	rand      func(b []byte) (int, error)
	sessions  SessionOptions
	invites   InvitationOptions
	channel   string
	instance  string
	directory DirectoryPolicy
	mfa       MFAOptions
	// turns gives a client address that is being slowed down one
	// password check at a time.
	turns *addrTurns
	bg    func(run func())
	bgWG  *sync.WaitGroup // shared by copies bound to a transaction (compound.go)
	// reserved: see Options.ReservedKey.
	reserved func(raw string) bool
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{store: o.Store, now: o.Now, log: o.Logger, hooks: o.Hooks, passwords: o.Passwords, rand: o.Rand, sessions: o.Sessions,
		reserved: o.ReservedKey,
		channel:  o.InvalidationChannel, instance: o.InstanceID}
	s.invites = o.Invitations
	s.directory = o.Directory
	s.mfa = o.MFA
	s.mfa.defaults()
	if s.invites.TTL == 0 {
		s.invites.TTL = 7 * 24 * time.Hour
	}
	if s.invites.ResetTTL == 0 {
		s.invites.ResetTTL = 30 * time.Minute
	}
	if s.invites.ResetPerEmail == 0 {
		s.invites.ResetPerEmail = 3
	}
	if s.invites.ResetPerIP == 0 {
		s.invites.ResetPerIP = 10
	}
	if s.sessions.TTL == 0 {
		s.sessions.TTL = 24 * time.Hour
	}
	if s.sessions.MaxFailures == 0 {
		s.sessions.MaxFailures = 5
	}
	if s.sessions.Window == 0 {
		s.sessions.Window = 15 * time.Minute
	}
	if s.sessions.AddrFreeFailures == 0 {
		s.sessions.AddrFreeFailures = 10
	}
	if s.sessions.AddrDelay == 0 {
		s.sessions.AddrDelay = 500 * time.Millisecond
	}
	if s.sessions.AddrMaxDelay == 0 {
		s.sessions.AddrMaxDelay = 8 * time.Second
	}
	if s.sessions.Sleep == nil {
		s.sessions.Sleep = sleep
	}
	s.turns = newAddrTurns()
	s.bg, s.bgWG = o.Background, &sync.WaitGroup{}
	if s.bg == nil {
		s.bg = func(run func()) { go run() }
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.rand == nil {
		s.rand = rand.Read
	}
	return s
}

// background runs fn after the caller has answered, with the request's
// metadata (for the audit log) but not its cancellation, bounded by a
// minute so a hung mail server cannot pile up work.
func (s *Service) background(ctx context.Context, fn func(ctx context.Context)) {
	ctx = WithRequestMeta(context.Background(), metaOf(ctx))
	s.bgWG.Add(1)
	s.bg(func() {
		defer s.bgWG.Done()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		fn(ctx)
	})
}

// Drain waits until background work has finished or ctx ends (shutdown,
// tests).
func (s *Service) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.bgWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("service: background work still running: %w", ctx.Err())
	}
}

// Now is the service clock, shared with handlers that need the same time.
func (s *Service) Now() time.Time { return s.now().UTC() }

func (s *Service) newID() string { return uuid.NewString() }

type requestMetaKey struct{}

// RequestMeta is what the audit log records about the HTTP request behind
// an operation.
type RequestMeta struct {
	ClientIP  string
	RequestID string
}

// WithRequestMeta attaches request metadata for audit events.
func WithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, requestMetaKey{}, m)
}

// MetaOf returns the request metadata attached to ctx.
func MetaOf(ctx context.Context) RequestMeta { return metaOf(ctx) }

func metaOf(ctx context.Context) RequestMeta {
	m, _ := ctx.Value(requestMetaKey{}).(RequestMeta)
	return m
}

// audit appends an event inside tx. Before/after summaries are built by
// the caller from non-secret fields only.
func (s *Service) audit(ctx context.Context, tx store.Store, p auth.Principal, action, targetType, targetID string, before, after map[string]any) error {
	m := metaOf(ctx)
	err := tx.AppendAudit(ctx, &store.AuditEvent{
		At: s.Now(), Action: action, ActorID: p.ActorID(), ActorRole: string(p.Role),
		TargetType: targetType, TargetID: targetID, ClientIP: m.ClientIP, RequestID: m.RequestID,
		Before: before, After: after,
	})
	if err != nil {
		return fmt.Errorf("service: audit %s: %w", action, err)
	}
	return nil
}

// require returns a 403 unless p holds perm.
func require(p auth.Principal, perm rbac.Permission) error {
	if p.Can(perm) {
		return nil
	}
	return forbidden(p, perm)
}

func forbidden(p auth.Principal, perm rbac.Permission) error {
	role := string(p.Role)
	if role == "" {
		role = "none"
	}
	return apperr.Forbidden("Your role (%s) is not allowed to do this (requires %s).", role, perm)
}

// notFound converts store.ErrNotFound into a public 404 naming what was
// missing, and passes other errors through.
func notFound(err error, format string, a ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(format, a...).Wrap(err)
	}
	return err
}

// tx runs fn in one transaction and makes what fn records in ch reach
// every cache: the notification to other replicas is sent inside the
// transaction (PostgreSQL delivers it on commit, never for a rollback, and
// a crash after commit cannot lose it), and this replica's cache is
// dropped after the commit, so no reader can reload the old rows into it.
func (s *Service) tx(ctx context.Context, fn func(tx store.Store, ch *Changes) error) error {
	var ch Changes
	err := s.store.Tx(ctx, func(tx store.Store) error {
		ch = Changes{} // an implementation may retry fn
		if err := fn(tx, &ch); err != nil {
			return err
		}
		return s.notify(ctx, tx, ch)
	})
	if err != nil {
		return err
	}
	s.invalidateLocal(ctx, ch)
	return nil
}

// txAnnouncing is s.tx for bodies that collect what they change in their
// own variables: changes is read once fn has succeeded, still inside the
// transaction, so the announcement commits with the write.
func (s *Service) txAnnouncing(ctx context.Context, fn func(tx store.Store) error, changes func() Changes) error {
	return s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if err := fn(tx); err != nil {
			return err
		}
		*ch = changes()
		return nil
	})
}

func (s *Service) notify(ctx context.Context, tx store.Store, ch Changes) error {
	if s.channel == "" || ch.Empty() {
		return nil
	}
	ch.Origin = s.instance
	for _, payload := range ch.Encode(maxNotifyPayload) {
		if err := tx.Notify(ctx, s.channel, payload); err != nil {
			return fmt.Errorf("service: announce change: %w", err)
		}
	}
	return nil
}

// maxNotifyPayload keeps each notification under PostgreSQL's 8000-byte
// limit.
const maxNotifyPayload = 7800

func (s *Service) invalidateLocal(ctx context.Context, ch Changes) {
	if s.hooks.Invalidate != nil && !ch.Empty() {
		s.hooks.Invalidate(ctx, ch)
	}
}
