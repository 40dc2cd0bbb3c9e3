package session_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
	"github.com/keygate/keygate/store"
)

// memKeyStore is a small in-memory session.KeyStore for these tests. The
// SQL implementation (store/gormstore) is written separately and is held
// to the same contract by the store conformance suite (store/storetest);
// this package only needs the contract, not a database.
type memKeyStore struct {
	mu    sync.Mutex
	keys  map[string]store.SigningKey
	lists int // ListSigningKeys calls, to observe reload rate limits
}

func newMemKeyStore() *memKeyStore { return &memKeyStore{keys: map[string]store.SigningKey{}} }

func (m *memKeyStore) CreateSigningKey(_ context.Context, k *store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.KID]; ok {
		return fmt.Errorf("signing key %s: %w", k.KID, store.ErrConflict)
	}
	m.keys[k.KID] = *k
	return nil
}

func (m *memKeyStore) ListSigningKeys(_ context.Context, now time.Time) ([]store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists++
	var out []store.SigningKey
	for _, k := range m.keys {
		if k.VerifyUntil.After(now) {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

func (m *memKeyStore) UpdateSigningKey(_ context.Context, kid string, fn func(*store.SigningKey) error) (store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[kid]
	if !ok {
		return store.SigningKey{}, fmt.Errorf("signing key %s: %w", kid, store.ErrNotFound)
	}
	if err := fn(&k); err != nil {
		return store.SigningKey{}, err
	}
	m.keys[kid] = k
	return k, nil
}

func (m *memKeyStore) get(kid string) store.SigningKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[kid]
}

func (m *memKeyStore) listCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lists
}

func (m *memKeyStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	testSecret = "correct-horse-battery-staple-42"
	testIssuer = "https://keygate.example.com"
)

func newSealer(t testing.TB, secret string) *session.Sealer {
	t.Helper()
	s, err := session.NewSealer(secret)
	require.NoError(t, err)
	return s
}

func newRing(t testing.TB, ks session.KeyStore, alg string, clk *fakeClock) *session.Keyring {
	t.Helper()
	opts := session.KeyringOptions{Algorithm: alg}
	if clk != nil {
		opts.Now = clk.Now
	}
	kr, err := session.NewKeyring(ks, newSealer(t, testSecret), opts)
	require.NoError(t, err)
	require.NoError(t, kr.Ensure(context.Background()))
	return kr
}

func newIssuer(t testing.TB, kr *session.Keyring, opts session.IssuerOptions) *session.Issuer {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = testIssuer
	}
	iss, err := session.NewIssuer(kr, opts)
	require.NoError(t, err)
	return iss
}

func userInput() session.MintInput {
	return session.MintInput{
		UserID: "user-1", Email: "ada@example.com", Role: "internal_user", LoginMethod: "password",
		Teams: []string{"team-a", "team-b"}, SessionID: "sess-1",
	}
}

// privateKey opens a stored key's private part the way an attacker holding
// the secret could; used to craft validly signed tokens with bad claims.
func privateKey(t testing.TB, ks *memKeyStore, kid string) crypto.Signer {
	t.Helper()
	rec := ks.get(kid)
	der, err := newSealer(t, testSecret).Open(rec.PrivateSealed, []byte(kid))
	require.NoError(t, err)
	k, err := x509.ParsePKCS8PrivateKey(der)
	require.NoError(t, err)
	return k.(crypto.Signer)
}

// onlyKID returns the single key id in ks.
func onlyKID(t testing.TB, ks *memKeyStore) string {
	t.Helper()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	require.Len(t, ks.keys, 1)
	for kid := range ks.keys {
		return kid
	}
	return ""
}
