package session_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/session"
)

func headerKID(t testing.TB, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func TestMintVerifyRoundTrip(t *testing.T) {
	for _, alg := range []string{session.AlgES256, session.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			ks := newMemKeyStore()
			kr := newRing(t, ks, alg, clk)
			iss := newIssuer(t, kr, session.IssuerOptions{Audience: []string{"keygate", "litellm"}})

			tok, exp, err := iss.Mint(ctx, userInput())
			require.NoError(t, err)
			require.True(t, session.LooksLikeJWT(tok))
			require.Equal(t, clk.Now().Add(session.DefaultTokenTTL), exp)
			require.Equal(t, onlyKID(t, ks), headerKID(t, tok))

			c, err := iss.Verify(ctx, tok)
			require.NoError(t, err)
			require.Equal(t, testIssuer, c.Issuer)
			require.Equal(t, "user-1", c.Subject)
			require.Equal(t, []string{"keygate", "litellm"}, c.Audience)
			require.Equal(t, exp, c.ExpiresAt)
			require.Equal(t, clk.Now(), c.IssuedAt)
			require.Equal(t, clk.Now(), c.NotBefore)
			require.NotEmpty(t, c.ID)
			require.Equal(t, "sess-1", c.SessionID)
			require.Equal(t, "ada@example.com", c.Email)
			require.Equal(t, "internal_user", c.Role)
			require.Equal(t, "password", c.LoginMethod)
			require.Equal(t, []string{"team-a", "team-b"}, c.Groups)
			require.Equal(t, "openid", c.Scope)

			// Second call comes from the cache; mutating it must not leak back.
			c.Groups[0] = "mutated"
			c2, err := iss.Verify(ctx, tok)
			require.NoError(t, err)
			require.Equal(t, []string{"team-a", "team-b"}, c2.Groups)

			// Two mints get distinct ids.
			tok2, _, err := iss.Mint(ctx, userInput())
			require.NoError(t, err)
			c3, err := iss.Verify(ctx, tok2)
			require.NoError(t, err)
			require.NotEqual(t, c.ID, c3.ID)
		})
	}
}

func TestAdminScopeOnlyForProxyAdmin(t *testing.T) {
	ctx := context.Background()
	kr := newRing(t, newMemKeyStore(), session.AlgES256, newClock())
	iss := newIssuer(t, kr, session.IssuerOptions{})
	for role, admin := range map[string]bool{
		"proxy_admin": true, "proxy_admin_viewer": false, "internal_user": false, "internal_user_viewer": false, "": false,
	} {
		in := userInput()
		in.Role = role
		tok, _, err := iss.Mint(ctx, in)
		require.NoError(t, err)
		c, err := iss.Verify(ctx, tok)
		require.NoError(t, err)
		require.Equal(t, admin, c.HasScope(session.ScopeProxyAdmin), role)
		require.True(t, c.HasScope(session.ScopeOpenID), role)
		if admin {
			require.Equal(t, "openid litellm_proxy_admin", c.Scope)
		}
	}
}

func TestMintCappedBySession(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	iss := newIssuer(t, newRing(t, newMemKeyStore(), session.AlgES256, clk), session.IssuerOptions{})
	in := userInput()
	in.SessionExpiresAt = clk.Now().Add(3*time.Minute + 500*time.Millisecond)
	tok, exp, err := iss.Mint(ctx, in)
	require.NoError(t, err)
	require.Equal(t, clk.Now().Add(3*time.Minute), exp)
	c, err := iss.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, exp, c.ExpiresAt)

	in.SessionExpiresAt = clk.Now()
	_, _, err = iss.Mint(ctx, in)
	require.ErrorIs(t, err, session.ErrSessionExpired)

	_, _, err = iss.Mint(ctx, session.MintInput{UserID: "u"})
	require.Error(t, err)
}

func TestExpiryAndCache(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	iss := newIssuer(t, newRing(t, newMemKeyStore(), session.AlgES256, clk), session.IssuerOptions{})
	tok, _, err := iss.Mint(ctx, userInput())
	require.NoError(t, err)
	_, err = iss.Verify(ctx, tok) // now cached
	require.NoError(t, err)

	clk.Advance(session.DefaultTokenTTL + session.DefaultLeeway - time.Second)
	_, err = iss.Verify(ctx, tok) // within leeway
	require.NoError(t, err)

	clk.Advance(2 * time.Second)
	_, err = iss.Verify(ctx, tok) // the cache must not outlive exp
	require.ErrorIs(t, err, session.ErrExpiredToken)
	require.NotErrorIs(t, err, session.ErrInvalidToken)
}

