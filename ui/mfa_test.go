package ui_test

import (
	"context"
	"crypto/sha256"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mfa"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store/gormstore"
)

// newEnvMFA is newEnv with roles that must have a second factor.
func newEnvMFA(t *testing.T, required ...rbac.Role) *env {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: time.Now().UTC()}
	o := app.Options{Store: st, Logger: slog.New(slog.DiscardHandler), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		MaxBodyBytes: 1 << 20, Now: clk.Now, Secret: "ui-test-secret-0123456789abcdef", Issuer: "http://keygate.test",
		LogoutURL: logoutURL, UIUsername: adminEmail, UIPassword: adminPassword, PasswordParams: &cheapArgon}
	for _, r := range required {
		o.MFARequiredRoles = append(o.MFARequiredRoles, string(r))
	}
	a, err := app.New(t.Context(), o)
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, app: a, store: st, clock: clk}
}

var (
	secretRE = regexp.MustCompile(`id="totp-secret"[^>]*value="([A-Z2-7]+)"`)
	codesRE  = regexp.MustCompile(`<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</li>`)
)

func (e *env) totp(secret string) string {
	e.t.Helper()
	c, err := mfa.TOTPCode(secret, mfa.TOTPStep(e.clock.Now()))
	require.NoError(e.t, err)
	return c
}

// passwordStep posts the sign-in form and returns where it sent the
// browser.
func (b *browser) passwordStep(email, pw, next string) string {
	b.t.Helper()
	form := b.get("/ui/login")
	res := b.post("/ui/login", url.Values{"csrf_token": {token(b.t, form)}, "email": {email}, "password": {pw}, "next": {next}})
	require.Equal(b.t, http.StatusSeeOther, res.Status, res.Body)
	return res.Header.Get("Location")
}

