package session

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/store"
)

// KeyStore is the part of store.SigningKeys the keyring needs (the SQL
// implementation lives in store/gormstore). All replicas share it: that is
// how a token minted by one replica verifies on another.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k *store.SigningKey) error
	// ListSigningKeys returns keys with VerifyUntil after now, newest first.
	ListSigningKeys(ctx context.Context, now time.Time) ([]store.SigningKey, error)
	UpdateSigningKey(ctx context.Context, kid string, fn func(*store.SigningKey) error) (store.SigningKey, error)
}

// Defaults and fixed margins of the keyring.
const (
	DefaultRotateEvery = 30 * 24 * time.Hour
	DefaultTokenTTL    = 15 * time.Minute
	// RetireGrace is added to TokenTTL to decide how long a retired key
	// stays verifiable (and in the JWKS) after it stops signing. It covers
	// replicas that have not yet seen the rotation (they reload at least
	// every refreshEvery) and small clock differences.
	RetireGrace = time.Minute
	// refreshEvery: Mint reloads the keys when its view is older than this,
	// so a replica notices another replica's rotation well within
	// RetireGrace.
	refreshEvery = 20 * time.Second
	// maxStale: if reloading fails (database down) Mint keeps signing with
	// the key it knows only while its view is younger than this; after
	// that a rotation elsewhere could have retired the key and tokens would
	// outlive it.
	maxStale = 45 * time.Second
	// DefaultReloadEvery bounds reloads triggered from outside (unknown
	// kid, JWKS request) so garbage tokens cannot hammer the database.
	DefaultReloadEvery = time.Second
)

// KeyringOptions configures a Keyring. Zero values take the defaults.
type KeyringOptions struct {
	// Algorithm is AlgES256 (default) or AlgRS256. Only keys of this
	// algorithm sign, and Verify accepts only this algorithm.
	Algorithm string
	// RotateEvery is the age at which RotateIfDue replaces the signing key.
	// A key also stops signing by itself at twice this age, so a replica
	// whose rotation loop never runs still rotates (on its next Mint).
	RotateEvery time.Duration
	// TokenTTL is the lifetime of minted tokens. A retired key stays in the
	// JWKS for TokenTTL + RetireGrace after it stops signing.
	TokenTTL time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Rand supplies token ids (default crypto/rand). Since Go 1.26 key
	// generation and signatures always use the system CSPRNG.
	Rand io.Reader
	// ReloadEvery: see DefaultReloadEvery.
	ReloadEvery time.Duration
}

// Keyring holds the signing keys: the current signer of the configured
// algorithm and every key still verifiable. It is safe for concurrent use;
// lookups read an immutable snapshot without locking.
type Keyring struct {
	ks          KeyStore
	sealer      *Sealer
	alg         string
	rotateEvery time.Duration
	ttl         time.Duration
	reloadEvery time.Duration
	now         func() time.Time
	rand        io.Reader
	born        time.Time // monotonic base for staleness and rate limits

	snap atomic.Pointer[snapshot]

	mu             sync.Mutex // serialises reloads and key changes; guards below
	material       map[string]*keyMaterial
	privs          map[string]crypto.Signer
	lastLimited    time.Duration // since born, of the last rate-limited reload
	lastLimitedErr error
	limitedOnce    bool
}

// liveKey is a stored key with the times in force at the last reload.
type liveKey struct {
	*keyMaterial
	createdAt, notAfter, verifyUntil time.Time
}

// snapshot is an immutable view of the store; reloads replace it whole.
type snapshot struct {
	keys      map[string]*liveKey
	ordered   []*liveKey // newest first
	signer    *liveKey
	signerKey crypto.Signer
	signerErr error // why the newest signing candidate could not be opened
	badKeys   error // stored rows that could not be parsed
	loaded    time.Duration
}

