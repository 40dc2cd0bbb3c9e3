package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func envOf(m map[string]string) (func(string) (string, bool), []string) {
	var environ []string
	for k, v := range m {
		environ = append(environ, k+"="+v)
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }, environ
}

// startServer runs the real serve() with the given environment on a free
// loopback port and returns its base URL and output.
func startServer(t *testing.T, vars map[string]string) (string, *syncbuf.Buffer, func() error) {
	t.Helper()
	if vars["KEYGATE_ADDR"] == "" {
		vars["KEYGATE_ADDR"] = "127.0.0.1:0"
	}
	if vars["KEYGATE_SHUTDOWN_DELAY"] == "" {
		vars["KEYGATE_SHUTDOWN_DELAY"] = "0s" // nobody balances load in tests
	}
	lookup, environ := envOf(vars)
	cfg, err := loadConfig("serve", nil, env{lookup: lookup, environ: environ})
	require.NoError(t, err)
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, out, ready) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(40 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	select {
	case addr := <-ready:
		t.Cleanup(func() { _ = stop() })
		return "http://" + addr, out, stop
	case err := <-done:
		t.Fatalf("server did not start: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start in time\n%s", out.String())
	}
	return "", nil, nil
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestZeroConfigStart: with no configuration at all Keygate starts on an
// SQLite file, prints how to reach it and a generated master key that
// works, and shuts down cleanly when asked.
func TestZeroConfigStart(t *testing.T) {
	dir := t.TempDir()
	base, out, stop := startServer(t, map[string]string{"KEYGATE_DATA_DIR": dir})
	code, _ := get(t, base+"/health/liveliness", "")
	require.Equal(t, http.StatusOK, code)
	code, body := get(t, base+"/health/readiness", "")
	require.Equal(t, http.StatusOK, code, body)
	require.FileExists(t, filepath.Join(dir, "keygate.db"))

	m := regexp.MustCompile(`master key:\s+(sk-[0-9a-f]+)`).FindStringSubmatch(out.String())
	require.Len(t, m, 2, out.String())
	code, _ = get(t, base+"/user/list", m[1])
	require.Equal(t, http.StatusOK, code)
	code, _ = get(t, base+"/user/list", "sk-not-the-master-key")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, 1, strings.Count(out.String(), m[1]), "the generated master key is printed exactly once and never logged")

	require.NoError(t, stop(), "graceful shutdown")
}

func TestConfiguredMasterKeyAndPostgres(t *testing.T) {
	url := dbtest.PostgresURL(t)
	base, out, _ := startServer(t, map[string]string{"DATABASE_URL": url, "LITELLM_MASTER_KEY": "sk-configured-master-1234"})
	require.Contains(t, out.String(), "PostgreSQL")
	require.NotContains(t, out.String(), "sk-configured-master-1234", "a configured master key is never printed")
	code, body := get(t, base+"/user/list", "sk-configured-master-1234")
	require.Equal(t, http.StatusOK, code, body)
}

func TestCheckConfig(t *testing.T) {
	var out bytes.Buffer
	lookup, environ := envOf(map[string]string{"LITELLM_MASTER_KEY": "sk-secret-value-123", "KEYGATE_ADDR": ":5000"})
	require.NoError(t, run(context.Background(), []string{"check-config"}, lookup, environ, &out))
	require.Contains(t, out.String(), "configuration OK")
	require.NotContains(t, out.String(), "sk-secret-value-123")

	// every problem at once, each naming its variable
	out.Reset()
	lookup, environ = envOf(map[string]string{"LITELLM_MASTER_KEY": "nope", "KEYGATE_TOKEN_TTL": "soon", "KEYGATE_ADRR": ":1"})
	err := run(context.Background(), []string{"check-config"}, lookup, environ, &out)
	require.Error(t, err)
	for _, name := range []string{"LITELLM_MASTER_KEY", "KEYGATE_TOKEN_TTL", "KEYGATE_ADRR"} {
		require.Contains(t, err.Error(), name)
	}
	require.Error(t, run(context.Background(), []string{"frobnicate"}, lookup, environ, &out))
}

func TestHealthcheckSubcommand(t *testing.T) {
	base, _, _ := startServer(t, map[string]string{"KEYGATE_DATA_DIR": t.TempDir()})
	var out bytes.Buffer
	lookup, _ := envOf(map[string]string{})
	require.NoError(t, run(context.Background(), []string{"healthcheck", "--url", base + "/health/liveliness"}, lookup, nil, &out))
	require.Error(t, run(context.Background(), []string{"healthcheck", "--url", base + "/nope"}, lookup, nil, &out))
}

