package ui_test

// Regression tests for issue 14 on the web pages.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
)

// postWith posts a form with extra request headers.
func (b *browser) postWith(path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		if k == "Host" {
			// the client picks cookies by the Host it sends; send the
			// server's own, as a browser behind a rewriting proxy would
			u, _ := url.Parse(b.e.srv.URL + "/ui/")
			for _, c := range b.jar.Cookies(u) {
				req.AddCookie(c)
			}
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return b.do(req)
}

// Defect 7: a cross-site post to the sign-in form is refused even when it
// carries the form token.
func TestUILoginRefusesCrossSite(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	b := e.browser()
	tok := token(t, b.get("/ui/login"))
	form := url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"password-of-dev@example.com"}}
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "same-site"}} {
		p := b.postWith("/ui/login", form, hdr)
		require.Equal(t, http.StatusForbidden, p.Status, hdr)
		require.Empty(t, b.cookie("keygate_session"))
	}
	p := b.postWith("/ui/login", form, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.srv.URL})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
}

// Defect 5: the post-login target accepts only paths that browsers keep on
// this origin.
func TestUILoginNextStaysOnOrigin(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	for _, next := range []string{"/ui/\t/evil.example", "//evil.example", "/ui/%2F%2Fevil.example", "/ui/%5Cevil.example", "/ui\\evil.example",
		"/\t/evil.example", "/ui/\n/evil", "https://evil.example/ui/", "/%2F/evil.example", "/ui/..%2F..%2F%2Fevil.example"} {
		b := e.browser()
		tok := token(t, b.get("/ui/login"))
		p := b.post("/ui/login", url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"password-of-dev@example.com"}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, p.Status, next)
		require.Equal(t, "/ui/", p.Header.Get("Location"), "next %q", next)
	}
}

// Defect 14: a refreshed session cookie keeps the session's lifetime and
// the CSRF cookie is renewed with it.
func TestUIRefreshKeepsCookieLifetimes(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminEmail, adminPassword)
	e.clock.Advance(20 * time.Minute)
	p := b.get("/ui/")
	require.Equal(t, http.StatusOK, p.Status)
	set := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		set[c.Name] = c
	}
	require.Contains(t, set, "keygate_session")
	require.Greater(t, set["keygate_session"].MaxAge, 0)
	require.Contains(t, set, "keygate_csrf")
	require.Greater(t, set["keygate_csrf"].MaxAge, 0)
}

// Defect 11: the session cookie alone, once expired, is not exchanged.
func TestUIExpiredTokenAloneIsNotExchanged(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminEmail, adminPassword)
	stolen := b.cookie("keygate_session")
	e.clock.Advance(20 * time.Minute)
	thief := e.browser()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ui/", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "keygate_session", Value: stolen})
	p := thief.do(req)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/ui/login", p.Header.Get("Location"))
	require.Equal(t, http.StatusOK, b.get("/ui/").Status, "the browser that signed in keeps its session")
}

// Defect 8: signing out is a POST with the CSRF token; a link or an
// image cannot sign anyone out.
func TestUILogoutIsAPost(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	home := b.login(adminEmail, adminPassword)
	require.Contains(t, home.Body, `action="/ui/logout"`, "the sign-out control is a form")
	require.NotContains(t, home.Body, `href="/ui/logout"`)

	confirm := b.get("/ui/logout")
	require.Equal(t, http.StatusOK, confirm.Status)
	require.Contains(t, confirm.Body, `method="post"`)
	require.Equal(t, http.StatusOK, b.get("/ui/").Status, "GET /ui/logout does not sign out")

	p := b.post("/ui/logout", url.Values{})
	require.Equal(t, http.StatusForbidden, p.Status)
	p = b.postWith("/ui/logout", url.Values{"csrf_token": {token(t, confirm)}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Equal(t, http.StatusOK, b.get("/ui/").Status)

	p = b.post("/ui/logout", url.Values{"csrf_token": {token(t, confirm)}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, logoutURL, p.Header.Get("Location"))
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").Status, "signed out")
}

// Defect 1: the invitation link shown after creating a user comes from
// configuration, whatever Host the request named.
func TestUIInvitationLinkIgnoresHost(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	csrf := token(t, b.login(adminEmail, adminPassword))
	p := b.postWith("/ui/users/new", url.Values{"csrf_token": {csrf}, "email": {"newbie@example.com"}, "role": {"internal_user"}},
		map[string]string{"Host": "attacker.example"})
	if p.Status == http.StatusSeeOther {
		p = b.get(p.Header.Get("Location"))
	}
	require.NotContains(t, p.Body, "attacker.example")
	require.Contains(t, p.Body, "http://keygate.test/ui/onboarding?id=")
}

// Signing out is a form, and browsers hold the redirect that answers it
// to the page's form-action: the configured logout page is allowed there,
// and nothing else beyond Keygate itself.
func TestUIFormActionAllowsTheLogoutPage(t *testing.T) {
	e := newEnv(t)
	csp := e.browser().get("/ui/login").Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "form-action 'self' https://intranet.example;")
}
