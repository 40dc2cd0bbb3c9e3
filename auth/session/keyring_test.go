package session_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
	"github.com/keygate/keygate/store"
)

func TestEnsureCreatesOneKey(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{session.AlgES256, session.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			ks := newMemKeyStore()
			kr := newRing(t, ks, alg, clk)
			require.NoError(t, kr.Ensure(ctx)) // idempotent
			kid := onlyKID(t, ks)
			rec := ks.get(kid)
			require.Equal(t, alg, rec.Algorithm)
			require.Equal(t, clk.Now(), rec.CreatedAt)
			require.Equal(t, clk.Now().Add(2*session.DefaultRotateEvery), rec.NotAfter)
			require.Equal(t, rec.NotAfter.Add(session.DefaultTokenTTL+session.RetireGrace), rec.VerifyUntil)

			block, _ := pem.Decode([]byte(rec.PublicPEM))
			require.NotNil(t, block)
			sum := sha256.Sum256(block.Bytes)
			require.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:16]), kid)
			require.Len(t, kid, 22)
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err)
			switch alg {
			case session.AlgES256:
				require.Equal(t, elliptic.P256(), pub.(*ecdsa.PublicKey).Curve)
			case session.AlgRS256:
				require.GreaterOrEqual(t, pub.(*rsa.PublicKey).N.BitLen(), 2048)
			}
			// The private part is sealed, not stored as PKCS#8.
			_, err = x509.ParsePKCS8PrivateKey(rec.PrivateSealed)
			require.Error(t, err)
			require.Equal(t, byte(1), rec.PrivateSealed[0])
			require.Equal(t, pub, privateKey(t, ks, kid).Public())
		})
	}
}

func TestKeyringOptions(t *testing.T) {
	ks, s := newMemKeyStore(), newSealer(t, testSecret)
	_, err := session.NewKeyring(ks, s, session.KeyringOptions{Algorithm: "HS256"})
	require.Error(t, err)
	_, err = session.NewKeyring(nil, s, session.KeyringOptions{})
	require.Error(t, err)
	_, err = session.NewKeyring(ks, nil, session.KeyringOptions{})
	require.Error(t, err)
	_, err = session.NewKeyring(ks, s, session.KeyringOptions{TokenTTL: 2 * time.Hour, RotateEvery: time.Hour})
	require.Error(t, err)
	kr, err := session.NewKeyring(ks, s, session.KeyringOptions{})
	require.NoError(t, err)
	require.Equal(t, session.AlgES256, kr.Algorithm())
	require.Equal(t, session.DefaultTokenTTL, kr.TokenTTL())
}

func TestWrongSecretFailsClearly(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	newRing(t, ks, session.AlgES256, nil)

	other, err := session.NewKeyring(ks, newSealer(t, "a-different-secret-value"), session.KeyringOptions{})
	require.NoError(t, err)
	err = other.Ensure(ctx)
	require.ErrorIs(t, err, session.ErrSealOpen)
	require.Contains(t, err.Error(), "KEYGATE_SECRET (or LITELLM_SALT_KEY) differs")
	require.Equal(t, 1, ks.count(), "no second key is created to paper over the wrong secret")

	iss := newIssuer(t, other, session.IssuerOptions{})
	_, _, err = iss.Mint(ctx, userInput())
	require.ErrorIs(t, err, session.ErrNoSigningKey)
	require.ErrorIs(t, err, session.ErrSealOpen)
}

func TestTamperedStoredKeyIsReported(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	kr := newRing(t, ks, session.AlgES256, nil)
	kid := onlyKID(t, ks)
	require.NoError(t, kr.Rotate(ctx))
	var newKID string
	ks.mu.Lock()
	for k := range ks.keys {
		if k != kid {
			newKID = k
		}
	}
	ks.mu.Unlock()
	// Give the old row the new row's public key: its kid no longer matches.
	newPEM := ks.get(newKID).PublicPEM
	_, err := ks.UpdateSigningKey(ctx, kid, func(k *store.SigningKey) error {
		k.PublicPEM = newPEM
		return nil
	})
	require.NoError(t, err)
	err = kr.Ensure(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), kid)
	require.Contains(t, err.Error(), "kid does not match")
}

func TestRotateIfDueAndSelfHealing(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	ks := newMemKeyStore()
	kr := newRing(t, ks, session.AlgES256, clk)
	iss := newIssuer(t, kr, session.IssuerOptions{})
	first := onlyKID(t, ks)

	done, err := kr.RotateIfDue(ctx)
	require.NoError(t, err)
	require.False(t, done)

	clk.Advance(session.DefaultRotateEvery)
	done, err = kr.RotateIfDue(ctx)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, 2, ks.count())
	old := ks.get(first)
	require.Equal(t, clk.Now(), old.NotAfter)
	require.Equal(t, clk.Now().Add(session.DefaultTokenTTL+time.Minute), old.VerifyUntil)
	tok, _, err := iss.Mint(ctx, userInput())
	require.NoError(t, err)
	second := headerKID(t, tok)
	require.NotEqual(t, first, second)

	// Nobody runs RotateIfDue: at 2×RotateEvery the key stops signing and
	// the next Mint creates a fresh one.
	clk.Advance(2 * session.DefaultRotateEvery)
	tok, _, err = iss.Mint(ctx, userInput())
	require.NoError(t, err)
	third := headerKID(t, tok)
	require.NotEqual(t, second, third)
	_, err = iss.Verify(ctx, tok)
	require.NoError(t, err)
}

