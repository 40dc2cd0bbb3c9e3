package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// hydraBinEnv names a Hydra binary to use instead of looking for one.
const hydraBinEnv = "KEYGATE_HYDRA_BIN"

// The OAuth client the test registers at Hydra.
const (
	hydraClientID     = "keygate-e2e"
	hydraClientSecret = "keygate-e2e-secret-not-real"
)

// TestHydraSSO runs the generic OIDC provider of auth/sso against Ory Hydra
// v2.3.0 — a certified OpenID provider — with a headless login/consent/
// logout app: discovery, the code flow with PKCE and nonce, ID token
// verification against Hydra's JWKS, a replayed code and a wrong verifier,
// RP-initiated logout ending at the post-logout URL, and the back-channel
// logout token Hydra sends, verified by the same provider.
func TestHydraSSO(t *testing.T) {
	t.Parallel()
	bin := hydraBinary(t)
	backchannel := make(chan string, 4)
	bcSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ParseForm() == nil {
			backchannel <- r.PostForm.Get("logout_token")
		}
	}))
	t.Cleanup(bcSrv.Close)

	publicAddr, adminAddr := hydraFreeAddr(t), hydraFreeAddr(t)
	issuer, admin := "http://"+publicAddr, "http://"+adminAddr
	app := httptest.NewServer(hydraLoginConsentApp(t, admin))
	t.Cleanup(app.Close)
	// Hydra wants post-logout URLs on the host and port of a redirect
	// URI, so both live on the app's server; the browser stops before
	// reaching the callback.
	callback := app.URL + "/sso/callback"
	loggedOut := app.URL + "/logged-out"

	hydraStart(t, bin, publicAddr, adminAddr, app.URL)
	ctx := context.Background()
	g := hydraProvider(t, admin, issuer, callback, map[string]any{
		"post_logout_redirect_uris": []string{loggedOut},
		"backchannel_logout_uri":    bcSrv.URL + "/sso/backchannel-logout", "backchannel_logout_session_required": true,
	})

	browser := hydraBrowser(t, callback, loggedOut)
	id, err := hydraLogin(t, browser, g, callback, func(code string, fs sso.FlowState) (sso.Identity, error) {
		id, err := g.Exchange(ctx, code, fs.Verifier, fs.Nonce)
		require.NoError(t, err)
		// The code is single-use at a real provider too.
		_, err = g.Exchange(ctx, code, fs.Verifier, fs.Nonce)
		require.ErrorIs(t, err, sso.ErrExchange)
		return id, nil
	})
	require.NoError(t, err)
	require.Equal(t, "hydra", id.Provider)
	require.Equal(t, issuer, id.Issuer)
	require.Equal(t, "alice", id.Subject)
	require.Equal(t, "alice@example.com", id.Email)
	require.True(t, id.EmailVerified)
	require.Equal(t, "Alice Example", id.Name)
	require.Equal(t, []string{"kg-admins", "eng"}, id.Groups)
	require.NotEmpty(t, id.SID, "Hydra puts the session id in the ID token")

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		_, err := hydraLogin(t, browser, g, callback, func(code string, fs sso.FlowState) (sso.Identity, error) {
			other, err := sso.NewFlow(rand.Reader, "hydra", "", time.Now())
			require.NoError(t, err)
			return g.Exchange(ctx, code, other.Verifier, fs.Nonce)
		})
		require.ErrorIs(t, err, sso.ErrExchange)
	})
	t.Run("wrong nonce", func(t *testing.T) {
		_, err := hydraLogin(t, browser, g, callback, func(code string, fs sso.FlowState) (sso.Identity, error) {
			return g.Exchange(ctx, code, fs.Verifier, fs.Nonce+"x")
		})
		require.ErrorIs(t, err, sso.ErrInvalidToken)
	})

	// RP-initiated logout: Hydra asks the logout app, ends the session,
	// sends back-channel logout tokens and lands on the post-logout URL.
	end := g.EndSessionURL(id.IDToken, loggedOut)
	require.True(t, strings.HasPrefix(end, issuer+"/oauth2/sessions/logout?"), end)
	landed := hydraFollow(t, browser, end)
	require.True(t, strings.HasPrefix(landed, loggedOut), "logout ended at %s", landed)

	select {
	case raw := <-backchannel:
		lc, err := g.VerifyLogoutToken(ctx, raw)
		require.NoError(t, err)
		t.Logf("Hydra's logout token: sub=%q sid=%q", lc.Subject, lc.SID)
		require.Equal(t, issuer, lc.Issuer)
		require.Equal(t, id.SID, lc.SID)
		require.NotEmpty(t, lc.JTI)
		if lc.Subject != "" {
			require.Equal(t, "alice", lc.Subject)
		}
		// An ID token from the same provider is no logout token.
		_, err = g.VerifyLogoutToken(ctx, id.IDToken)
		require.ErrorIs(t, err, sso.ErrInvalidToken)
	case <-time.After(15 * time.Second):
		t.Fatal("Hydra sent no back-channel logout token")
	}
}

