package session_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
)

// TestAMRClaim: the token says how the user signed in (RFC 8176 amr), so
// a verifier that only has the JWKS can demand a second factor; a session
// without methods (SSO) carries no amr claim at all.
func TestAMRClaim(t *testing.T) {
	ctx := context.Background()
	kr := newRing(t, newMemKeyStore(), session.AlgES256, newClock())
	iss := newIssuer(t, kr, session.IssuerOptions{})

	in := userInput()
	in.AMR = []string{"pwd", "otp", "mfa"}
	tok, _, err := iss.Mint(ctx, in)
	require.NoError(t, err)
	c, err := iss.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, []string{"pwd", "otp", "mfa"}, c.AMR)
	require.Equal(t, []any{"pwd", "otp", "mfa"}, payload(t, tok)["amr"], "the wire claim is RFC 8176's array")

	c.AMR[0] = "mutated"
	c2, err := iss.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, "pwd", c2.AMR[0], "a cached answer cannot be changed by a caller")

	in.AMR = nil
	tok, _, err = iss.Mint(ctx, in)
	require.NoError(t, err)
	require.NotContains(t, payload(t, tok), "amr")
}

func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}
