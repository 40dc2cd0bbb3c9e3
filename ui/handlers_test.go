package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

func TestUIRedirectsSignedOutBrowsers(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for path, want := range map[string]string{
		"/":                "/ui/",
		"/ui/":             "/ui/login",
		"/ui/spend":        "/ui/login?next=%2Fui%2Fspend",
		"/ui/users?q=x":    "/ui/login?next=%2Fui%2Fusers%3Fq%3Dx",
		"/ui/keys":         "/ui/login?next=%2Fui%2Fkeys",
		"/ui/password":     "/ui/login?next=%2Fui%2Fpassword",
		"/ui/teams":        "/ui/login?next=%2Fui%2Fteams",
		"/ui/invitations":  "/ui/login?next=%2Fui%2Finvitations",
		"/ui/audit?page=2": "/ui/login?next=%2Fui%2Faudit%3Fpage%3D2",
	} {
		p := b.get(path)
		require.Equal(t, http.StatusSeeOther, p.Status, path)
		require.Equal(t, want, p.Header.Get("Location"), path)
	}
	// A POST without a session changes nothing and is sent to sign in.
	p := b.post("/ui/keys/new", url.Values{"alias": {"x"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/ui/login", p.Header.Get("Location"))
}

func TestUISecurityHeadersOnEveryPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/ui/login", "/ui/forgot-password", "/ui/onboarding?id=nope", "/ui/reset-password?token=nope"} {
		requireSecure(t, path, b.get(path))
	}
	b.login(adminEmail, adminPassword)
	for _, path := range []string{"/ui/", "/ui/keys", "/ui/spend", "/ui/spend?scope=all", "/ui/users", "/ui/teams", "/ui/invitations",
		"/ui/password", "/ui/audit"} {
		p := b.get(path)
		require.Equal(t, http.StatusOK, p.Status, path)
		requireSecure(t, path, p)
		require.Contains(t, p.Body, `<main id="main"`, path)
	}
	css := b.get("/ui/static/style.css")
	require.Equal(t, http.StatusOK, css.Status)
	require.Contains(t, css.Header.Get("Content-Type"), "text/css")
	require.Equal(t, "nosniff", css.Header.Get("X-Content-Type-Options"))
	require.Equal(t, http.StatusNotFound, b.get("/ui/static/").Status)
	require.Equal(t, http.StatusNotFound, b.get("/ui/static/nope.js").Status)
	require.Equal(t, http.StatusNotFound, b.get("/ui/static/../templates/layout.html").Status)
}

func requireSecure(t *testing.T, path string, p page) {
	t.Helper()
	csp := p.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'", path)
	require.Contains(t, csp, "frame-ancestors 'none'", path)
	require.NotContains(t, csp, "unsafe-inline", path)
	require.Equal(t, "nosniff", p.Header.Get("X-Content-Type-Options"), path)
	require.Equal(t, "same-origin", p.Header.Get("Referrer-Policy"), path)
	require.Equal(t, "DENY", p.Header.Get("X-Frame-Options"), path)
	require.Contains(t, p.Header.Get("Content-Type"), "text/html", path)
	require.NotContains(t, p.Body, "<script>", path)
	require.NotContains(t, p.Body, " style=", path)
	require.NotContains(t, p.Body, " onclick=", path)
}

func TestUILogin(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	b := e.browser()
	form := b.get("/ui/login")
	tok := token(t, form)

	// Without the double-submit token nothing is tried.
	p := b.post("/ui/login", url.Values{"email": {"dev@example.com"}, "password": {"password-of-dev@example.com"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Empty(t, b.cookie("keygate_session"))
	// A token that does not match this browser's cookie fails too.
	other := e.browser()
	p = other.post("/ui/login", url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"password-of-dev@example.com"}})
	require.Equal(t, http.StatusForbidden, p.Status)

	p = b.post("/ui/login", url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"wrong-password"}})
	require.Equal(t, http.StatusUnauthorized, p.Status)
	require.Contains(t, p.Body, "Invalid credentials.")
	require.Contains(t, p.Body, `value="dev@example.com"`, "the e-mail is kept")
	require.NotContains(t, p.Body, "wrong-password")

	// A ?next= outside the UI is ignored (no open redirect).
	p = b.post("/ui/login", url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"password-of-dev@example.com"},
		"next": {"//evil.example/"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/ui/", p.Header.Get("Location"))
	require.NotEmpty(t, b.cookie("keygate_session"))
	require.NotEmpty(t, b.cookie("keygate_device"), "the browser is remembered for the per-address slow-down")
	home := b.get("/ui/")
	require.Equal(t, http.StatusOK, home.Status)
	require.Contains(t, home.Body, "dev@example.com")
	require.Contains(t, home.Body, `id="create-key"`)
	require.NotContains(t, home.Body, "/ui/users", "an internal user gets no users page")
	// Signed in, the login page sends you home.
	require.Equal(t, http.StatusSeeOther, b.get("/ui/login").Status)
	// ... and the admin pages refuse.
	require.Equal(t, http.StatusForbidden, b.get("/ui/users").Status)
	require.Equal(t, http.StatusForbidden, b.get("/ui/keys").Status)
	require.Equal(t, http.StatusForbidden, b.get("/ui/audit").Status)
}

func TestUILoginLockout(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	b := e.browser()
	tok := token(t, b.get("/ui/login"))
	var p page
	for range 6 {
		p = b.post("/ui/login", url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"wrong-password"}})
	}
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.Contains(t, p.Body, "Too many login attempts")
	require.NotEmpty(t, p.Header.Get("Retry-After"))
	// Even the right password waits.
	p = b.post("/ui/login", url.Values{"csrf_token": {tok}, "email": {"dev@example.com"}, "password": {"password-of-dev@example.com"}})
	require.Equal(t, http.StatusTooManyRequests, p.Status)
}

func TestUIKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	b := e.browser()
	home := b.login("dev@example.com", "password-of-dev@example.com")
	require.Contains(t, home.Body, "No keys yet")
	csrf := token(t, home)

	created := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"laptop"}, "duration": {"30d"},
		"models": {"gpt-4o, claude"}, "max_budget": {"12.5"}})
	require.Equal(t, http.StatusOK, created.Status, created.Body)
	require.Equal(t, "no-store", created.Header.Get("Cache-Control"))
	m := newKeyRE.FindStringSubmatch(created.Body)
	require.NotNil(t, m, created.Body)
	key := m[1]
	require.Contains(t, created.Body, "you will not see it again")
	require.Contains(t, created.Body, "gpt-4o, claude")
	require.Contains(t, created.Body, "$12.50")
	require.Equal(t, http.StatusOK, e.verify(key))

	list := b.get("/ui/")
	require.NotContains(t, list.Body, key, "the key is shown once")
	require.Contains(t, list.Body, "laptop")
	require.Contains(t, list.Body, "sk-...")
	require.Contains(t, list.Body, "$0.00 of $12.50")

	// Invalid input re-renders the form with the message and keeps it.
	bad := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"x"}, "max_budget": {"lots"}})
	require.Equal(t, http.StatusBadRequest, bad.Status)
	require.Contains(t, bad.Body, "The budget must be a number")
	dup := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"laptop"}, "duration": {"never"}})
	require.Equal(t, http.StatusConflict, dup.Status)
	require.Contains(t, dup.Body, `value="laptop"`)

	hash := regexp.MustCompile(`name="key" value="([0-9a-f]{64})"`).FindStringSubmatch(list.Body)
	require.NotNil(t, hash)
	// A forged delete (no or wrong token) is refused and changes nothing.
	for _, forged := range []url.Values{{"key": {hash[1]}}, {"key": {hash[1]}, "csrf_token": {"forged"}}} {
		p := b.post("/ui/keys/delete", forged)
		require.Equal(t, http.StatusForbidden, p.Status)
		require.Equal(t, http.StatusOK, e.verify(key))
	}
	// Without script the row's button posts without the confirmation:
	// the answer is a page that asks, and nothing is deleted yet.
	ask := b.post("/ui/keys/delete", url.Values{"csrf_token": {csrf}, "key": {hash[1]}, "return": {"/ui/"}})
	require.Equal(t, http.StatusOK, ask.Status)
	require.Contains(t, ask.Body, `id="confirm-yes"`)
	require.Contains(t, ask.Body, `name="confirm" value="yes"`)
	require.Contains(t, ask.Body, "<strong>laptop</strong>")
	require.Equal(t, http.StatusOK, e.verify(key))
	del := b.post("/ui/keys/delete", url.Values{"csrf_token": {csrf}, "key": {hash[1]}, "return": {"/ui/"}, "confirm": {"yes"}})
	require.Equal(t, http.StatusSeeOther, del.Status)
	require.Equal(t, "/ui/", del.Header.Get("Location"))
	require.Equal(t, http.StatusUnauthorized, e.verify(key))
	after := b.get("/ui/")
	require.Contains(t, after.Body, "Key “laptop” was deleted")
	require.Contains(t, after.Body, "No keys yet")
	// The flash is shown once.
	require.NotContains(t, b.get("/ui/").Body, "was deleted")
}