// forge signs claims with method/key and sets kid (when not empty).
func forge(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestVerifyRejectsAttacks(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	ks := newMemKeyStore()
	kr := newRing(t, ks, session.AlgES256, clk)
	iss := newIssuer(t, kr, session.IssuerOptions{})
	kid := onlyKID(t, ks)
	priv := privateKey(t, ks, kid)
	pubPEM := []byte(ks.get(kid).PublicPEM)
	pubBlock, _ := pem.Decode(pubPEM)

	// An RS256 key in the same store (e.g. another replica configured for
	// RS256): its tokens must still be refused by an ES256 verifier.
	rsRing := newRing(t, ks, session.AlgRS256, clk)
	rsIss := newIssuer(t, rsRing, session.IssuerOptions{})
	rsTok, _, err := rsIss.Mint(ctx, userInput())
	require.NoError(t, err)

	now := clk.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": testIssuer, "sub": "user-1", "aud": []string{"keygate"}, "sid": "sess-1", "jti": "j1",
			"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "role": "internal_user",
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// The control: a hand-made token with good claims verifies.
	_, err = iss.Verify(ctx, forge(t, jwt.SigningMethodES256, priv, kid, good()))
	require.NoError(t, err)

	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	valid, _, err := iss.Mint(ctx, userInput())
	require.NoError(t, err)
	parts := strings.Split(valid, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(
		[]byte(strings.Replace(string(payload), `"role":"internal_user"`, `"role":"proxy_admin"`, 1))) + "." + parts[2]
	require.NotEqual(t, valid, tampered)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sig[len(sig)-1] ^= 1
	badSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	noneTok := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, good())

	cases := map[string]struct {
		tok     string
		expired bool
	}{
		"alg none":                    {tok: noneTok},
		"alg none with fake sig":      {tok: noneTok + "c2ln"},
		"HS256 keyed with public PEM": {tok: forge(t, jwt.SigningMethodHS256, pubPEM, kid, good())},
		"HS256 keyed with public DER": {tok: forge(t, jwt.SigningMethodHS256, pubBlock.Bytes, kid, good())},
		"RS256 foreign key":           {tok: forge(t, jwt.SigningMethodRS256, otherRSA, kid, good())},
		"RS256 key from the store":    {tok: rsTok},
		"ES384 header":                {tok: swapAlg(t, forge(t, jwt.SigningMethodES256, priv, kid, good()), "ES384")},
		"foreign ES256 key, our kid":  {tok: forge(t, jwt.SigningMethodES256, otherEC, kid, good())},
		"foreign ES256 key, new kid":  {tok: forge(t, jwt.SigningMethodES256, otherEC, "not-a-kid", good())},
		"missing kid":                 {tok: forge(t, jwt.SigningMethodES256, priv, "", good())},
		"tampered payload":            {tok: tampered},
		"tampered signature":          {tok: badSig},
		"wrong issuer":                {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("iss", "https://evil.example"))},
		"no issuer":                   {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("iss", nil))},
		"wrong audience":              {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("aud", []string{"other"}))},
		"no audience":                 {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("aud", nil))},
		"no exp":                      {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("exp", nil))},
		"not yet valid":               {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("nbf", now.Add(time.Minute).Unix()))},
		"issued in the future":        {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("iat", now.Add(time.Minute).Unix()))},
		"no iat":                      {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("iat", nil))},
		"no sid":                      {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("sid", nil))},
		"no sub":                      {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("sub", nil))},
		"expired":                     {tok: forge(t, jwt.SigningMethodES256, priv, kid, with("exp", now.Add(-time.Minute).Unix())), expired: true},
		"garbage":                     {tok: "not a token"},
		"two segments":                {tok: parts[0] + "." + parts[1]},
		"empty":                       {tok: ""},
		"oversized":                   {tok: parts[0] + "." + strings.Repeat("A", 9000) + "." + parts[2]},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := iss.Verify(ctx, tc.tok)
			require.Error(t, err)
			require.Equal(t, session.Claims{}, c)
			if tc.expired {
				require.ErrorIs(t, err, session.ErrExpiredToken)
			} else {
				require.ErrorIs(t, err, session.ErrInvalidToken)
			}
			if len(tc.tok) > 20 {
				require.NotContains(t, err.Error(), tc.tok[10:20]) // no token echo
			}
		})
	}
	// The genuine token still verifies after all that.
	_, err = iss.Verify(ctx, valid)
	require.NoError(t, err)
}

// swapAlg rewrites a token's header alg without re-signing.
func swapAlg(t testing.TB, tok, alg string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	h = []byte(strings.Replace(string(h), `"alg":"ES256"`, `"alg":"`+alg+`"`, 1))
	return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "." + parts[2]
}

func TestIssuerOptions(t *testing.T) {
	kr := newRing(t, newMemKeyStore(), session.AlgES256, newClock())
	_, err := session.NewIssuer(kr, session.IssuerOptions{})
	require.Error(t, err)
	_, err = session.NewIssuer(kr, session.IssuerOptions{Issuer: testIssuer, Leeway: time.Minute})
	require.Error(t, err)
	_, err = session.NewIssuer(kr, session.IssuerOptions{Issuer: testIssuer, Audience: []string{""}})
	require.Error(t, err)
	_, err = session.NewIssuer(nil, session.IssuerOptions{Issuer: testIssuer})
	require.Error(t, err)
}

func TestVerifyWithoutCacheAndLeeway(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	iss := newIssuer(t, newRing(t, newMemKeyStore(), session.AlgES256, clk),
		session.IssuerOptions{CacheSize: -1, Leeway: -1})
	tok, _, err := iss.Mint(ctx, userInput())
	require.NoError(t, err)
	for range 3 {
		_, err = iss.Verify(ctx, tok)
		require.NoError(t, err)
	}
	clk.Advance(session.DefaultTokenTTL + time.Second)
	_, err = iss.Verify(ctx, tok)
	require.True(t, errors.Is(err, session.ErrExpiredToken))
}

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln": true,
		"a.b.c":                             true,
		"a_-.B9.c":                          true,
		"sk-1234567890abcdef":               false,
		"a.b":                               false,
		"a.b.c.d":                           false,
		"a..c":                              false,
		".b.c":                              false,
		"a.b.":                              false,
		"a.b=.c":                            false,
		"a.b c.d":                           false,
		"":                                  false,
		"a.b.c" + strings.Repeat("x", 9000): false,
	} {
		require.Equal(t, want, session.LooksLikeJWT(s), s)
	}
}
