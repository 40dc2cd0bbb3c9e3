package api_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/oidctest"
	"github.com/keygate/keygate/store"
)

const ssoLogoutTarget = "https://intranet.example/bye"

// ssoEnv is Keygate on a real loopback listener with a real OpenID
// provider in the same process: go-oidc verifies real signatures, PKCE,
// nonce and state.
type ssoEnv struct {
	*testEnv
	op   *oidctest.Provider
	base string
}

func newSSOEnv(t *testing.T, pol service.SSOPolicy) *ssoEnv {
	t.Helper()
	return newSSOEnvWith(t, pol, nil)
}

func newSSOEnvWith(t *testing.T, pol service.SSOPolicy, adjust func(o *app.Options)) *ssoEnv {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	op := oidctest.New(t, oidctest.Options{RedirectURIs: []string{srv.URL + "/sso/callback"},
		PostLogoutRedirectURIs: []string{ssoLogoutTarget, srv.URL + "/ui/login"}})
	p, err := sso.NewGeneric(context.Background(), sso.GenericOptions{Name: "test", DisplayName: "Test IdP", ClientID: op.ClientID(),
		ClientSecret: op.ClientSecret(), Issuer: op.Issuer(), RedirectURL: srv.URL + "/sso/callback"})
	require.NoError(t, err)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.Issuer, o.LogoutURL, o.SSOProviders, o.SSOPolicy = srv.URL, ssoLogoutTarget, []sso.Provider{p}, pol
		if adjust != nil {
			adjust(o)
		}
	})
	srv.Config.Handler = e.h
	return &ssoEnv{testEnv: e, op: op, base: srv.URL}
}