func TestUIViewerCannotWrite(t *testing.T) {
	e := newEnv(t)
	e.user("viewer@example.com", rbac.RoleInternalUserViewer)
	e.user("auditor@example.com", rbac.RoleProxyAdminViewer)
	for _, who := range []string{"viewer@example.com", "auditor@example.com"} {
		b := e.browser()
		home := b.login(who, "password-of-"+who)
		require.NotContains(t, home.Body, `id="create-key"`, who)
		require.NotContains(t, home.Body, "/ui/keys/new", who)
		csrf := b.cookie("keygate_csrf")
		require.NotEmpty(t, csrf)
		// Even with a valid token the service refuses, and nothing is made.
		p := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"sneaky"}})
		require.Equal(t, http.StatusForbidden, p.Status, who)
		require.NotContains(t, p.Body, "sk-", who)
		keys, _, err := e.store.ListKeys(context.Background(), store.KeyFilter{KeyAlias: "sneaky"})
		require.NoError(t, err)
		require.Empty(t, keys, who)
	}
	b := e.browser()
	users := func() page {
		b.login("auditor@example.com", "password-of-auditor@example.com")
		return b.get("/ui/users")
	}()
	require.Equal(t, http.StatusOK, users.Status)
	require.NotContains(t, users.Body, "+ New User", "an admin viewer sees users but cannot create them")
	require.NotContains(t, users.Body, "Create invitation link")
	require.NotContains(t, users.Body, "/ui/users/reset-link")
}