// TestHydraSSOThroughKeygate is the sign-in a person makes with a real
// identity provider, end to end through Keygate's own routes: a browser
// (cookie-keeping client) opens /sso/login/hydra, Keygate sends it to
// Hydra with state, nonce and PKCE, Hydra runs its login and consent
// challenges, and Keygate's /sso/callback exchanges the code, verifies the
// ID token against Hydra's JWKS, provisions the user (proxy_admin by
// PROXY_ADMIN_ID) and starts the session the web UI then accepts.
func TestHydraSSOThroughKeygate(t *testing.T) {
	t.Parallel()
	bin := hydraBinary(t)
	publicAddr, adminAddr := hydraFreeAddr(t), hydraFreeAddr(t)
	issuer, admin := "http://"+publicAddr, "http://"+adminAddr
	loginApp := httptest.NewServer(hydraLoginConsentApp(t, admin))
	t.Cleanup(loginApp.Close)
	// Keygate's listener comes first: its callback URL is registered at
	// Hydra and configured in the provider.
	kg := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(kg.Close)
	callback := kg.URL + "/sso/callback"

	hydraStart(t, bin, publicAddr, adminAddr, loginApp.URL)
	ctx := context.Background()
	g := hydraProvider(t, admin, issuer, callback, nil)
	a, err := app.New(ctx, app.Options{Store: openStore(t, ""), Logger: quietLogger(), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		MaxBodyBytes: 1 << 20, Secret: "e2e-hydra-secret-0123456789abcdef", Issuer: kg.URL, BaseURL: kg.URL,
		SSOProviders: []sso.Provider{g}, SSOPolicy: service.SSOPolicy{ProxyAdminID: "alice"}})
	require.NoError(t, err)
	actx, cancel := context.WithCancel(ctx)
	a.Run(actx)
	t.Cleanup(func() { cancel(); a.Wait() })
	kg.Config.Handler = a.Handler()

	// The browser follows every redirect, as a real one does; it records
	// where it went to prove the callback was Keygate's.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	var hops []string
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
		if len(via) > 20 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	resp, err := browser.Get(kg.URL + "/sso/login/hydra")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "hops %v: %s", hops, page)
	require.Contains(t, hops, issuer+"/oauth2/auth", "went to Hydra")
	require.Contains(t, hops, loginApp.URL+"/login", "Hydra's login challenge")
	require.Contains(t, hops, loginApp.URL+"/consent", "Hydra's consent challenge")
	require.Contains(t, hops, callback, "came back to Keygate's /sso/callback")
	require.Equal(t, kg.URL+"/ui/", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+resp.Request.URL.Path, "landed in the web UI")
	require.Contains(t, string(page), "alice@example.com", "signed in as the IdP's user")

	// The session is Keygate's: an admin page opens with it, and the role
	// came from Keygate's policy (PROXY_ADMIN_ID), not from the IdP.
	resp, err = browser.Get(kg.URL + "/ui/users")
	require.NoError(t, err)
	page, _ = io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/ui/users", resp.Request.URL.Path, "not sent to the login page")
	require.Contains(t, string(page), "alice@example.com")
}