// browser is a cookie-keeping client that never follows redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ssoLogin runs the whole browser flow and returns the callback response
// (303 with a session cookie on success).
func (e *ssoEnv) ssoLogin(t *testing.T, b *http.Client, tamper func(q url.Values)) *http.Response {
	t.Helper()
	resp, err := b.Get(e.base + "/sso/login/test")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	q := e.op.Login(t, resp.Header.Get("Location"))
	if tamper != nil {
		tamper(q)
	}
	resp, err = b.Get(e.base + "/sso/callback?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func sessionOf(t *testing.T, b *http.Client, base string) string {
	return cookieOf(b, base, "keygate_session")
}

func cookieOf(b *http.Client, base, name string) string {
	u, _ := url.Parse(base)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// signOut is the browser's sign-out: the confirmation page, then its
// POST with the session's CSRF token. host, when set, is the Host header
// sent (to show it changes nothing).
func signOut(t *testing.T, b *http.Client, base, host string) *http.Response {
	t.Helper()
	resp, err := b.Get(base + "/ui/logout")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /ui/logout asks first")
	req, err := http.NewRequest(http.MethodPost, base+"/ui/logout", strings.NewReader(url.Values{"csrf_token": {cookieOf(b, base, "keygate_csrf")}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if host != "" {
		u, _ := url.Parse(base)
		for _, c := range b.Jar.Cookies(u) {
			req.AddCookie(c)
		}
		req.Host = host
	}
	resp, err = b.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func userCount(t *testing.T, st store.Store) int64 {
	_, n, err := st.ListUsers(t.Context(), store.UserFilter{Page: store.Page{Limit: 1}})
	require.NoError(t, err)
	return n
}

func TestSSOFullFlowAndJIT(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t, service.SSOPolicy{AllowedEmailDomains: []string{"corp.example"}})
	e.op.SetUser(oidctest.User{Subject: "sub-ann", Email: "ann@corp.example", EmailVerified: true, Name: "Ann"})
	b := browser(t)
	resp := e.ssoLogin(t, b, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/?login=success", resp.Header.Get("Location"))
	tok := sessionOf(t, b, e.base)
	require.NotEmpty(t, tok)
	r := e.do(http.MethodGet, "/user/info", tok, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	info := r.JSON(t)["user_info"].(map[string]any)
	require.Equal(t, "internal_user_viewer", info["user_role"], "JIT users get the least privileged role by default")
	require.Equal(t, "ann@corp.example", info["user_email"])
	require.Equal(t, "sso", decodeClaims(t, tok)["login_method"])

	// the same subject again: same user, no duplicate
	n := userCount(t, e.store)
	e.ssoLogin(t, browser(t), nil)
	require.Equal(t, n, userCount(t, e.store))

	// domain not allowed, or unverified e-mail → refused, nothing created
	e.op.SetUser(oidctest.User{Subject: "sub-x", Email: "x@other.example", EmailVerified: true})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	e.op.SetUser(oidctest.User{Subject: "sub-y", Email: "y@corp.example", EmailVerified: false})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	require.Equal(t, n, userCount(t, e.store))
}

func TestSSORejections(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t, service.SSOPolicy{})
	e.op.SetUser(oidctest.User{Subject: "sub-bob", Email: "bob@corp.example", EmailVerified: true})
	n := userCount(t, e.store)
	cases := map[string]struct {
		mis    oidctest.Misbehaviour
		tamper func(url.Values)
		want   int
	}{
		"wrong state":    {tamper: func(q url.Values) { q.Set("state", "forged-state-value") }, want: 400},
		"missing state":  {tamper: func(q url.Values) { q.Del("state") }, want: 400},
		"wrong nonce":    {mis: oidctest.Misbehaviour{Nonce: "other-nonce"}, want: 401},
		"wrong audience": {mis: oidctest.Misbehaviour{Audience: []string{"someone-else"}}, want: 401},
		"expired token":  {mis: oidctest.Misbehaviour{ExpiresIn: -time.Minute}, want: 401},
		"unsigned token": {mis: oidctest.Misbehaviour{Unsigned: true}, want: 401},
		"foreign key":    {mis: oidctest.Misbehaviour{ForeignKey: true}, want: 401},
		"wrong issuer":   {mis: oidctest.Misbehaviour{Issuer: "https://evil.example"}, want: 401},
		"idp error":      {mis: oidctest.Misbehaviour{AuthorizeError: "access_denied"}, want: 401},
	}
	for name, c := range cases {
		e.op.SetMisbehaviour(c.mis)
		resp := e.ssoLogin(t, browser(t), c.tamper)
		require.Equal(t, c.want, resp.StatusCode, name)
		require.Equal(t, n, userCount(t, e.store), "%s created a user", name)
	}
	// userinfo answering for another subject (when it is consulted)
	e.op.SetUser(oidctest.User{Subject: "sub-bob", Email: "bob@corp.example", EmailVerified: true, EmailOnlyInUserinfo: true})
	e.op.SetMisbehaviour(oidctest.Misbehaviour{UserinfoSubject: "someone-else"})
	require.Equal(t, http.StatusUnauthorized, e.ssoLogin(t, browser(t), nil).StatusCode, "userinfo subject mismatch")
	require.Equal(t, n, userCount(t, e.store))
	e.op.SetMisbehaviour(oidctest.Misbehaviour{})

	// no flow cookie at all
	resp, err := browser(t).Get(e.base + "/sso/callback?code=x&state=y")
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	// a replayed code is refused by the provider
	b := browser(t)
	resp, err = b.Get(e.base + "/sso/login/test")
	require.NoError(t, err)
	q := e.op.Login(t, resp.Header.Get("Location"))
	first, err := b.Get(e.base + "/sso/callback?" + q.Encode())
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, first.StatusCode)
	replay := browser(t)
	resp, err = replay.Get(e.base + "/sso/login/test")
	require.NoError(t, err)
	q2 := e.op.Login(t, resp.Header.Get("Location"))
	q2.Set("code", q.Get("code"))
	resp, err = replay.Get(e.base + "/sso/callback?" + q2.Encode())
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "replayed code")
	// unknown provider, open redirect in return_to
	resp, err = browser(t).Get(e.base + "/sso/login/nope")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestSSORoleMapping(t *testing.T) {
	t.Parallel()
	pol := service.SSOPolicy{RoleMapping: sso.RoleMapping{Claim: "groups", Map: map[string]string{
		"llm-admins": "proxy_admin", "llm-users": "internal_user", "auditors": "proxy_admin_viewer"}}}
	e := newSSOEnv(t, pol)
	e.op.SetUser(oidctest.User{Subject: "sub-cy", Email: "cy@corp.example", EmailVerified: true, Groups: []string{"llm-users", "auditors"}})
	b := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	first := sessionOf(t, b, e.base)
	r := e.do(http.MethodGet, "/user/info", first, nil)
	require.Equal(t, "proxy_admin_viewer", r.JSON(t)["user_info"].(map[string]any)["user_role"], "highest privilege wins")
	uid := r.JSON(t)["user_id"].(string)

	r = e.do(http.MethodGet, "/sso/explain?user_id="+uid, masterKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, "auditors", r.JSON(t)["last_sso_login"].(map[string]any)["matched_value"])

	// removed from "auditors": downgraded at the next login, old session revoked
	e.op.SetUser(oidctest.User{Subject: "sub-cy", Email: "cy@corp.example", EmailVerified: true, Groups: []string{"llm-users"}})
	b2 := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b2, nil).StatusCode)
	r = e.do(http.MethodGet, "/user/info", sessionOf(t, b2, e.base), nil)
	require.Equal(t, "internal_user", r.JSON(t)["user_info"].(map[string]any)["user_role"])
	requireError(t, e.do(http.MethodGet, "/user/info", first, nil), http.StatusUnauthorized)

	// deny if unmapped
	deny := newSSOEnv(t, service.SSOPolicy{RoleMapping: sso.RoleMapping{Claim: "groups", Map: map[string]string{"llm-users": "internal_user"}, DenyIfUnmapped: true}})
	deny.op.SetUser(oidctest.User{Subject: "sub-dd", Email: "dd@corp.example", EmailVerified: true, Groups: []string{"sales"}})
	n := userCount(t, deny.store)
	require.Equal(t, http.StatusForbidden, deny.ssoLogin(t, browser(t), nil).StatusCode)
	require.Equal(t, n, userCount(t, deny.store))
}

func TestSSOLinking(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t, service.SSOPolicy{})
	// invite-aware: the invited account is linked and the invitation consumed
	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "dana", "user_email": "dana@corp.example", "user_role": "internal_user", "auto_create_key": false})
	require.Equal(t, http.StatusOK, r.Code)
	link := e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "dana"}).JSON(t)["invitation_link"].(string)
	e.op.SetUser(oidctest.User{Subject: "sub-dana", Email: "Dana@corp.example", EmailVerified: true})
	b := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	r = e.do(http.MethodGet, "/user/info", sessionOf(t, b, e.base), nil)
	require.Equal(t, "dana", r.JSON(t)["user_id"])
	require.Equal(t, "internal_user", r.JSON(t)["user_info"].(map[string]any)["user_role"])
	requireError(t, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+invitationID(t, link), "", nil), http.StatusUnauthorized)

	// an unverified e-mail never takes over an existing account
	e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "eli", "user_email": "eli@corp.example", "user_role": "internal_user"})
	e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "eli"})
	e.op.SetUser(oidctest.User{Subject: "sub-eli", Email: "eli@corp.example", EmailVerified: false})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	u, err := e.store.GetUser(t.Context(), "eli")
	require.NoError(t, err)
	require.Empty(t, u.SSOSubject)
	// nor does a verified one without an invitation
	e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "fox", "user_email": "fox@corp.example"})
	e.op.SetUser(oidctest.User{Subject: "sub-fox", Email: "fox@corp.example", EmailVerified: true})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	// an existing admin is never auto-linked, invitation or not
	e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "root", "user_email": "root@corp.example", "user_role": "proxy_admin"})
	e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "root"})
	e.op.SetUser(oidctest.User{Subject: "sub-root", Email: "root@corp.example", EmailVerified: true})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	u, err = e.store.GetUser(t.Context(), "root")
	require.NoError(t, err)
	require.Empty(t, u.SSOSubject)
}

