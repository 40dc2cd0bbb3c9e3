package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
)

func TestVerifyExpired(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, newRing(t, newMemKeyStore(), session.AlgES256, clk), session.IssuerOptions{CacheSize: -1})
	ctx := context.Background()
	in := userInput()
	in.SessionExpiresAt = clk.Now().Add(24 * time.Hour)
	tok, _, err := iss.Mint(ctx, in)
	require.NoError(t, err)
	_, err = iss.VerifyExpired(ctx, tok)
	require.NoError(t, err, "a fresh token passes")

	clk.Advance(2 * time.Hour)
	_, err = iss.Verify(ctx, tok)
	require.ErrorIs(t, err, session.ErrExpiredToken)
	c, err := iss.VerifyExpired(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, "sess-1", c.SessionID)

	_, err = iss.VerifyExpired(ctx, tok[:len(tok)-4]+"AAAA")
	require.ErrorIs(t, err, session.ErrInvalidToken, "tampered expired token")
	_, err = iss.VerifyExpired(ctx, "a.b.c")
	require.ErrorIs(t, err, session.ErrInvalidToken)
	other := newIssuer(t, newRing(t, newMemKeyStore(), session.AlgES256, clk), session.IssuerOptions{Issuer: "https://other.example"})
	_, err = other.VerifyExpired(ctx, tok)
	require.ErrorIs(t, err, session.ErrInvalidToken, "a token from another issuer's keys")
}
