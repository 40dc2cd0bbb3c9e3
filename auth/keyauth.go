package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// KeyLookup is what API-key authentication reads from the store.
type KeyLookup interface {
	// GetKeyAccess loads a key, its owner, its team and the owner's
	// memberships in one round trip.
	GetKeyAccess(ctx context.Context, hash string) (store.KeyAccess, error)
	TouchKeys(ctx context.Context, lastActive map[string]time.Time) error
}

// KeyAuthOptions configures KeyAuthenticator.
type KeyAuthOptions struct {
	Store  KeyLookup
	Now    func() time.Time
	Logger *slog.Logger
	// TTL bounds how long a positive answer is cached (default 30 s);
	// NegativeTTL how long an unknown key is remembered (default 5 s).
	// Writes invalidate entries at once, so the TTLs only bound staleness
	// when an invalidation is lost.
	TTL         time.Duration
	NegativeTTL time.Duration
	// MaxEntries caps the cache (default 100 000).
	MaxEntries int
}

// KeyAuthenticator authenticates API keys: format check (a Keygate key
// with a bad checksum never reaches the database), then a cached lookup of
// the key, its owner and team. It never runs a slow KDF: keys carry 128+
// bits of entropy, so SHA-256 is enough.
type KeyAuthenticator struct {
	st    KeyLookup
	now   func() time.Time
	log   *slog.Logger
	cache *Cache
	// flights makes concurrent misses for one key cost one load.
	flights singleflight.Group

	touchMu sync.Mutex
	touched map[string]time.Time
}

// NewKeyAuthenticator returns an authenticator for API keys.
func NewKeyAuthenticator(o KeyAuthOptions) *KeyAuthenticator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TTL == 0 {
		o.TTL = 30 * time.Second
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = 5 * time.Second
	}
	return &KeyAuthenticator{st: o.Store, now: o.Now, log: o.Logger,
		cache:   NewCache(o.TTL, o.NegativeTTL, o.MaxEntries, o.Now),
		touched: map[string]time.Time{}}
}

// Cache exposes the verification cache so writes can invalidate it.
func (a *KeyAuthenticator) Cache() *Cache { return a.cache }

