package session_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
)

// FuzzVerify: no input panics, every failure wraps one of the package's
// sentinels, and anything accepted is a token this issuer minted.
func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	clk := newClock()
	ks := newMemKeyStore()
	kr := newRing(f, ks, session.AlgES256, clk)
	iss := newIssuer(f, kr, session.IssuerOptions{})
	tok, _, err := iss.Mint(ctx, userInput())
	require.NoError(f, err)
	kid := onlyKID(f, ks)
	parts := strings.Split(tok, ".")
	for _, seed := range []string{
		tok,
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".e30." + parts[2],
		forge(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, jwt.MapClaims{"sub": "x"}),
		forge(f, jwt.SigningMethodHS256, []byte(ks.get(kid).PublicPEM), kid, jwt.MapClaims{"sub": "x"}),
		"eyJhbGciOiJFUzI1NiIsImtpZCI6e319.e30.AAAA",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.bnVsbA.AAAA",
		"a.b.c", "", "....", "sk-1234",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := iss.Verify(ctx, s)
		if err != nil {
			if !errors.Is(err, session.ErrInvalidToken) && !errors.Is(err, session.ErrExpiredToken) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if c.Subject != "user-1" || c.SessionID != "sess-1" || c.Issuer != testIssuer {
			t.Fatalf("accepted a token this issuer did not mint: %+v", c)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	kr := newRing(t, ks, session.AlgES256, nil)
	iss := newIssuer(t, kr, session.IssuerOptions{CacheSize: 8})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				tok, _, err := iss.Mint(ctx, userInput())
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := iss.Verify(ctx, tok); err != nil {
					t.Error(err)
					return
				}
				_ = kr.JWKS(ctx)
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := kr.Rotate(ctx); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
}