// NewKeyring checks opts and returns a keyring with nothing loaded yet;
// call Ensure before serving.
func NewKeyring(ks KeyStore, sealer *Sealer, opts KeyringOptions) (*Keyring, error) {
	if ks == nil || sealer == nil {
		return nil, errors.New("session: NewKeyring needs a KeyStore and a Sealer")
	}
	k := &Keyring{
		ks: ks, sealer: sealer, alg: opts.Algorithm,
		rotateEvery: opts.RotateEvery, ttl: opts.TokenTTL, reloadEvery: opts.ReloadEvery,
		now: opts.Now, rand: opts.Rand, born: time.Now(),
		material: map[string]*keyMaterial{}, privs: map[string]crypto.Signer{},
	}
	if k.alg == "" {
		k.alg = AlgES256
	}
	if k.alg != AlgES256 && k.alg != AlgRS256 {
		return nil, fmt.Errorf("session: unsupported signing algorithm %q (want ES256 or RS256)", k.alg)
	}
	if k.rotateEvery == 0 {
		k.rotateEvery = DefaultRotateEvery
	}
	if k.ttl == 0 {
		k.ttl = DefaultTokenTTL
	}
	if k.reloadEvery == 0 {
		k.reloadEvery = DefaultReloadEvery
	}
	if k.rotateEvery < 0 || k.ttl < 0 || k.reloadEvery < 0 {
		return nil, errors.New("session: negative keyring duration")
	}
	if k.ttl > k.rotateEvery {
		return nil, errors.New("session: TokenTTL must not exceed RotateEvery")
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.rand == nil {
		k.rand = rand.Reader
	}
	return k, nil
}

// Algorithm is the configured signing algorithm.
func (k *Keyring) Algorithm() string { return k.alg }

// TokenTTL is the configured token lifetime.
func (k *Keyring) TokenTTL() time.Duration { return k.ttl }

func (k *Keyring) mono() time.Duration { return time.Since(k.born) }

// Ensure loads the keys and, when none of the configured algorithm can sign
// now, creates one. Two replicas racing here may both create a key; both
// keys then sign and verify everywhere, because verification uses every
// key in the store. Ensure also reports stored keys that cannot be parsed
// and a signing key that cannot be decrypted (wrong operator secret), so a
// misconfigured replica fails at startup instead of at the first login.
func (k *Keyring) Ensure(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.ensureLocked(ctx); err != nil {
		return err
	}
	return k.snap.Load().badKeys
}

// Reload re-reads the keys from the store.
func (k *Keyring) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked(ctx)
}

// Rotate creates a new signing key and retires the ones that were signing:
// their NotAfter becomes now and their VerifyUntil now + TokenTTL +
// RetireGrace, so tokens they signed keep verifying until they expire.
func (k *Keyring) Rotate(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rotateLocked(ctx)
}

// RotateIfDue rotates when the current signing key is at least RotateEvery
// old (or creates one when none can sign) and reports whether it did.
// Run it periodically on every replica; a near-simultaneous rotation by
// two replicas leaves two valid new keys, which is harmless.
func (k *Keyring) RotateIfDue(ctx context.Context) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(ctx); err != nil {
		return false, err
	}
	s := k.snap.Load()
	if s.signer == nil {
		return k.ensureLocked(ctx)
	}
	if k.now().Sub(s.signer.createdAt) < k.rotateEvery {
		return false, nil
	}
	return true, k.rotateLocked(ctx)
}

func (k *Keyring) ensureLocked(ctx context.Context) (bool, error) {
	if err := k.reloadLocked(ctx); err != nil {
		return false, err
	}
	s := k.snap.Load()
	if s.signer != nil {
		return false, nil
	}
	if s.signerErr != nil {
		// Creating a key here would hide the misconfiguration and leave
		// replicas with different secrets unable to read each other's keys.
		return false, s.signerErr
	}
	if err := k.createLocked(ctx, k.now()); err != nil {
		return false, err
	}
	if err := k.reloadLocked(ctx); err != nil {
		return true, err
	}
	if s = k.snap.Load(); s.signer == nil {
		return true, fmt.Errorf("%w: the created key is not visible in the store", ErrNoSigningKey)
	}
	return true, nil
}