func TestSSOLogout(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t, service.SSOPolicy{})
	e.op.SetUser(oidctest.User{Subject: "sub-gus", Email: "gus@corp.example", EmailVerified: true})
	b := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	tok := sessionOf(t, b, e.base)

	// RP-initiated logout: local revocation, then the IdP's end-session
	// endpoint with id_token_hint, which lands on PROXY_LOGOUT_URL
	resp := signOut(t, b, e.base, "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	endSession := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(endSession, e.op.Issuer()), endSession)
	requireError(t, e.do(http.MethodGet, "/user/info", tok, nil), http.StatusUnauthorized)
	resp, err := b.Get(endSession)
	require.NoError(t, err)
	require.Equal(t, ssoLogoutTarget, resp.Header.Get("Location"))
	calls := e.op.EndSessionCalls()
	require.Len(t, calls, 1)
	require.True(t, calls[0].HintValid)
	require.Equal(t, ssoLogoutTarget, calls[0].PostLogoutRedirectURI)

	// back-channel logout revokes the matching session
	b2 := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b2, nil).StatusCode)
	tok2 := sessionOf(t, b2, e.base)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", tok2, nil).Code)
	logins := e.op.Logins()
	last := logins[len(logins)-1]
	form := url.Values{"logout_token": {e.op.LogoutToken(last.Subject, last.SID)}}
	r := e.doHeaders(http.MethodPost, "/sso/backchannel-logout", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	requireError(t, e.do(http.MethodGet, "/user/info", tok2, nil), http.StatusUnauthorized)
	// a forged logout token is refused
	bad := url.Values{"logout_token": {e.op.SignForeign(e.op.LogoutClaims(last.Subject, last.SID), "logout+jwt")}}
	r = e.doHeaders(http.MethodPost, "/sso/backchannel-logout", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, bad.Encode())
	requireError(t, r, http.StatusBadRequest)
}

// Defect 1: the post-logout return address handed to the identity
// provider is built from configuration, not from the Host header.
func TestSSOLogoutReturnIgnoresHost(t *testing.T) {
	t.Parallel()
	e := newSSOEnvWith(t, service.SSOPolicy{}, func(o *app.Options) { o.LogoutURL = "" })
	e.op.SetUser(oidctest.User{Subject: "sub-hal", Email: "hal@corp.example", EmailVerified: true})
	b := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	resp := signOut(t, b, e.base, "attacker.example")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	end, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, e.base+"/ui/login", end.Query().Get("post_logout_redirect_uri"))
}
