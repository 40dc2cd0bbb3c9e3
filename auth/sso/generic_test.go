package sso_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/testutil/oidctest"
)

// callbackURL is registered at the test OP; nothing listens there because
// the test browser stops at the redirect and reads the code from it.
const (
	callbackURL = "http://127.0.0.1:9/sso/callback"
	logoutURL   = "http://127.0.0.1:9/logged-out"
)

func newOP(t *testing.T) *oidctest.Provider {
	t.Helper()
	return oidctest.New(t, oidctest.Options{
		RedirectURIs:           []string{callbackURL},
		PostLogoutRedirectURIs: []string{logoutURL},
	})
}

func newRP(t *testing.T, op *oidctest.Provider, mod ...func(*sso.GenericOptions)) *sso.Generic {
	t.Helper()
	o := sso.GenericOptions{
		Name: "test", DisplayName: "Test IdP", ClientID: op.ClientID(), ClientSecret: op.ClientSecret(),
		Issuer: op.Issuer(), RedirectURL: callbackURL,
	}
	for _, m := range mod {
		m(&o)
	}
	g, err := sso.NewGeneric(context.Background(), o)
	require.NoError(t, err)
	return g
}

// startLogin runs the browser leg: a new flow, the login URL, the OP's
// redirect back; it checks state and returns the code with the flow.
func startLogin(t *testing.T, op *oidctest.Provider, g sso.Provider) (string, sso.FlowState) {
	t.Helper()
	fs, err := sso.NewFlow(rand.Reader, g.Name(), "/ui", time.Now())
	require.NoError(t, err)
	q := op.Login(t, g.LoginURL(fs.State, fs.Nonce, fs.Verifier))
	require.Empty(t, q.Get("error"), q.Get("error_description"))
	require.True(t, sso.StateMatches(fs, q.Get("state")))
	require.NotEmpty(t, q.Get("code"))
	return q.Get("code"), fs
}

func login(t *testing.T, op *oidctest.Provider, g sso.Provider) (sso.Identity, error) {
	t.Helper()
	code, fs := startLogin(t, op, g)
	return g.Exchange(context.Background(), code, fs.Verifier, fs.Nonce)
}

func TestFullCodeFlow(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	op.SetUser(oidctest.User{Subject: "u-123", Email: "Alice@Example.com", EmailVerified: true, Name: "Alice A",
		Groups: []string{"eng", "admins"}})
	g := newRP(t, op)
	require.Equal(t, "test", g.Name())
	require.Equal(t, "Test IdP", g.DisplayName())

	lu, err := url.Parse(g.LoginURL("state-123456789", "nonce-1", strings.Repeat("v", 43)))
	require.NoError(t, err)
	q := lu.Query()
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Len(t, q.Get("code_challenge"), 43)
	require.Equal(t, "nonce-1", q.Get("nonce"))
	require.Equal(t, "state-123456789", q.Get("state"))
	require.Contains(t, strings.Fields(q.Get("scope")), "openid")
	require.Empty(t, q.Get("code_verifier"), "the verifier never goes to the browser")

	id, err := login(t, op, g)
	require.NoError(t, err)
	require.Equal(t, "test", id.Provider)
	require.Equal(t, op.Issuer(), id.Issuer)
	require.Equal(t, "u-123", id.Subject)
	require.Equal(t, "Alice@Example.com", id.Email)
	require.True(t, id.EmailVerified)
	require.Equal(t, "Alice A", id.Name)
	require.Equal(t, []string{"eng", "admins"}, id.Groups)
	require.NotEmpty(t, id.IDToken)
	require.Equal(t, op.Logins()[0].SID, id.SID)
	require.Equal(t, "u-123", id.Claims["sub"])
}

func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := login(t, op, g)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestReplayedCodeRejected(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	code, fs := startLogin(t, op, g)
	_, err := g.Exchange(context.Background(), code, fs.Verifier, fs.Nonce)
	require.NoError(t, err)
	_, err = g.Exchange(context.Background(), code, fs.Verifier, fs.Nonce)
	require.ErrorIs(t, err, sso.ErrExchange)
	require.Contains(t, err.Error(), "invalid_grant")
}

func TestPKCEVerifierMismatchRejected(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	code, fs := startLogin(t, op, g)
	other, err := sso.NewFlow(rand.Reader, "test", "", time.Now())
	require.NoError(t, err)
	_, err = g.Exchange(context.Background(), code, other.Verifier, fs.Nonce)
	require.ErrorIs(t, err, sso.ErrExchange)
	// The code is spent even though the exchange failed.
	_, err = g.Exchange(context.Background(), code, fs.Verifier, fs.Nonce)
	require.ErrorIs(t, err, sso.ErrExchange)
}

