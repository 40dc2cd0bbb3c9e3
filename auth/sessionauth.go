package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/auth/session"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// SessionLookup is what session authentication reads from the store.
type SessionLookup interface {
	GetSession(ctx context.Context, id string) (store.Session, error)
	GetUser(ctx context.Context, id string) (store.User, error)
	ListMembershipsByUser(ctx context.Context, userID string) ([]store.Membership, error)
}

// TokenVerifier checks session JWTs (auth/session.Issuer).
type TokenVerifier interface {
	// VerifyDigest is Verify given sum = SHA-256(token); the claims'
	// slices may be shared and are not modified.
	VerifyDigest(ctx context.Context, token string, sum [sha256.Size]byte) (session.Claims, error)
	VerifyExpired(ctx context.Context, token string) (session.Claims, error)
}

// SessionAuthenticator authenticates session JWTs: the signature and
// claims (pinned algorithm), then the server-side session row and the
// user's current state, so a revoked session, a disabled or deleted user
// or a role change fails at once even though the JWT itself is still
// unexpired. Row lookups are cached and invalidated like API keys.
type SessionAuthenticator struct {
	st     SessionLookup
	tokens TokenVerifier
	cache  *Cache
	now    func() time.Time
}

// NewSessionAuthenticator returns a session authenticator; cache may be
// shared with nothing else (its keys are session ids).
func NewSessionAuthenticator(st SessionLookup, tokens TokenVerifier, cache *Cache, now func() time.Time) *SessionAuthenticator {
	if now == nil {
		now = time.Now
	}
	return &SessionAuthenticator{st: st, tokens: tokens, cache: cache, now: now}
}

// Cache exposes the session cache for invalidation.
func (a *SessionAuthenticator) Cache() *Cache { return a.cache }

// Authenticate implements Authenticator for JWT-shaped credentials.
//
// The token's digest is the one the chain computed, so a token verified
// moments ago costs one lookup in the signature cache; its shape is
// checked only when it is not in that cache.
func (a *SessionAuthenticator) Authenticate(ctx context.Context, c Credential) (Principal, error) {
	claims, err := a.tokens.VerifyDigest(ctx, c.Secret, c.SHA256())
	if err != nil {
		if !session.LooksLikeJWT(c.Secret) {
			return Principal{}, ErrNotMine
		}
		return Principal{}, tokenError(err)
	}
	return a.principal(ctx, claims, c.FromCookie, c.Fresh)
}

// Refreshable resolves an expired (but otherwise valid) token whose
// session is still alive; the caller then issues a fresh token. Used only
// for the browser cookie.
func (a *SessionAuthenticator) Refreshable(ctx context.Context, token string) (Principal, error) {
	claims, err := a.tokens.VerifyExpired(ctx, token)
	if err != nil {
		return Principal{}, tokenError(err)
	}
	return a.principal(ctx, claims, true, true)
}

func tokenError(err error) error {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, session.ErrExpiredToken):
		return fmt.Errorf("%w: %w", ErrExpired, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// principal resolves the token's session; fresh reads it from the
// database even when it is cached (Credential.Fresh).
func (a *SessionAuthenticator) principal(ctx context.Context, claims session.Claims, fromCookie, fresh bool) (Principal, error) {
	var e Entry
	ok := false
	if !fresh {
		e, ok = a.cache.Get(claims.SessionID)
	}
	if !ok {
		epoch, started := a.cache.Epoch(), a.now()
		var err error
		if e, err = a.load(ctx, claims.SessionID); err != nil {
			return Principal{}, err
		}
		a.cache.PutIfFresh(claims.SessionID, e, epoch, started)
	}
	if e.Err != nil {
		return Principal{}, e.Err
	}
	if e.ExpiresAt != nil && !a.now().Before(*e.ExpiresAt) {
		return Principal{}, ErrExpired
	}
	p := e.Principal
	if p.UserID != claims.Subject || string(p.Role) != claims.Role {
		// The token was minted for another user or role than the session
		// now carries: never honour it.
		return Principal{}, ErrInvalid
	}
	p.ViaCookie = fromCookie
	return p, nil
}

func (a *SessionAuthenticator) load(ctx context.Context, sid string) (Entry, error) {
	s, err := a.st.GetSession(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return Entry{Err: ErrInvalid}, nil
	}
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	exp := s.ExpiresAt
	e := Entry{ExpiresAt: &exp, UserID: s.UserID}
	if s.RevokedAt != nil {
		e.Err = ErrInvalid
		return e, nil
	}
	u, err := a.st.GetUser(ctx, s.UserID)
	if errors.Is(err, store.ErrNotFound) {
		e.Err = ErrInvalid
		return e, nil
	}
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if u.Disabled {
		e.Err = ErrBlocked
		return e, nil
	}
	if u.Role != s.Role {
		e.Err = ErrInvalid
		return e, nil
	}
	ms, err := a.st.ListMembershipsByUser(ctx, u.ID)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p := Principal{Method: MethodSession, UserID: u.ID, Email: u.Email, Role: rbac.Role(u.Role), SessionID: s.ID}
	for _, m := range ms {
		p.TeamIDs = append(p.TeamIDs, m.TeamID)
	}
	p.Access = &Access{UserModels: u.Models}
	p.Access.Budgets = appendBudget(nil, "user", BudgetID("user", "", u.ID, ""), u.Spend, u.MaxBudget, u.BudgetResetAt, a.now())
	// The user's rate limits bind their sessions too, in the same buckets
	// as their keys.
	p.Access.RateLimits = appendRateLimit(nil, "user", BudgetID("user", "", u.ID, ""), u.TPMLimit, u.RPMLimit)
	e.Principal = p.withHeaderValues()
	return e, nil
}