func (k *Keyring) rotateLocked(ctx context.Context) error {
	if err := k.reloadLocked(ctx); err != nil {
		return err
	}
	now := k.now()
	// Retire only the keys seen before creating the new one: a key another
	// replica creates concurrently stays valid instead of both replicas
	// retiring each other's fresh keys.
	var old []string
	for _, lk := range k.snap.Load().ordered {
		if lk.alg == k.alg && now.Before(lk.notAfter) {
			old = append(old, lk.kid)
		}
	}
	if err := k.createLocked(ctx, now); err != nil {
		return err
	}
	until := now.Add(k.ttl + RetireGrace)
	var errs []error
	for _, kid := range old {
		_, err := k.ks.UpdateSigningKey(ctx, kid, func(sk *store.SigningKey) error {
			if sk.NotAfter.After(now) {
				sk.NotAfter = now
			}
			if sk.VerifyUntil.After(until) {
				sk.VerifyUntil = until
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("session: retire signing key %q: %w", kid, err))
		}
	}
	if err := k.reloadLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// createLocked generates, seals and stores a new key of the configured
// algorithm. It signs until 2×RotateEvery unless rotated earlier.
func (k *Keyring) createLocked(ctx context.Context, now time.Time) error {
	priv, err := generateKey(k.alg, k.rand)
	if err != nil {
		return fmt.Errorf("session: generate signing key: %w", err)
	}
	der, pemStr, err := encodePublic(priv.Public())
	if err != nil {
		return err
	}
	kid := kidOf(der)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("session: encode signing key: %w", err)
	}
	sealed, err := k.sealer.Seal(pkcs8, []byte(kid))
	clear(pkcs8)
	if err != nil {
		return err
	}
	notAfter := now.Add(2 * k.rotateEvery)
	rec := &store.SigningKey{
		KID: kid, Algorithm: k.alg, PublicPEM: pemStr, PrivateSealed: sealed,
		CreatedAt: now, NotAfter: notAfter, VerifyUntil: notAfter.Add(k.ttl + RetireGrace),
	}
	if err := k.ks.CreateSigningKey(ctx, rec); err != nil {
		return fmt.Errorf("session: store signing key: %w", err)
	}
	k.privs[kid] = priv
	return nil
}

// reloadLocked reads the store and installs a new snapshot. On a store
// error the previous snapshot stays in force.
func (k *Keyring) reloadLocked(ctx context.Context) error {
	now := k.now()
	recs, err := k.ks.ListSigningKeys(ctx, now)
	if err != nil {
		return fmt.Errorf("session: load signing keys: %w", err)
	}
	s := &snapshot{keys: make(map[string]*liveKey, len(recs)), loaded: k.mono()}
	sealed := make(map[string][]byte, len(recs))
	var bad []error
	for _, r := range recs {
		if r.Algorithm != AlgES256 && r.Algorithm != AlgRS256 {
			continue // written by a newer version; not ours to judge
		}
		m := k.material[r.KID]
		if m == nil || m.alg != r.Algorithm || m.pem != r.PublicPEM {
			if m != nil {
				delete(k.privs, r.KID) // the row changed: re-check its private part too
			}
			if m, err = parsePublic(r.KID, r.Algorithm, r.PublicPEM); err != nil {
				bad = append(bad, fmt.Errorf("session: stored signing key %q: %w", r.KID, err))
				continue
			}
			k.material[r.KID] = m
		}
		lk := &liveKey{keyMaterial: m, createdAt: r.CreatedAt, notAfter: r.NotAfter, verifyUntil: r.VerifyUntil}
		s.keys[r.KID] = lk
		s.ordered = append(s.ordered, lk)
		sealed[r.KID] = r.PrivateSealed
	}
	for kid := range k.material {
		if s.keys[kid] == nil {
			delete(k.material, kid)
		}
	}
	for kid := range k.privs {
		if s.keys[kid] == nil {
			delete(k.privs, kid)
		}
	}
	sort.Slice(s.ordered, func(i, j int) bool {
		a, b := s.ordered[i], s.ordered[j]
		if !a.createdAt.Equal(b.createdAt) {
			return a.createdAt.After(b.createdAt)
		}
		return a.kid > b.kid
	})
	for _, lk := range s.ordered {
		// A signer must stay verifiable for a whole token lifetime.
		if lk.alg != k.alg || !now.Before(lk.notAfter) || now.Add(k.ttl).After(lk.verifyUntil) {
			continue
		}
		priv := k.privs[lk.kid]
		if priv == nil {
			if priv, err = openPrivate(k.sealer, lk.keyMaterial, sealed[lk.kid]); err != nil {
				s.signerErr = fmt.Errorf("session: signing key %q: %w", lk.kid, err)
				break
			}
			k.privs[lk.kid] = priv
		}
		s.signer, s.signerKey = lk, priv
		break
	}
	s.badKeys = errors.Join(bad...)
	k.snap.Store(s)
	return nil
}

// reloadLimited reloads at most once per reloadEvery; callers arriving
// while a reload runs wait for it and then see its result. It returns the
// error of the last such reload, so a caller can tell "unknown key" from
// "store unreachable".
func (k *Keyring) reloadLimited(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.mono()
	if k.limitedOnce && now-k.lastLimited < k.reloadEvery {
		return k.lastLimitedErr
	}
	k.lastLimited, k.limitedOnce = now, true
	k.lastLimitedErr = k.reloadLocked(ctx) // on error the previous snapshot stays
	return k.lastLimitedErr
}