func TestUIOnboarding(t *testing.T) {
	e := newEnv(t)
	email, role := "new@example.com", string(rbac.RoleInternalUser)
	d, err := e.app.Service().CreateUser(context.Background(), master(), service.NewUser{UserEmail: &email, UserRole: &role, AutoCreateKey: new(bool)})
	require.NoError(t, err)
	inv, err := e.app.Service().CreateInvitation(context.Background(), master(), service.NewInvitation{UserID: d.User.ID})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(inv.Link, "http://keygate.test/ui/onboarding?id="), "links use the configured base: %s", inv.Link)
	link, err := url.Parse(inv.Link)
	require.NoError(t, err)
	path := link.RequestURI()

	b := e.browser()
	unknown := b.get("/ui/onboarding?id=00000000-0000-0000-0000-000000000000")
	require.Equal(t, http.StatusGone, unknown.Status)
	form := b.get(path)
	require.Equal(t, http.StatusOK, form.Status)
	require.Equal(t, "no-store", form.Header.Get("Cache-Control"))
	require.Contains(t, form.Body, email)
	tok := token(t, form)

	p := b.post("/ui/onboarding", url.Values{"csrf_token": {tok}, "id": {inv.ID}, "password": {"a-long-password"}, "confirm": {"different"}})
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "do not match")
	p = b.post("/ui/onboarding", url.Values{"csrf_token": {tok}, "id": {inv.ID}, "password": {"short"}, "confirm": {"short"}})
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "at least 8 characters")
	require.Equal(t, http.StatusOK, b.get(path).Status, "a rejected password does not use up the link")

	p = b.post("/ui/onboarding", url.Values{"csrf_token": {tok}, "id": {inv.ID}, "password": {"a-long-password"}, "confirm": {"a-long-password"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, "/ui/", p.Header.Get("Location"))
	home := b.get("/ui/")
	require.Equal(t, http.StatusOK, home.Status)
	require.Contains(t, home.Body, "Welcome!")
	require.Contains(t, home.Body, email)

	// Used: the same clear page as an unknown id, and nothing changes.
	again := e.browser()
	used := again.get(path)
	require.Equal(t, http.StatusGone, used.Status)
	require.Equal(t, unknown.Body[strings.Index(unknown.Body, "<main"):], used.Body[strings.Index(used.Body, "<main"):])
	p = again.post("/ui/onboarding", url.Values{"csrf_token": {token(t, again.get("/ui/login"))}, "id": {inv.ID},
		"password": {"attacker-password"}, "confirm": {"attacker-password"}})
	require.Equal(t, http.StatusGone, p.Status)
	require.Empty(t, again.cookie("keygate_session"))
	e.browser().login(email, "a-long-password")
}

func TestUIResetAndForgot(t *testing.T) {
	_, mailer := withMail(t) // without e-mail the form is not offered
	e := newEnv(t, mailer)
	b := e.browser()
	require.Equal(t, http.StatusGone, b.get("/ui/reset-password?token=nope").Status)
	form := b.get("/ui/forgot-password")
	tok := token(t, form)
	known := b.post("/ui/forgot-password", url.Values{"csrf_token": {tok}, "email": {adminEmail}})
	unknown := b.post("/ui/forgot-password", url.Values{"csrf_token": {tok}, "email": {"nobody@example.com"}})
	require.Equal(t, http.StatusOK, known.Status)
	require.Equal(t, known.Status, unknown.Status)
	require.Contains(t, known.Body, `id="forgot-sent"`)
	require.Equal(t, strings.ReplaceAll(known.Body, adminEmail, ""), strings.ReplaceAll(unknown.Body, "nobody@example.com", ""))
}

func TestUIChangePassword(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	b := e.browser()
	csrf := token(t, b.login("dev@example.com", "password-of-dev@example.com"))
	p := b.post("/ui/password", url.Values{"csrf_token": {csrf}, "current": {"wrong"}, "password": {"new-password-1"}, "confirm": {"new-password-1"}})
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "current password is wrong")
	p = b.post("/ui/password", url.Values{"csrf_token": {csrf}, "current": {"password-of-dev@example.com"}, "password": {"new-password-1"},
		"confirm": {"new-password-1"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, http.StatusOK, b.get("/ui/").Status, "this session stays")
	e.browser().login("dev@example.com", "new-password-1")
}

// An expired session token is renewed while its session lives, as the API
// does; once the session ends the browser is sent to sign in.
func TestUISessionRefresh(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminEmail, adminPassword)
	before := b.cookie("keygate_session")
	e.clock.Advance(20 * time.Minute)
	p := b.get("/ui/")
	require.Equal(t, http.StatusOK, p.Status)
	require.NotEqual(t, before, b.cookie("keygate_session"), "a fresh token was set")
	e.clock.Advance(25 * time.Hour)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").Status)
}

// The UI never accepts an API key in place of a session, not even from
// the session cookie.
func TestUIRejectsAPIKeys(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ui/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+masterKey)
	req.AddCookie(&http.Cookie{Name: "keygate_session", Value: masterKey})
	p := e.browser().do(req)
	require.Equal(t, http.StatusSeeOther, p.Status)
}