// TestAdminCLI: an operator without the UI creates a user and gets a
// working invitation link, then re-invites by e-mail.
func TestAdminCLI(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"KEYGATE_DATA_DIR": dir, "PROXY_BASE_URL": "https://keygate.example.com"}
	lookup, environ := envOf(vars)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"user", "create", "--email", "op@example.com", "--role", "internal_user", "--invite"}, lookup, environ, &out))
	require.Contains(t, out.String(), "created user")
	first := regexp.MustCompile(`https://keygate\.example\.com/ui/onboarding\?id=[0-9a-f-]{36}`).FindString(out.String())
	require.NotEmpty(t, first, out.String())
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"invite", "--email", "OP@example.com"}, lookup, environ, &out))
	second := regexp.MustCompile(`https://keygate\.example\.com/ui/onboarding\?id=[0-9a-f-]{36}`).FindString(out.String())
	require.NotEmpty(t, second)
	require.NotEqual(t, first, second)

	// the second link works against the server on the same database; the first was superseded
	vars["KEYGATE_ADDR"] = "127.0.0.1:0"
	base, _, _ := startServer(t, vars)
	idOf := func(link string) string { return link[strings.Index(link, "id=")+3:] }
	code, _ := get(t, base+"/onboarding/get_token?invite_link="+idOf(second), "")
	require.Equal(t, http.StatusOK, code)
	code, _ = get(t, base+"/onboarding/get_token?invite_link="+idOf(first), "")
	require.Equal(t, http.StatusUnauthorized, code)

	require.Error(t, run(context.Background(), []string{"user", "create", "--email", "op@example.com"}, lookup, environ, &out), "duplicate e-mail")
	require.Error(t, run(context.Background(), []string{"invite", "--email", "ghost@example.com"}, lookup, environ, &out))
	require.Error(t, run(context.Background(), []string{"user", "create", "--email", "x@example.com", "--role", "root"}, lookup, environ, &out))
	require.Error(t, run(context.Background(), []string{"user", "delete"}, lookup, environ, &out))
}

// TestFirstRunAdminLink: a fresh install prints a link that sets the admin
// password; once it is used, later starts print none.
func TestFirstRunAdminLink(t *testing.T) {
	dir := t.TempDir()
	base, out, stop := startServer(t, map[string]string{"KEYGATE_DATA_DIR": dir})
	link := regexp.MustCompile(`http://[0-9a-z.]+:\d+/ui/onboarding\?id=([0-9a-f-]{36})`).FindStringSubmatch(out.String())
	require.Len(t, link, 2, out.String())
	resp, err := http.Post(base+"/onboarding/claim_token", "application/json",
		strings.NewReader(`{"invitation_link":"`+link[1]+`","password":"first admin password"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Post(base+"/v2/login", "application/json", strings.NewReader(`{"username":"admin","password":"first admin password"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, stop())

	_, out2, _ := startServer(t, map[string]string{"KEYGATE_DATA_DIR": dir})
	require.NotContains(t, out2.String(), "first run", "an admin with a password exists")
}

// TestForwardingModeWired: with KEYGATE_UPSTREAM_URL set, /v1/* is
// authenticated, forwarded with the upstream key instead of the client's,
// and metered; Keygate's own routes still answer.
func TestForwardingModeWired(t *testing.T) {
	var seenAuth, seenUser string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenAuth, seenUser = r.Header.Get("Authorization"), r.Header.Get("X-Keygate-User-Id")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000000,"completion_tokens":0,"total_tokens":1000000}}`)
	}))
	defer up.Close()
	cfgFile := filepath.Join(t.TempDir(), "keygate.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("model_prices:\n  gpt-4o:\n    input_per_million: 2.5\n    output_per_million: 10\n"), 0o600))
	vars := map[string]string{"KEYGATE_DATA_DIR": t.TempDir(), "LITELLM_MASTER_KEY": "sk-master-forwarding-1", "KEYGATE_ADDR": "127.0.0.1:0",
		"KEYGATE_UPSTREAM_URL": up.URL, "KEYGATE_UPSTREAM_KEY": "sk-upstream-secret", "KEYGATE_CONFIG": cfgFile, "KEYGATE_SHUTDOWN_DELAY": "0s"}
	lookup, environ := envOf(vars)
	cfg, err := loadConfig("serve", []string{"--config", cfgFile}, env{lookup: lookup, environ: environ})
	require.NoError(t, err)
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, out, ready) }()
	base := "http://" + <-ready
	defer func() { cancel(); <-done }()

	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/user/new", "sk-master-forwarding-1", `{"user_id":"fwd","user_role":"internal_user","models":["gpt-4o"]}`)
	require.Equal(t, http.StatusOK, code, body)
	key := regexp.MustCompile(`"key":"(sk-kg-[0-9A-Za-z]{28})"`).FindStringSubmatch(body)[1]
	code, body = post("/v1/chat/completions", key, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "chatcmpl-1")
	require.Equal(t, "Bearer sk-upstream-secret", seenAuth, "the client's key is replaced by the upstream key")
	require.Equal(t, "fwd", seenUser)
	code, body = post("/v1/chat/completions", key, `{"model":"o3","messages":[]}`)
	require.Equal(t, http.StatusUnauthorized, code, "LiteLLM's status for a model the key may not use")
	require.Contains(t, body, "key_model_access_denied")
	code, _ = post("/v1/chat/completions", "sk-kg-not-a-valid-key-000000000000", `{"model":"gpt-4o"}`)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Eventually(t, func() bool {
		c, b := get(t, base+"/spend/logs", "sk-master-forwarding-1")
		return c == http.StatusOK && strings.Contains(b, `"spend":2.5`)
	}, 5*time.Second, 50*time.Millisecond, "the request is metered at the configured price")
}