func TestExchangeNeedsFlowValues(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	code, fs := startLogin(t, op, g)
	_, err := g.Exchange(context.Background(), "", fs.Verifier, fs.Nonce)
	require.ErrorIs(t, err, sso.ErrExchange)
	_, err = g.Exchange(context.Background(), code, fs.Verifier, "")
	require.ErrorIs(t, err, sso.ErrInvalidState)
	_, err = g.Exchange(context.Background(), code, "", fs.Nonce)
	require.ErrorIs(t, err, sso.ErrInvalidState)
}

func TestWrongNonceArgumentRejected(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	code, fs := startLogin(t, op, g)
	_, err := g.Exchange(context.Background(), code, fs.Verifier, fs.Nonce+"x")
	require.ErrorIs(t, err, sso.ErrInvalidToken)
	require.Contains(t, err.Error(), "nonce")
}

// TestBrokenIDTokensRejected has the OP send one broken ID token at a
// time; everything else about the response is correct.
func TestBrokenIDTokensRejected(t *testing.T) {
	t.Parallel()
	cases := map[string]oidctest.Misbehaviour{
		"wrong audience":            {Audience: []string{"someone-else"}},
		"expired":                   {ExpiresIn: -time.Minute},
		"unsigned (alg none)":       {Unsigned: true},
		"signed with a foreign key": {ForeignKey: true},
		"wrong issuer":              {Issuer: "http://127.0.0.1:1/evil"},
		"wrong nonce":               {Nonce: "not-the-nonce"},
		"no nonce":                  {OmitNonce: true},
		"at_hash mismatch":          {WrongAtHash: true},
		"azp of another client":     {AZP: "other-client"},
		"two audiences without azp": {Audience: []string{"keygate", "other-client"}},
	}
	op := newOP(t)
	g := newRP(t, op)
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			op.SetMisbehaviour(m)
			defer op.SetMisbehaviour(oidctest.Misbehaviour{})
			id, err := login(t, op, g)
			require.ErrorIs(t, err, sso.ErrInvalidToken)
			require.Empty(t, id.Subject)
		})
	}
	t.Run("two audiences with our azp is fine", func(t *testing.T) {
		op.SetMisbehaviour(oidctest.Misbehaviour{Audience: []string{"keygate", "other"}, AZP: "keygate"})
		defer op.SetMisbehaviour(oidctest.Misbehaviour{})
		_, err := login(t, op, g)
		require.NoError(t, err)
	})
}

func TestUserinfoFillsMissingEmail(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	op.SetUser(oidctest.User{Subject: "bob", Email: "bob@example.com", EmailVerified: true, EmailOnlyInUserinfo: true,
		Name: "Bob"})
	g := newRP(t, op)
	id, err := login(t, op, g)
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", id.Email)
	require.True(t, id.EmailVerified)
	require.Equal(t, "bob@example.com", id.Claims["email"])

	op.SetMisbehaviour(oidctest.Misbehaviour{UserinfoSubject: "mallory"})
	_, err = login(t, op, g)
	require.ErrorIs(t, err, sso.ErrInvalidToken)
	require.Contains(t, err.Error(), "userinfo sub")
}

func TestEmailVerifiedParsing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		value any
		want  bool
	}{
		{"bool true", true, true},
		{"bool false", false, false},
		{"string true", "true", true},
		{"string TRUE", "TRUE", true},
		{"string false", "false", false},
		{"string yes", "yes", false},
		{"number 1", 1, false},
		{"null", nil, false},
	}
	op := newOP(t)
	g := newRP(t, op)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := oidctest.User{Subject: "carol", Email: "carol@example.com", EmailVerified: false,
				Extra: map[string]any{"email_verified": c.value}}
			op.SetUser(u)
			id, err := login(t, op, g)
			require.NoError(t, err)
			require.Equal(t, c.want, id.EmailVerified)
		})
	}
	t.Run("verified flag does not vouch for another attribute", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "dan", Email: "dan@example.com", EmailVerified: true,
			Extra: map[string]any{"upn": "dan@corp.example"}})
		g := newRP(t, op, func(o *sso.GenericOptions) { o.EmailAttribute = "upn" })
		id, err := login(t, op, g)
		require.NoError(t, err)
		require.Equal(t, "dan@corp.example", id.Email)
		require.False(t, id.EmailVerified)
	})
}