func TestReplicasShareKeys(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{session.AlgES256, session.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			ks := newMemKeyStore()
			rings := make([]*session.Keyring, 2)
			var wg sync.WaitGroup
			for i := range rings {
				// ReloadEvery is tiny because this test meets two new kids
				// within a second (startup race, then rotation); in production
				// rotations are weeks apart.
				kr, err := session.NewKeyring(ks, newSealer(t, testSecret),
					session.KeyringOptions{Algorithm: alg, ReloadEvery: time.Nanosecond})
				require.NoError(t, err)
				rings[i] = kr
				wg.Go(func() { require.NoError(t, kr.Ensure(ctx)) }) // racing startups
			}
			wg.Wait()
			require.GreaterOrEqual(t, ks.count(), 1)
			a, b := newIssuer(t, rings[0], session.IssuerOptions{}), newIssuer(t, rings[1], session.IssuerOptions{})
			crossVerify(t, a, b)

			// A rotates; B has never seen the new kid and reloads on demand.
			require.NoError(t, rings[0].Rotate(ctx))
			crossVerify(t, a, b)
		})
	}
}

func crossVerify(t *testing.T, a, b *session.Issuer) {
	t.Helper()
	ctx := context.Background()
	ta, _, err := a.Mint(ctx, userInput())
	require.NoError(t, err)
	tb, _, err := b.Mint(ctx, userInput())
	require.NoError(t, err)
	for _, iss := range []*session.Issuer{a, b} {
		for _, tok := range []string{ta, tb} {
			_, err := iss.Verify(ctx, tok)
			require.NoError(t, err)
		}
	}
}

func TestUnknownKIDReloadIsRateLimited(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	a := newRing(t, ks, session.AlgES256, nil)
	b, err := session.NewKeyring(ks, newSealer(t, testSecret), session.KeyringOptions{ReloadEvery: time.Hour})
	require.NoError(t, err)
	require.NoError(t, b.Ensure(ctx))
	issA, issB := newIssuer(t, a, session.IssuerOptions{}), newIssuer(t, b, session.IssuerOptions{})

	require.NoError(t, a.Rotate(ctx))
	tok1, _, err := issA.Mint(ctx, userInput())
	require.NoError(t, err)
	_, err = issB.Verify(ctx, tok1) // first unknown kid: B reloads
	require.NoError(t, err)

	require.NoError(t, a.Rotate(ctx))
	tok2, _, err := issA.Mint(ctx, userInput())
	require.NoError(t, err)
	before := ks.listCalls()
	for range 100 {
		_, err = issB.Verify(ctx, tok2) // within ReloadEvery: no reload, so unknown
		require.ErrorIs(t, err, session.ErrInvalidToken)
	}
	require.Equal(t, before, ks.listCalls())
	require.NoError(t, b.Reload(ctx))
	_, err = issB.Verify(ctx, tok2)
	require.NoError(t, err)
}

// downStore fails every call while down is set, like an unreachable DB.
type downStore struct {
	*memKeyStore
	down atomic.Bool
}

func (d *downStore) ListSigningKeys(ctx context.Context, now time.Time) ([]store.SigningKey, error) {
	if d.down.Load() {
		return nil, fmt.Errorf("list: %w", store.ErrUnavailable)
	}
	return d.memKeyStore.ListSigningKeys(ctx, now)
}

func TestStoreDown(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	a := newRing(t, ks, session.AlgES256, nil)
	ds := &downStore{memKeyStore: ks}
	b := newRing(t, ds, session.AlgES256, nil)
	issA, issB := newIssuer(t, a, session.IssuerOptions{}), newIssuer(t, b, session.IssuerOptions{})
	known, _, err := issA.Mint(ctx, userInput())
	require.NoError(t, err)
	require.NoError(t, a.Rotate(ctx))
	unknown, _, err := issA.Mint(ctx, userInput())
	require.NoError(t, err)

	ds.down.Store(true)
	// Known keys keep working from memory, and minting with a fresh view.
	_, err = issB.Verify(ctx, known)
	require.NoError(t, err)
	own, _, err := issB.Mint(ctx, userInput())
	require.NoError(t, err)
	_, err = issB.Verify(ctx, own)
	require.NoError(t, err)
	// An unknown kid cannot be looked up: refused, and the caller can tell
	// it was the store (503), not the token (401).
	_, err = issB.Verify(ctx, unknown)
	require.ErrorIs(t, err, session.ErrInvalidToken)
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorIs(t, b.Ensure(ctx), store.ErrUnavailable)
	require.NotEmpty(t, b.JWKS(ctx).Keys, "last view served")

	ds.down.Store(false)
	require.NoError(t, b.Reload(ctx))
	_, err = issB.Verify(ctx, unknown)
	require.NoError(t, err)
}
