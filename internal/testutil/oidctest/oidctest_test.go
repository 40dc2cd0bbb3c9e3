package oidctest_test

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/oidctest"
)

const (
	cb       = "http://127.0.0.1:9/cb"
	verifier = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG" // 43 chars
	// challenge is S256(verifier), computed independently of the package.
	challenge = "g0tuZ6q412zO9IRkeAUs8HN6MQeXPsGce37J3Rsc8wQ"
)

func noFollow() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func authURL(p *oidctest.Provider, mod func(url.Values)) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {p.ClientID()}, "redirect_uri": {cb},
		"scope": {"openid email"}, "state": {"st-12345678"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	if mod != nil {
		mod(q)
	}
	return p.Issuer() + "/authorize?" + q.Encode()
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func token(t *testing.T, p *oidctest.Provider, form url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.Issuer()+"/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(p.ClientID(), p.ClientSecret())
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}, "code_verifier": {verifier}}
}

func TestHonestFlow(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{RedirectURIs: []string{cb}})
	var disc map[string]any
	getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &disc)
	require.Equal(t, p.Issuer(), disc["issuer"])
	require.Equal(t, p.Issuer()+"/end_session", disc["end_session_endpoint"])

	q := p.Login(t, authURL(p, nil))
	require.Equal(t, "st-12345678", q.Get("state"))
	require.Equal(t, p.Issuer(), q.Get("iss"))
	status, tok := token(t, p, codeForm(q.Get("code")), true)
	require.Equal(t, http.StatusOK, status, tok)

	// The ID token verifies with the key published in the JWKS.
	var jwks struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	getJSON(t, p.Issuer()+"/jwks", &jwks)
	require.Len(t, jwks.Keys, 1)
	n, err := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)
	require.NoError(t, err)
	e, err := base64.RawURLEncoding.DecodeString(jwks.Keys[0].E)
	require.NoError(t, err)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok["id_token"].(string), claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(p.Issuer()), jwt.WithAudience(p.ClientID()))
	require.NoError(t, err)
	require.Equal(t, jwks.Keys[0].Kid, parsed.Header["kid"])
	require.Equal(t, "alice", claims["sub"])
	require.Equal(t, "n-1", claims["nonce"])
	require.Equal(t, p.Logins()[0].SID, claims["sid"])

	// userinfo answers for the access token.
	req, _ := http.NewRequest(http.MethodGet, p.Issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Replaying the code fails and revokes what the code produced.
	status, tok2 := token(t, p, codeForm(q.Get("code")), true)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_grant", tok2["error"])
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestAuthorizeRejects(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{RedirectURIs: []string{cb}})
	for name, mod := range map[string]func(url.Values){
		"unknown client":         func(q url.Values) { q.Set("client_id", "nope") },
		"unregistered redirect":  func(q url.Values) { q.Set("redirect_uri", cb+"/other") },
		"redirect prefix trick":  func(q url.Values) { q.Set("redirect_uri", cb+"?x=1") },
		"redirect with fragment": func(q url.Values) { q.Set("redirect_uri", cb+"#x") },
	} {
		resp, err := noFollow().Get(authURL(p, mod))
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
	}
	for name, c := range map[string]struct {
		mod  func(url.Values)
		want string
	}{
		"no PKCE":          {func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		"plain PKCE":       {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		"no openid":        {func(q url.Values) { q.Set("scope", "email") }, "invalid_scope"},
		"token response":   {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		"short challenge":  {func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request"},
		"misbehaviour off": {nil, ""},
	} {
		q := p.Login(t, authURL(p, c.mod))
		require.Equal(t, c.want, q.Get("error"), name)
		require.Equal(t, "st-12345678", q.Get("state"), name)
	}
	p.SetMisbehaviour(oidctest.Misbehaviour{AuthorizeError: "access_denied"})
	require.Equal(t, "access_denied", p.Login(t, authURL(p, nil)).Get("error"))
}

func TestTokenRejects(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{RedirectURIs: []string{cb, cb + "2"}, AllowNoPKCE: true})
	code := func(mod func(url.Values)) string { return p.Login(t, authURL(p, mod)).Get("code") }

	status, out := token(t, p, codeForm(code(nil)), false)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_client", out["error"])

	f := codeForm(code(nil))
	f.Set("client_id", p.ClientID())
	f.Set("client_secret", p.ClientSecret())
	status, _ = token(t, p, f, false)
	require.Equal(t, http.StatusOK, status, "client_secret_post works")

	f = codeForm(code(nil))
	f.Set("client_id", p.ClientID())
	f.Set("client_secret", "wrong")
	status, _ = token(t, p, f, false)
	require.Equal(t, http.StatusUnauthorized, status)

	for name, c := range map[string]struct {
		authMod func(url.Values)
		formMod func(url.Values)
	}{
		"wrong verifier":             {nil, func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 43)) }},
		"no verifier":                {nil, func(f url.Values) { f.Del("code_verifier") }},
		"other redirect_uri":         {nil, func(f url.Values) { f.Set("redirect_uri", cb+"2") }},
		"verifier without challenge": {func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, nil},
		"unknown code":               {nil, func(f url.Values) { f.Set("code", "made-up") }},
	} {
		f := codeForm(code(c.authMod))
		if c.formMod != nil {
			c.formMod(f)
		}
		status, out := token(t, p, f, true)
		require.Equal(t, http.StatusBadRequest, status, name)
		require.Equal(t, "invalid_grant", out["error"], name)
	}

	f = codeForm(code(func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }))
	f.Del("code_verifier")
	status, _ = token(t, p, f, true)
	require.Equal(t, http.StatusOK, status, "no PKCE at all is allowed with AllowNoPKCE")
}