// hydraBinary finds Hydra: $KEYGATE_HYDRA_BIN, the repository's bin/hydra
// or the build cache tools/hydra/build.sh fills (hydraCached), or hydra on
// PATH; otherwise the test skips (or
// fails under KEYGATE_TEST_REQUIRE_ALL=1).
func hydraBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(hydraBinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", hydraBinEnv, p, err)
		}
		return p
	}
	for _, p := range []string{filepath.Join("..", "..", "bin", "hydra"), hydraCached(), "/work/main/bin/hydra"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			abs, err := filepath.Abs(p)
			require.NoError(t, err)
			return abs
		}
	}
	if p, err := exec.LookPath("hydra"); err == nil {
		return p
	}
	dbtest.RequireOrSkip(t, "Ory Hydra", "bash tools/hydra/build.sh")
	return ""
}

// hydraCached is where tools/hydra/build.sh keeps the Hydra built from
// this checkout's tools/hydra/go.mod and go.sum (the same hash names it),
// so a fresh clone or worktree finds a build made by another; "" if the
// module files cannot be read.
func hydraCached() string {
	// Not os.UserCacheDir: build.sh is a shell script and uses the same
	// rule as it on every system.
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(base, "keygate")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "tools", "hydra", f))
		if err != nil {
			return ""
		}
		h.Write(b)
	}
	name := fmt.Sprintf("hydra-%x", h.Sum(nil))[:len("hydra-")+16]
	return filepath.Join(dir, name)
}

func hydraFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// hydraLog collects Hydra's output for failure messages.
type hydraLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *hydraLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *hydraLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hydraStart runs `hydra serve all` on loopback with an in-memory store
// until the test ends, and waits until its admin API is ready.
func hydraStart(t *testing.T, bin, publicAddr, adminAddr, appURL string) {
	t.Helper()
	pubHost, pubPort, _ := net.SplitHostPort(publicAddr)
	admHost, admPort, _ := net.SplitHostPort(adminAddr)
	cfg := fmt.Sprintf(`dsn: memory
log: {level: warn}
serve:
  public: {host: %s, port: %s}
  admin: {host: %s, port: %s}
urls:
  self: {issuer: "http://%s"}
  login: "%[6]s/login"
  consent: "%[6]s/consent"
  logout: "%[6]s/logout"
  post_logout_redirect: "%[6]s/logged-out"
secrets: {system: [test-only-system-secret-0123456789abcdef]}
`, pubHost, pubPort, admHost, admPort, publicAddr, appURL)
	dir := t.TempDir()
	path := filepath.Join(dir, "hydra.yml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))

	var out hydraLog
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "-c", path)
	// Only what Hydra needs: its config is read from env vars too, and a
	// stray DSN or URLS_* in the environment must not change the test.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("hydra output:\n%s", out.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("hydra exited early: %v\n%s", err, out.String())
		default:
		}
		resp, err := http.Get("http://" + adminAddr + "/health/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready after 30 s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hydraAdmin calls Hydra's admin API with a JSON body.
// hydraProvider registers Keygate's client with Hydra's admin API (extra
// adds to or overrides the client's fields) and returns Keygate's OpenID
// Connect provider for it.
func hydraProvider(t *testing.T, admin, issuer, callback string, extra map[string]any) *sso.Generic {
	t.Helper()
	client := map[string]any{
		"client_id": hydraClientID, "client_secret": hydraClientSecret,
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"scope": "openid email profile", "redirect_uris": []string{callback},
		"token_endpoint_auth_method": "client_secret_basic",
	}
	maps.Copy(client, extra)
	status, body := hydraAdmin(t, http.MethodPost, admin+"/admin/clients", client)
	require.Equal(t, http.StatusCreated, status, "registering the client: %s", body)
	g, err := sso.NewGeneric(context.Background(), sso.GenericOptions{
		Name: "hydra", DisplayName: "Ory Hydra", ClientID: hydraClientID, ClientSecret: hydraClientSecret,
		Issuer: issuer, RedirectURL: callback,
	})
	require.NoError(t, err)
	return g
}

func hydraAdmin(t testing.TB, method, u string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// hydraAccept PUTs an accept request and returns Hydra's redirect_to.
func hydraAccept(t testing.TB, u string, body any) (string, error) {
	status, b := hydraAdmin(t, http.MethodPut, u, body)
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &r) != nil || r.RedirectTo == "" {
		return "", fmt.Errorf("accept %s: %d %s", u, status, b)
	}
	return r.RedirectTo, nil
}

// hydraLoginConsentApp is the headless login, consent and logout UI: it
// signs everyone in as alice, grants what is asked and confirms logout.
func hydraLoginConsentApp(t *testing.T, admin string) http.Handler {
	mux := http.NewServeMux()
	reqs := admin + "/admin/oauth2/auth/requests"
	redirect := func(w http.ResponseWriter, r *http.Request, to string, err error) {
		if err != nil {
			t.Errorf("login/consent app: %v", err)
			http.Error(w, "failed", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		to, err := hydraAccept(t, reqs+"/login/accept?login_challenge="+ch,
			map[string]any{"subject": "alice", "remember": true, "remember_for": 0})
		redirect(w, r, to, err)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		status, b := hydraAdmin(t, http.MethodGet, reqs+"/consent?consent_challenge="+ch, nil)
		var cr struct {
			Scope    []string `json:"requested_scope"`
			Audience []string `json:"requested_access_token_audience"`
		}
		if status != http.StatusOK || json.Unmarshal(b, &cr) != nil {
			redirect(w, r, "", fmt.Errorf("consent request: %d %s", status, b))
			return
		}
		to, err := hydraAccept(t, reqs+"/consent/accept?consent_challenge="+ch, map[string]any{
			"grant_scope": cr.Scope, "grant_access_token_audience": cr.Audience,
			"session": map[string]any{"id_token": map[string]any{
				"email": "alice@example.com", "email_verified": true, "name": "Alice Example",
				"groups": []string{"kg-admins", "eng"},
			}},
		})
		redirect(w, r, to, err)
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("logout_challenge"))
		to, err := hydraAccept(t, reqs+"/logout/accept?logout_challenge="+ch, nil)
		redirect(w, r, to, err)
	})
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "signed out\n")
	})
	return mux
}

