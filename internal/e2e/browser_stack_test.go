package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store/gormstore"
)

const (
	chromiumPath       = "/usr/bin/chromium"
	uiAdminEmail       = "admin@example.com"
	uiAdminPassword    = "bootstrap-admin-pass"
	envUpdateShots     = "KEYGATE_UPDATE_SCREENSHOTS"
	envScreenshotDir   = "KEYGATE_SCREENSHOT_DIR"
	browserTestTimeout = 3 * time.Minute
)

// committedShot reports whether a screenshot is kept in docs/screenshots
// and shown in the README; the others stay in the run's directory.
func committedShot(name string) bool {
	switch name {
	case "login", "onboarding", "my-keys", "my-keys-mobile", "key-created", "users", "invitation-link", "teams", "invitations", "spend", "scim":
		return true
	case "getting-started", "key-usage", "key-usage-mobile", "users-status", "reset-link", "all-keys-sorted", "audit-log", "not-found-mobile":
		return true // issue 16: the UI as users first meet it
	}
	return editShot(name)
}

// uiStack is Keygate with its web UI on loopback, a page standing in for
// PROXY_LOGOUT_URL, and a headless Chromium.
type uiStack struct {
	t      *testing.T
	kg     *httptest.Server
	bye    *httptest.Server
	app    *app.App
	store  *gormstore.Store
	shots  string
	update bool
	root   context.Context // the browser's first tab (the admin's)
}

func startUIStack(t *testing.T) *uiStack { return startUIStackAt(t, "") }

// startUIStackAt is startUIStack with Keygate addressed by host name
// (e.g. localhost, which passkeys need: browsers refuse an IP address as
// a WebAuthn relying party) instead of 127.0.0.1.
func startUIStackAt(t *testing.T, host string, with ...func(*app.Options)) *uiStack {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		dbtest.RequireOrSkip(t, "Chromium", "apt-get install -y chromium")
	}
	bye := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Signed out</title><h1 id="bye">You are signed out of the intranet.</h1>`)
	}))
	t.Cleanup(bye.Close)
	st := openStore(t, "")
	cheap := password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	// Links are built from the configured base, so the listener comes
	// first and the application is plugged in once it knows its URL.
	kg := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(kg.Close)
	if host != "" {
		kg.URL = strings.Replace(kg.URL, "127.0.0.1", host, 1)
	}
	o := app.Options{Store: st, Logger: quietLogger(), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		MaxBodyBytes: 1 << 20, Secret: "e2e-browser-secret-0123456789abcdef", Issuer: kg.URL, LogoutURL: bye.URL + "/bye",
		UIUsername: uiAdminEmail, UIPassword: uiAdminPassword, PasswordParams: &cheap}
	for _, f := range with {
		f(&o)
	}
	a, err := app.New(context.Background(), o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a.Run(ctx)
	t.Cleanup(func() { cancel(); a.Wait() })
	kg.Config.Handler = a.Handler()

	s := &uiStack{t: t, kg: kg, bye: bye, app: a, store: st, update: os.Getenv(envUpdateShots) == "1"}
	s.shots = os.Getenv(envScreenshotDir)
	if s.shots == "" {
		s.shots = filepath.Join(os.TempDir(), "keygate-screenshots")
	}
	require.NoError(t, os.MkdirAll(s.shots, 0o755))

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 860))
	tctx, tcancel := context.WithTimeout(t.Context(), browserTestTimeout)
	actx, acancel := chromedp.NewExecAllocator(tctx, opts...)
	root, rcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { rcancel(); acancel(); tcancel() })
	require.NoError(t, chromedp.Do(root), "start Chromium")
	s.root = root
	return s
}

// tab opens a tab in a fresh browser context: its own cookie jar, as a
// different person on a different machine would have.
func (s *uiStack) tab() context.Context {
	ctx, cancel := chromedp.NewContext(s.root, chromedp.WithNewBrowserContext())
	s.t.Cleanup(cancel)
	require.NoError(s.t, chromedp.Do(ctx))
	return ctx
}

func (s *uiStack) url(path string) string { return s.kg.URL + path }

// do runs steps, failing with a screenshot of what the browser shows.
func (s *uiStack) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		s.shot(ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		s.t.Fatalf("%s: %v (page %s; screenshot in %s)", what, err, loc, s.shots)
	}
}

func (s *uiStack) text(ctx context.Context, sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(s.t, err, sel)
	return v
}

func (s *uiStack) value(ctx context.Context, sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(s.t, err, sel)
	return v
}

func (s *uiStack) location(ctx context.Context) string {
	s.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(s.t, err)
	return v
}

func (s *uiStack) exists(ctx context.Context, sel string) bool {
	s.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel)))
	require.NoError(s.t, err)
	return v
}

// shot saves a PNG of the whole page to the screenshot directory, and to
// docs/screenshots when KEYGATE_UPDATE_SCREENSHOTS=1.
func (s *uiStack) shot(ctx context.Context, name string) {
	s.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Logf("screenshot %s: %v", name, err)
		return
	}
	require.NoError(s.t, os.WriteFile(filepath.Join(s.shots, name+".png"), png, 0o644))
	if s.update && committedShot(name) {
		dir := filepath.Join("..", "..", "docs", "screenshots")
		require.NoError(s.t, os.MkdirAll(dir, 0o755))
		require.NoError(s.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
	}
}

// signIn fills the login form.
func (s *uiStack) signIn(ctx context.Context, email, pw, screenshot string) {
	s.t.Helper()
	s.do(ctx, "open login", chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	require.True(s.t, strings.HasPrefix(s.location(ctx), s.url("/ui/login")))
	if screenshot != "" {
		s.shot(ctx, screenshot)
	}
	s.do(ctx, "sign in", chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.CSS("h1")), chromedp.WaitVisible(chromedp.ID("sign-out")))
}

// cookies returns the tab's cookies for Keygate, as a plain client would
// send them.
func (s *uiStack) cookies(ctx context.Context) []*http.Cookie {
	s.t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url("/ui/")}})
	require.NoError(s.t, err)
	var out []*http.Cookie
	for _, c := range res.Cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func verifyStatus(t *testing.T, base, key string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/auth/verify", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// waitText waits until the element sel exists and contains text: after a
// form post the old page may still show an element of the same id.
func waitText(sel, text string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf("(function(){var e=document.querySelector(%q);return !!e && e.textContent.includes(%q);})()", sel, text))
}

// waitJS waits until the expression is true (errors are expected while
// the page navigates; it keeps asking).
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if ok, err := chromedp.Evaluate[bool](expr)(ctx, t); err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// grantClipboard lets the tab's page use the async clipboard API, as a
// user clicking "Copy" in a real browser may.
func (s *uiStack) grantClipboard(ctx context.Context) {
	s.t.Helper()
	bc := chromedp.FromContext(ctx).BrowserContextID
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    browser.PermissionSettingGranted, Origin: s.kg.URL, BrowserContextID: bc})
		if err != nil {
			s.t.Logf("grant %s: %v", name, err)
		}
	}
}