// Authenticate implements Authenticator for "sk-" credentials.
func (a *KeyAuthenticator) Authenticate(ctx context.Context, c Credential) (Principal, error) {
	if c.FromCookie {
		return Principal{}, ErrNotMine
	}
	if _, err := apikey.Parse(c.Secret); err != nil {
		if errors.Is(err, apikey.ErrNotAPIKey) {
			return Principal{}, ErrNotMine
		}
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	sum := c.SHA256() // the same digest as apikey.Hash, shared with the master-key check
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	if c.Fresh {
		p, err := a.fresh(ctx, string(buf[:]))
		if err == nil {
			a.touch(p.KeyHash)
		}
		return p, err
	}
	if e, ok := a.cache.GetBytes(buf[:]); ok {
		// The hot path: a cached answer, found without allocating.
		p, err := a.answer(e)
		if err == nil {
			a.touch(p.KeyHash)
		}
		return p, err
	}
	hash := string(buf[:])
	p, err := a.ByHash(ctx, hash)
	if err == nil {
		a.touch(hash)
	}
	return p, err
}

// ByHash resolves a key hash (cached), checking expiry on every call since
// a cached entry may outlive the key. Concurrent misses for one hash share
// one database load; a load that began before an invalidation of its key,
// owner or team is answered but not cached.
func (a *KeyAuthenticator) ByHash(ctx context.Context, hash string) (Principal, error) {
	e, ok := a.cache.Get(hash)
	if !ok {
		epoch := a.cache.Epoch()
		// The epoch is part of the flight's name: a request arriving after
		// an invalidation must not share a load that began before it.
		v, err, _ := a.flights.Do(hash+"@"+strconv.FormatUint(epoch, 10), func() (any, error) {
			// The load serves every caller of the flight, so one caller
			// going away must not fail the others.
			return a.loadAndCache(context.WithoutCancel(ctx), hash, epoch)
		})
		if err != nil {
			return Principal{}, err
		}
		e = v.(Entry)
	}
	return a.answer(e)
}

// fresh answers from the database alone: not from the cache, nor from a
// load another request began (it may predate a revocation).
func (a *KeyAuthenticator) fresh(ctx context.Context, hash string) (Principal, error) {
	e, err := a.loadAndCache(ctx, hash, a.cache.Epoch())
	if err != nil {
		return Principal{}, err
	}
	return a.answer(e)
}

// loadAndCache reads hash's answer from the database and caches it unless
// an invalidation since epoch touched it. An unavailable database is an
// error, never cached, never an allow.
func (a *KeyAuthenticator) loadAndCache(ctx context.Context, hash string, epoch uint64) (Entry, error) {
	started := a.now()
	lctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	e, err := a.load(lctx, hash)
	if err != nil {
		return Entry{}, err
	}
	a.cache.PutIfFresh(hash, e, epoch, started)
	return e, nil
}

// answer turns a cached entry into the principal or its error, checking
// the key's expiry, which a cached entry may outlive.
func (a *KeyAuthenticator) answer(e Entry) (Principal, error) { return entryAnswer(e, a.now()) }

func entryAnswer(e Entry, now time.Time) (Principal, error) {
	if e.Err != nil {
		return Principal{}, e.Err
	}
	if e.ExpiresAt != nil && !now.Before(*e.ExpiresAt) {
		return Principal{}, ErrExpired
	}
	return e.Principal, nil
}

// loadTimeout bounds one shared load (the database layer has its own,
// usually shorter, statement timeout).
const loadTimeout = 10 * time.Second

// ErrNotInTeam: a team key whose owner is no longer a member of the team.
var ErrNotInTeam = fmt.Errorf("%w: the key's owner is no longer a member of its team", ErrBlocked)

// Which of the key, its owner or its team is blocked: each is ErrBlocked
// to every caller; the web UI tells its users which one.
var (
	ErrKeyBlocked   = fmt.Errorf("%w: the key is blocked", ErrBlocked)
	ErrOwnerBlocked = fmt.Errorf("%w: the key's owner is blocked", ErrBlocked)
	ErrTeamBlocked  = fmt.Errorf("%w: the key's team is blocked", ErrBlocked)
)

// KeyPrincipal is what authenticating the key of ka would answer at now:
// its principal, or why the key is refused (expired, blocked, its owner
// or team gone). The web UI shows it as the key's standing, from the same
// code that answers the key's requests.
func KeyPrincipal(ka store.KeyAccess, now time.Time) (Principal, error) {
	return entryAnswer(accessEntry(ka, now), now)
}

// load reads the key, its owner, its team and the owner's membership; an
// answer about the key (unknown, blocked) is returned as a cacheable
// entry, a database failure as err. What it collects follows LiteLLM's
// scoping (see Access).
func (a *KeyAuthenticator) load(ctx context.Context, hash string) (Entry, error) {
	ka, err := a.st.GetKeyAccess(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Entry{Err: ErrInvalid}, nil
	}
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return accessEntry(ka, a.now()), nil
}

// accessEntry turns a loaded key into a cacheable answer: the principal,
// or the error to repeat.
func accessEntry(ka store.KeyAccess, now time.Time) Entry {
	k := ka.Key
	e := Entry{ExpiresAt: k.ExpiresAt, UserID: k.UserID, TeamID: k.TeamID}
	if k.Blocked {
		e.Err = ErrKeyBlocked
		return e
	}
	p := Principal{Method: MethodAPIKey, UserID: k.UserID, KeyHash: k.Hash, KeyAlias: k.Alias, KeyTeamID: k.TeamID,
		KeyType: k.KeyType, Role: rbac.RoleNone}
	acc := &Access{KeyModels: k.Models, Routes: k.AllowedRoutes}
	acc.RateLimits = appendRateLimit(acc.RateLimits, "key", BudgetID("key", k.Hash, "", ""), k.TPMLimit, k.RPMLimit)
	acc.Budgets = appendBudget(acc.Budgets, "key", BudgetID("key", k.Hash, "", ""), k.Spend, k.MaxBudget, k.BudgetResetAt, now)
	if k.UserID != "" {
		u := ka.Owner
		if u == nil {
			e.Err = ErrInvalid // the owner is gone
			return e
		}
		if u.Disabled {
			e.Err = ErrOwnerBlocked
			return e
		}
		p.Role, p.Email = rbac.Role(u.Role), u.Email
		acc.RateLimits = appendRateLimit(acc.RateLimits, "user", BudgetID("user", "", u.ID, ""), u.TPMLimit, u.RPMLimit)
		if k.TeamID == "" {
			acc.UserModels = u.Models
			acc.Budgets = appendBudget(acc.Budgets, "user", BudgetID("user", "", u.ID, ""), u.Spend, u.MaxBudget, u.BudgetResetAt, now)
		}
		member := false
		for _, m := range ka.Memberships {
			p.TeamIDs = append(p.TeamIDs, m.TeamID)
			if m.TeamID == k.TeamID {
				member = true
				if m.MaxBudgetInTeam != nil {
					acc.Budgets = append(acc.Budgets, Budget{Scope: "team member", ID: BudgetID("team member", "", u.ID, k.TeamID),
						Spend: m.Spend, Max: *m.MaxBudgetInTeam})
				}
			}
		}
		if k.TeamID != "" && !member {
			e.Err = ErrNotInTeam
			return e
		}
	}
	if k.TeamID != "" {
		t := ka.Team
		if t == nil {
			e.Err = ErrInvalid // the team is gone
			return e
		}
		if t.Blocked {
			e.Err = ErrTeamBlocked
			return e
		}
		acc.TeamModels = t.Models
		acc.RateLimits = appendRateLimit(acc.RateLimits, "team", BudgetID("team", "", "", t.ID), t.TPMLimit, t.RPMLimit)
		acc.Budgets = appendBudget(acc.Budgets, "team", BudgetID("team", "", "", t.ID), t.Spend, t.MaxBudget, t.BudgetResetAt, now)
		for i := range acc.Budgets {
			// A member's budget runs on the team's period.
			if acc.Budgets[i].Scope == "team member" && t.BudgetResetAt != nil && !now.Before(*t.BudgetResetAt) {
				acc.Budgets[i].ResetDue = true
			}
		}
	}
	p.Access = acc
	e.Principal = p.withHeaderValues()
	return e
}

func appendBudget(bs []Budget, scope, id string, spend float64, max *float64, resetAt *time.Time, now time.Time) []Budget {
	if max == nil {
		return bs
	}
	return append(bs, Budget{Scope: scope, ID: id, Spend: spend, Max: *max, ResetDue: resetAt != nil && !now.Before(*resetAt)})
}

func (a *KeyAuthenticator) touch(hash string) {
	a.touchMu.Lock()
	a.touched[hash] = a.now()
	a.touchMu.Unlock()
}

// FlushLastActive writes the batched last-active times; RunLastActive
// calls it periodically so verification never writes per request.
func (a *KeyAuthenticator) FlushLastActive(ctx context.Context) error {
	a.touchMu.Lock()
	batch := a.touched
	a.touched = map[string]time.Time{}
	a.touchMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := a.st.TouchKeys(ctx, batch); err != nil {
		return fmt.Errorf("auth: record last active: %w", err)
	}
	return nil
}

// RunLastActive flushes last-active times every interval until ctx ends,
// then once more.
func (a *KeyAuthenticator) RunLastActive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := a.FlushLastActive(fctx); err != nil {
				a.log.Warn("flush last_active", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := a.FlushLastActive(ctx); err != nil {
				a.log.Warn("flush last_active", "err", err)
			}
		}
	}
}
