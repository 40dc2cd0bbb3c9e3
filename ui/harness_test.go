package ui_test

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

const (
	masterKey     = "sk-ui-test-master-key"
	adminEmail    = "admin@example.com"
	adminPassword = "bootstrap-admin-pass"
	logoutURL     = "https://intranet.example/bye"
)

// cheapArgon keeps logins fast under -race; the real cost is tested in
// auth/password.
var cheapArgon = password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is the real application (internal/app, as cmd wires it) over SQLite
// on a loopback listener.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	app   *app.App
	store store.Store
	clock *clock
}

func newEnv(t *testing.T, with ...func(*app.Options)) *env {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: time.Now().UTC()}
	o := app.Options{Store: st, Logger: slog.New(slog.DiscardHandler), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		MaxBodyBytes: 1 << 20, Now: clk.Now, Secret: "ui-test-secret-0123456789abcdef", Issuer: "http://keygate.test",
		LogoutURL: logoutURL, UIUsername: adminEmail, UIPassword: adminPassword, PasswordParams: &cheapArgon}
	for _, f := range with {
		f(&o)
	}
	a, err := app.New(t.Context(), o)
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, app: a, store: st, clock: clk}
}

// master is the operator principal, for setting up fixtures through the
// same service layer.
func master() auth.Principal {
	return auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}
}

// user creates a user with a password.
func (e *env) user(email string, role rbac.Role) {
	e.t.Helper()
	r, pw := string(role), "password-of-"+email
	_, err := e.app.Service().CreateUser(context.Background(), master(), service.NewUser{UserEmail: &email, UserRole: &r, Password: &pw, AutoCreateKey: new(bool)})
	require.NoError(e.t, err)
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see every 303.
type browser struct {
	t   *testing.T
	e   *env
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &browser{t: e.t, e: e, jar: jar, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	Status int
	Body   string
	Header http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return page{Status: resp.StatusCode, Body: string(body), Header: resp.Header}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// token reads the CSRF token from a page's first form.
func token(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, "no csrf_token on page: %s", p.Body)
	return m[1]
}

// login signs in through the login form and returns the signed-in page.
func (b *browser) login(email, pw string) page {
	b.t.Helper()
	form := b.get("/ui/login")
	require.Equal(b.t, http.StatusOK, form.Status)
	res := b.post("/ui/login", url.Values{"csrf_token": {token(b.t, form)}, "email": {email}, "password": {pw}, "next": {"/ui/"}})
	require.Equal(b.t, http.StatusSeeOther, res.Status, res.Body)
	require.Equal(b.t, "/ui/", res.Header.Get("Location"))
	home := b.get("/ui/")
	require.Equal(b.t, http.StatusOK, home.Status, home.Body)
	return home
}

// cookie returns the value of a cookie the browser holds for the server.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL + "/ui/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var newKeyRE = regexp.MustCompile(`id="new-key"[^>]*value="(sk-[^"]+)"`)

// verify calls forward auth with a key.
func (e *env) verify(key string) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/auth/verify", nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}
