package sso_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/testutil/oidctest"
)

func TestVerifyLogoutToken(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	ctx := context.Background()

	lc, err := g.VerifyLogoutToken(ctx, op.LogoutToken("alice", "sid-1"))
	require.NoError(t, err)
	require.Equal(t, op.Issuer(), lc.Issuer)
	require.Equal(t, "alice", lc.Subject)
	require.Equal(t, "sid-1", lc.SID)
	require.NotEmpty(t, lc.JTI)
	require.WithinDuration(t, time.Now().Add(2*time.Minute), lc.Expires, 5*time.Second)

	lc, err = g.VerifyLogoutToken(ctx, op.LogoutToken("", "sid-only"))
	require.NoError(t, err)
	require.Equal(t, "sid-only", lc.SID)
	require.Empty(t, lc.Subject)

	// No typ header at all is allowed (typ is only recommended).
	_, err = g.VerifyLogoutToken(ctx, op.Sign(op.LogoutClaims("alice", ""), ""))
	require.NoError(t, err)
	// exp may be missing (as from Hydra) when iat is fresh.
	_, err = g.VerifyLogoutToken(ctx, op.Sign(withoutExp(op.LogoutClaims("alice", "")), "JWT"))
	require.NoError(t, err)

	// Nor is the generic "JWT", which Ory Hydra v2.3.0 sends.
	_, err = g.VerifyLogoutToken(ctx, op.Sign(op.LogoutClaims("alice", ""), "JWT"))
	require.NoError(t, err)
}

func TestVerifyLogoutTokenRejects(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	mutate := func(f func(map[string]any)) map[string]any {
		c := op.LogoutClaims("alice", "sid-1")
		f(c)
		return c
	}
	cases := map[string]string{
		"nonce present":       op.Sign(mutate(func(c map[string]any) { c["nonce"] = "n" }), "logout+jwt"),
		"no events":           op.Sign(mutate(func(c map[string]any) { delete(c, "events") }), "logout+jwt"),
		"wrong event":         op.Sign(mutate(func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }), "logout+jwt"),
		"event not an object": op.Sign(mutate(func(c map[string]any) { c["events"] = map[string]any{oidctest.BackchannelLogoutEvent: "yes"} }), "logout+jwt"),
		"event null":          op.Sign(mutate(func(c map[string]any) { c["events"] = map[string]any{oidctest.BackchannelLogoutEvent: nil} }), "logout+jwt"),
		"wrong audience":      op.Sign(mutate(func(c map[string]any) { c["aud"] = "other-client" }), "logout+jwt"),
		"wrong issuer":        op.Sign(mutate(func(c map[string]any) { c["iss"] = "http://127.0.0.1:1" }), "logout+jwt"),
		"neither sub nor sid": op.Sign(mutate(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }), "logout+jwt"),
		"expired":             op.Sign(mutate(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), "logout+jwt"),
		"no iat":              op.Sign(mutate(func(c map[string]any) { delete(c, "iat") }), "logout+jwt"),
		"future iat":          op.Sign(mutate(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }), "logout+jwt"),
		"no exp and old iat": op.Sign(mutate(func(c map[string]any) {
			delete(c, "exp")
			c["iat"] = time.Now().Add(-10 * time.Minute).Unix()
		}), "logout+jwt"),
		"no jti":              op.Sign(mutate(func(c map[string]any) { delete(c, "jti") }), "logout+jwt"),
		"typ at+jwt":          op.Sign(op.LogoutClaims("alice", "sid-1"), "at+jwt"),
		"unsigned":            op.SignNone(op.LogoutClaims("alice", "sid-1"), "logout+jwt"),
		"foreign key":         op.SignForeign(op.LogoutClaims("alice", "sid-1"), "logout+jwt"),
		"garbage":             "not.a.jwt",
		"empty":               "",
		"truncated signature": op.LogoutToken("alice", "sid-1")[:100],
	}
	// An ID token is not a logout token (it has a nonce and no event).
	id, err := login(t, op, g)
	require.NoError(t, err)
	cases["an ID token"] = id.IDToken

	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			lc, err := g.VerifyLogoutToken(context.Background(), raw)
			require.ErrorIs(t, err, sso.ErrInvalidToken)
			require.Empty(t, lc.Subject)
			require.Empty(t, lc.SID)
		})
	}
}

func withoutExp(c map[string]any) map[string]any {
	delete(c, "exp")
	return c
}
