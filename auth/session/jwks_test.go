package session_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
)

// serveJWKS publishes kr.JWKS on an HTTP server, as the api package will.
func serveJWKS(t *testing.T, kr *session.Keyring) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(kr.JWKS(r.Context()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// oidcVerifier is an independent verifier (go-oidc / go-jose) that knows
// only the JWKS URL.
func oidcVerifier(ctx context.Context, url, alg string, clk *fakeClock) *oidc.IDTokenVerifier {
	return oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, url), &oidc.Config{
		ClientID: session.DefaultAudience, SupportedSigningAlgs: []string{alg}, Now: clk.Now,
	})
}

func TestJWKSVerifiesWithGoOIDC(t *testing.T) {
	for _, alg := range []string{session.AlgES256, session.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			kr := newRing(t, newMemKeyStore(), alg, clk)
			iss := newIssuer(t, kr, session.IssuerOptions{})
			tok, _, err := iss.Mint(ctx, userInput())
			require.NoError(t, err)

			idt, err := oidcVerifier(ctx, serveJWKS(t, kr), alg, clk).Verify(ctx, tok)
			require.NoError(t, err)
			require.Equal(t, "user-1", idt.Subject)
			var extra struct {
				SID    string   `json:"sid"`
				Groups []string `json:"groups"`
				Scope  string   `json:"scope"`
			}
			require.NoError(t, idt.Claims(&extra))
			require.Equal(t, "sess-1", extra.SID)
			require.Equal(t, []string{"team-a", "team-b"}, extra.Groups)

			// Wrong audience is refused by the independent verifier too.
			other := oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, serveJWKS(t, kr)),
				&oidc.Config{ClientID: "someone-else", SupportedSigningAlgs: []string{alg}, Now: clk.Now})
			_, err = other.Verify(ctx, tok)
			require.Error(t, err)
		})
	}
}

func TestJWKSFormat(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	ec := newRing(t, ks, session.AlgES256, nil)
	newRing(t, ks, session.AlgRS256, nil)
	require.NoError(t, ec.Reload(ctx)) // else the RS256 key shows up within ReloadEvery
	raw, err := json.Marshal(ec.JWKS(ctx))
	require.NoError(t, err)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &set))
	require.Len(t, set.Keys, 2)
	for _, k := range set.Keys {
		require.Equal(t, "sig", k["use"])
		require.Len(t, k["kid"], 22)
		switch k["kty"] {
		case "EC":
			require.Equal(t, "ES256", k["alg"])
			require.Equal(t, "P-256", k["crv"])
			require.Len(t, k["x"], 43) // 32 bytes, base64url, unpadded
			require.Len(t, k["y"], 43)
			require.NotContains(t, k, "d")
		case "RSA":
			require.Equal(t, "RS256", k["alg"])
			require.Equal(t, "AQAB", k["e"])
			require.Len(t, k["n"], 342) // 256 bytes
			require.NotContains(t, k, "d")
		default:
			t.Fatalf("unexpected kty %q", k["kty"])
		}
	}
	empty, err := session.NewKeyring(newMemKeyStore(), newSealer(t, testSecret), session.KeyringOptions{})
	require.NoError(t, err)
	raw, err = json.Marshal(empty.JWKS(ctx))
	require.NoError(t, err)
	require.JSONEq(t, `{"keys":[]}`, string(raw))
}

func TestRotationKeepsOldTokensValid(t *testing.T) {
	for _, alg := range []string{session.AlgES256, session.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			ks := newMemKeyStore()
			kr := newRing(t, ks, alg, clk)
			iss := newIssuer(t, kr, session.IssuerOptions{CacheSize: -1})
			remote := oidcVerifier(ctx, serveJWKS(t, kr), alg, clk)
			oldKID := onlyKID(t, ks)

			before, exp, err := iss.Mint(ctx, userInput())
			require.NoError(t, err)
			_, err = remote.Verify(ctx, before) // go-oidc now caches the old key set
			require.NoError(t, err)
			// go-oidc's RemoteKeySet clears its finished fetch a moment after
			// handing out the keys; a refetch asked for within that moment is
			// served the old answer (seen about once in 200 runs). A real
			// proxy never refetches microseconds apart, so let it settle.
			time.Sleep(50 * time.Millisecond)

			clk.Advance(time.Minute)
			require.NoError(t, kr.Rotate(ctx))
			rotatedAt := clk.Now()
			after, _, err := iss.Mint(ctx, userInput())
			require.NoError(t, err)
			newKID := headerKID(t, after)
			require.NotEqual(t, oldKID, newKID)
			require.Equal(t, oldKID, headerKID(t, before))
			require.ElementsMatch(t, []string{newKID, oldKID}, jwksKIDs(ctx, kr))

			// Just before the old token expires both verify, locally and via
			// go-oidc (which refetches the JWKS for the unknown new kid).
			clk.Advance(exp.Sub(clk.Now()) - time.Second)
			for _, tok := range []string{before, after} {
				_, err = iss.Verify(ctx, tok)
				require.NoError(t, err)
				_, err = remote.Verify(ctx, tok)
				require.NoError(t, err)
			}

			// After exp the old token fails both ways.
			clk.Advance(session.DefaultLeeway + 2*time.Second)
			_, err = iss.Verify(ctx, before)
			require.ErrorIs(t, err, session.ErrExpiredToken)
			_, err = remote.Verify(ctx, before)
			require.Error(t, err)

			// The retired key stays published until VerifyUntil, then leaves.
			require.Contains(t, jwksKIDs(ctx, kr), oldKID)
			clk.Advance(rotatedAt.Add(session.DefaultTokenTTL + session.RetireGrace).Sub(clk.Now()))
			require.Equal(t, []string{newKID}, jwksKIDs(ctx, kr))

			// New tokens keep working.
			tok, _, err := iss.Mint(ctx, userInput())
			require.NoError(t, err)
			require.Equal(t, newKID, headerKID(t, tok))
			_, err = iss.Verify(ctx, tok)
			require.NoError(t, err)
			_, err = remote.Verify(ctx, tok)
			require.NoError(t, err)
		})
	}
}

func jwksKIDs(ctx context.Context, kr *session.Keyring) []string {
	var out []string
	for _, k := range kr.JWKS(ctx).Keys {
		out = append(out, k.Kid)
	}
	return out
}