func TestEndSessionRedirectsOnlyWhenBound(t *testing.T) {
	logout := "http://127.0.0.1:9/bye"
	p := oidctest.New(t, oidctest.Options{RedirectURIs: []string{cb}, PostLogoutRedirectURIs: []string{logout}})
	q := p.Login(t, authURL(p, nil))
	_, tok := token(t, p, codeForm(q.Get("code")), true)
	hint := tok["id_token"].(string)

	cases := []struct {
		params url.Values
		want   int
	}{
		{url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {logout}, "state": {"s"}}, http.StatusFound},
		{url.Values{"client_id": {p.ClientID()}, "post_logout_redirect_uri": {logout}}, http.StatusFound},
		{url.Values{"post_logout_redirect_uri": {logout}}, http.StatusOK},
		{url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://evil.example/"}}, http.StatusOK},
		{url.Values{"id_token_hint": {p.SignForeign(jwt.MapClaims{"iss": p.Issuer(), "aud": p.ClientID()}, "")},
			"post_logout_redirect_uri": {logout}}, http.StatusOK},
	}
	for i, c := range cases {
		resp, err := noFollow().Get(p.Issuer() + "/end_session?" + c.params.Encode())
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, c.want, resp.StatusCode, "case %d", i)
	}
	calls := p.EndSessionCalls()
	require.Len(t, calls, len(cases))
	require.True(t, calls[0].HintValid)
	require.Equal(t, "alice", calls[0].Subject)
	require.True(t, calls[0].Redirected)
	require.False(t, calls[4].HintValid)
}

func TestLogoutToken(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{RedirectURIs: []string{cb}})
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(p.LogoutToken("alice", "sid-1"), claims)
	require.NoError(t, err)
	require.Equal(t, "logout+jwt", tok.Header["typ"])
	require.Equal(t, "sid-1", claims["sid"])
	require.Contains(t, claims["events"], oidctest.BackchannelLogoutEvent)
	require.NotContains(t, claims, "nonce")
	require.Len(t, strings.Split(p.SignNone(claims, ""), "."), 3)
}