// TestUIMFASetupAndSignIn: a user turns on an authenticator app on the
// account page (QR code, first code, recovery codes shown once); the next
// sign-in stops at the second step, where a wrong code is refused and the
// right one signs in; a recovery code works on the same page.
func TestUIMFASetupAndSignIn(t *testing.T) {
	e := newEnv(t)
	e.user("sam@example.com", rbac.RoleInternalUser)
	b := e.browser()
	b.login("sam@example.com", "password-of-sam@example.com")

	sec := b.get("/ui/account/security")
	require.Equal(t, http.StatusOK, sec.Status)
	require.Contains(t, sec.Body, `id="totp-off"`)
	setup := b.post("/ui/account/security/totp", url.Values{"csrf_token": {token(t, sec)}})
	require.Equal(t, http.StatusOK, setup.Status, setup.Body)
	require.Equal(t, "no-store", setup.Header.Get("Cache-Control"))
	require.Contains(t, setup.Body, `src="data:image/png;base64,`)
	require.NotEmpty(t, secretRE.FindStringSubmatch(setup.Body)[1], "the setup page shows a secret")
	require.Contains(t, setup.Body, `name="password"`, "a signed-in user proves it is them with the password")
	noProof := b.post("/ui/account/security/totp/confirm", url.Values{"csrf_token": {token(t, setup)}, "code": {"000000"}})
	require.Contains(t, noProof.Body, "current password")
	bad := b.post("/ui/account/security/totp/confirm", url.Values{"csrf_token": {token(t, noProof)}, "code": {"000000"},
		"password": {"password-of-sam@example.com"}})
	require.Equal(t, http.StatusOK, bad.Status)
	require.Contains(t, bad.Body, "does not match")
	secret := secretRE.FindStringSubmatch(bad.Body)[1] // a new secret is shown after a miss
	done := b.post("/ui/account/security/totp/confirm", url.Values{"csrf_token": {token(t, bad)}, "code": {e.totp(secret)},
		"password": {"password-of-sam@example.com"}})
	require.Equal(t, http.StatusOK, done.Status, done.Body)
	codes := codesRE.FindAllStringSubmatch(done.Body, -1)
	require.Len(t, codes, 10)
	require.Equal(t, "no-store", done.Header.Get("Cache-Control"))
	require.Contains(t, b.get("/ui/account/security").Body, `id="totp-on"`)

	// a new browser: the password leads to the second step, no session yet
	b2 := e.browser()
	to := b2.passwordStep("sam@example.com", "password-of-sam@example.com", "/ui/spend")
	require.Equal(t, "/ui/login/mfa?next=%2Fui%2Fspend", to)
	require.Empty(t, b2.cookie("keygate_session"))
	require.NotEmpty(t, b2.cookie("keygate_mfa"))
	require.Equal(t, http.StatusSeeOther, b2.get("/ui/").Status, "no session before the second factor")
	step := b2.get(to)
	require.Equal(t, http.StatusOK, step.Status, step.Body)
	require.Contains(t, step.Body, `autocomplete="one-time-code"`)
	wrong := b2.post("/ui/login/mfa", url.Values{"csrf_token": {token(t, step)}, "code": {"123456"}, "next": {"/ui/spend"}})
	require.Equal(t, http.StatusUnauthorized, wrong.Status)
	require.Contains(t, wrong.Body, "Invalid code.")
	// a forged post without this browser's form token is refused
	require.Equal(t, http.StatusForbidden, b2.post("/ui/login/mfa", url.Values{"code": {"123456"}}).Status)
	e.clock.Advance(30 * time.Second)
	ok := b2.post("/ui/login/mfa", url.Values{"csrf_token": {token(t, step)}, "code": {e.totp(secret)}, "next": {"/ui/spend"}})
	require.Equal(t, http.StatusSeeOther, ok.Status, ok.Body)
	require.Equal(t, "/ui/spend", ok.Header.Get("Location"))
	require.NotEmpty(t, b2.cookie("keygate_session"))
	require.Empty(t, b2.cookie("keygate_mfa"), "the pending sign-in is forgotten")
	require.Equal(t, http.StatusOK, b2.get("/ui/spend").Status)

	// a recovery code on the second step
	b3 := e.browser()
	to = b3.passwordStep("sam@example.com", "password-of-sam@example.com", "/ui/")
	rec := b3.get("/ui/login/mfa?recovery=1")
	require.Contains(t, rec.Body, "Recovery code")
	res := b3.post("/ui/login/mfa", url.Values{"csrf_token": {token(t, rec)}, "code": {codes[3][1]}, "kind": {"recovery"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, http.StatusOK, b3.get("/ui/").Status)
	require.Contains(t, b3.get("/ui/account/security").Body, `<span id="codes-left">9</span>`)
	_ = to
}

// TestUIMFAPolicyEnrollment: an admin whose role requires a second factor
// signs in with a password, lands on the setup page (not in the app),
// scans, confirms and sees the recovery codes, then is signed in; the
// users page shows the badge and another admin can reset it.
func TestUIMFAPolicyEnrollment(t *testing.T) {
	e := newEnvMFA(t, rbac.RoleProxyAdmin)
	e.user("boss@example.com", rbac.RoleProxyAdmin)
	b := e.browser()
	to := b.passwordStep("boss@example.com", "password-of-boss@example.com", "/ui/users")
	require.Equal(t, "/ui/mfa/setup?next=%2Fui%2Fusers", to)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/users").Status, "nothing opens before the setup")
	require.Equal(t, "/ui/mfa/setup", strings.Split(b.get("/ui/login/mfa").Header.Get("Location"), "?")[0])
	setup := b.get(to)
	require.Equal(t, http.StatusOK, setup.Status, setup.Body)
	secret := secretRE.FindStringSubmatch(setup.Body)[1]
	done := b.post(to, url.Values{"csrf_token": {token(t, setup)}, "code": {e.totp(secret)}})
	require.Equal(t, http.StatusOK, done.Status, done.Body)
	require.Len(t, codesRE.FindAllStringSubmatch(done.Body, -1), 10)
	require.Contains(t, html.UnescapeString(done.Body), `href="/ui/users"`)
	users := b.get("/ui/users")
	require.Equal(t, http.StatusOK, users.Status)
	require.Contains(t, users.Body, "2FA")

	// the bootstrap admin (also proxy_admin) sets one up too, then resets boss's
	admin := e.browser()
	to = admin.passwordStep(adminEmail, adminPassword, "/ui/users")
	setup = admin.get(to)
	secret = secretRE.FindStringSubmatch(setup.Body)[1]
	require.Equal(t, http.StatusOK, admin.post(to, url.Values{"csrf_token": {token(t, setup)}, "code": {e.totp(secret)}}).Status)
	users = admin.get("/ui/users")
	require.Contains(t, users.Body, `action="/ui/users/mfa-reset"`)
	boss, err := e.store.GetUserByEmail(context.Background(), "boss@example.com")
	require.NoError(t, err)
	res := admin.post("/ui/users/mfa-reset", url.Values{"csrf_token": {admin.cookie("keygate_csrf")}, "user_id": {boss.ID}, "confirm": {"yes"}})
	require.Equal(t, "/ui/users", res.Header.Get("Location"))
	require.Contains(t, admin.get("/ui/users").Body, "Two-factor authentication was reset")
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/users").Status, "the reset ended boss's session")
	require.Equal(t, "/ui/mfa/setup?next=%2Fui%2F", b.passwordStep("boss@example.com", "password-of-boss@example.com", "/ui/"))
}