// hydraBrowser is a cookie-keeping client that follows redirects except
// into Keygate's callback or the post-logout page, where it stops so the
// test can read the URL.
func hydraBrowser(t *testing.T, stopAt ...string) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			for _, s := range stopAt {
				if strings.HasPrefix(req.URL.String(), s) {
					return http.ErrUseLastResponse
				}
			}
			if len(via) > 20 {
				return errors.New("too many redirects")
			}
			return nil
		}}
}

// hydraFollow opens u in the browser and returns where it stopped.
func hydraFollow(t *testing.T, browser *http.Client, u string) string {
	t.Helper()
	resp, err := browser.Get(u)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	// Hydra answers 303, our app 302: any redirect will do.
	require.True(t, resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther,
		"stopped at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	return resp.Header.Get("Location")
}

// hydraLogin runs the browser leg of a login and hands code and flow to
// exchange.
func hydraLogin(t *testing.T, browser *http.Client, g sso.Provider, callback string,
	exchange func(code string, fs sso.FlowState) (sso.Identity, error)) (sso.Identity, error) {
	t.Helper()
	fs, err := sso.NewFlow(rand.Reader, g.Name(), "/ui", time.Now())
	require.NoError(t, err)
	loc := hydraFollow(t, browser, g.LoginURL(fs.State, fs.Nonce, fs.Verifier))
	require.True(t, strings.HasPrefix(loc, callback), "login ended at %s", loc)
	cb, err := url.Parse(loc)
	require.NoError(t, err)
	q := cb.Query()
	require.Empty(t, q.Get("error"), "%s: %s", q.Get("error"), q.Get("error_description"))
	require.True(t, sso.StateMatches(fs, q.Get("state")))
	return exchange(q.Get("code"), fs)
}