func TestGroupsAndAttributes(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	t.Run("list", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "e", Groups: []string{"a", "b", "a"}})
		id, err := login(t, op, newRP(t, op))
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, id.Groups)
	})
	t.Run("single string", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "e", Extra: map[string]any{"groups": "only-one"}})
		id, err := login(t, op, newRP(t, op))
		require.NoError(t, err)
		require.Equal(t, []string{"only-one"}, id.Groups)
	})
	t.Run("configured claim with numbers", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "e", Groups: []string{"ignored"},
			Extra: map[string]any{"roles": []any{"viewer", 42}}})
		id, err := login(t, op, newRP(t, op, func(o *sso.GenericOptions) { o.GroupsClaim = "roles" }))
		require.NoError(t, err)
		require.Equal(t, []string{"viewer", "42"}, id.Groups)
	})
	t.Run("no groups", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "e"})
		id, err := login(t, op, newRP(t, op))
		require.NoError(t, err)
		require.Empty(t, id.Groups)
	})
	t.Run("user id, e-mail and name attributes", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "pairwise-1", Extra: map[string]any{
			"oid": "stable-7", "mail": "e@example.com", "given_name": "Eve", "family_name": "Ng"}})
		id, err := login(t, op, newRP(t, op, func(o *sso.GenericOptions) {
			o.UserIDAttribute, o.EmailAttribute = "oid", "mail"
		}))
		require.NoError(t, err)
		require.Equal(t, "stable-7", id.Subject)
		require.Equal(t, "e@example.com", id.Email)
		require.Equal(t, "Eve Ng", id.Name)
	})
	t.Run("missing user id attribute", func(t *testing.T) {
		op.SetUser(oidctest.User{Subject: "x"})
		_, err := login(t, op, newRP(t, op, func(o *sso.GenericOptions) { o.UserIDAttribute = "oid" }))
		require.ErrorIs(t, err, sso.ErrInvalidToken)
	})
}

func TestEndSessionURL(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	g := newRP(t, op)
	id, err := login(t, op, g)
	require.NoError(t, err)

	raw := g.EndSessionURL(id.IDToken, logoutURL)
	require.True(t, strings.HasPrefix(raw, op.Issuer()+"/end_session?"), raw)
	u, err := url.Parse(raw)
	require.NoError(t, err)
	require.Equal(t, id.IDToken, u.Query().Get("id_token_hint"))
	require.Equal(t, logoutURL, u.Query().Get("post_logout_redirect_uri"))
	require.Equal(t, op.ClientID(), u.Query().Get("client_id"))

	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(raw)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, logoutURL, resp.Header.Get("Location"))
	calls := op.EndSessionCalls()
	require.Len(t, calls, 1)
	require.True(t, calls[0].HintValid)
	require.Equal(t, id.Subject, calls[0].Subject)
	require.Equal(t, id.SID, calls[0].SID)

	noES := oidctest.New(t, oidctest.Options{RedirectURIs: []string{callbackURL}, NoEndSession: true})
	require.Empty(t, newRP(t, noES).EndSessionURL(id.IDToken, logoutURL))
}

func TestExplicitEndpoints(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	withEndpoints := func(o *sso.GenericOptions) {
		o.Issuer = ""
		o.AuthorizationEndpoint, o.TokenEndpoint = op.Issuer()+"/authorize", op.Issuer()+"/token"
		o.UserinfoEndpoint = op.Issuer() + "/userinfo"
	}
	_, err := sso.NewGeneric(context.Background(), sso.GenericOptions{Name: "x", ClientID: "c",
		RedirectURL: callbackURL, AuthorizationEndpoint: op.Issuer() + "/authorize", TokenEndpoint: op.Issuer() + "/token"})
	require.ErrorIs(t, err, sso.ErrConfig)
	require.Contains(t, err.Error(), "GENERIC_ISSUER")

	op.SetUser(oidctest.User{Subject: "f", Email: "f@example.com", EmailVerified: true, EmailOnlyInUserinfo: true})
	g := newRP(t, op, withEndpoints, func(o *sso.GenericOptions) { o.JWKSURL = op.Issuer() + "/jwks" })
	id, err := login(t, op, g)
	require.NoError(t, err)
	require.Equal(t, "f@example.com", id.Email)
	require.Empty(t, g.EndSessionURL(id.IDToken, logoutURL))

	// Signatures are still checked without discovery.
	op.SetMisbehaviour(oidctest.Misbehaviour{ForeignKey: true})
	_, err = login(t, op, g)
	require.ErrorIs(t, err, sso.ErrInvalidToken)
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	op := newOP(t)
	ok := sso.GenericOptions{Name: "ok", ClientID: "c", Issuer: op.Issuer(), RedirectURL: callbackURL}
	cases := map[string]func(*sso.GenericOptions){
		"bad name":          func(o *sso.GenericOptions) { o.Name = "Bad Name" },
		"no client id":      func(o *sso.GenericOptions) { o.ClientID = "" },
		"relative redirect": func(o *sso.GenericOptions) { o.RedirectURL = "/sso/callback" },
		"issuer mismatch":   func(o *sso.GenericOptions) { o.Issuer = op.Issuer() + "/" },
		"no endpoints":      func(o *sso.GenericOptions) { o.Issuer = "" },
		"unreachable":       func(o *sso.GenericOptions) { o.Issuer = "http://127.0.0.1:1" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			o := ok
			mod(&o)
			_, err := sso.NewGeneric(context.Background(), o)
			require.ErrorIs(t, err, sso.ErrConfig)
		})
	}
}
