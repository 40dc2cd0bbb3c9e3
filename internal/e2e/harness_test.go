// Package e2e runs Keygate with real parts around it — Debian's nginx in
// front, an upstream behind, a real database underneath — to prove that
// the deployment examples in deploy/ do what deploy/README.md says.
// It holds tests and benchmarks only.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store/gormstore"
)

const masterKey = "sk-e2e-master-key"

func TestMain(m *testing.M) { dbtest.Main(m) }

// keygate is the real application (internal/app, wired as cmd/keygate
// wires it) served on a loopback listener.
type keygate struct {
	t     testing.TB
	srv   *httptest.Server
	store *gormstore.Store
	app   *app.App
}

// openStore opens a store the test owns; databaseURL "" selects SQLite.
func openStore(t testing.TB, databaseURL string) *gormstore.Store {
	t.Helper()
	o := gormstore.Options{DatabaseURL: databaseURL, Logger: quietLogger()}
	if databaseURL == "" {
		o.SQLitePath = dbtest.SQLitePath(t)
	}
	st, err := gormstore.Open(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newApp wires Keygate over st; cacheTTL 0 keeps the default.
func newApp(t testing.TB, st *gormstore.Store, cacheTTL time.Duration) *app.App {
	t.Helper()
	a, err := app.New(context.Background(), app.Options{Store: st, Logger: quietLogger(), MasterKeyHash: sha256.Sum256([]byte(masterKey)),
		MaxBodyBytes: 1 << 20, CacheTTL: cacheTTL, TrustedProxies: []string{"127.0.0.1"}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a.Run(ctx)
	t.Cleanup(func() { cancel(); a.Wait() })
	return a
}

func startKeygate(t testing.TB, st *gormstore.Store) *keygate {
	t.Helper()
	a := newApp(t, st, 0)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &keygate{t: t, srv: srv, store: st, app: a}
}

// addr is host:port of the listener.
func (k *keygate) addr() string { return strings.TrimPrefix(k.srv.URL, "http://") }

// admin calls the management API with the master key and returns the
// decoded JSON body, failing the test on any status but 200.
func (k *keygate) admin(path string, body any) map[string]any {
	k.t.Helper()
	return adminCall(k.t, k.srv.Client(), k.srv.URL, path, body)
}

func adminCall(t testing.TB, c *http.Client, base, path string, body any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+masterKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST %s: %s", path, out)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m), string(out))
	return m
}

// newUser creates a user allowed to use models and returns its first key.
func (k *keygate) newUser(id string, models ...string) string {
	k.t.Helper()
	m := k.admin("/user/new", map[string]any{"user_id": id, "user_role": "internal_user", "models": models})
	key, _ := m["key"].(string)
	require.NotEmpty(k.t, key, "user/new returned no key: %v", m)
	return key
}

// newKey generates another key with the given fields for a user.
func (k *keygate) newKey(userID string, fields map[string]any) string {
	k.t.Helper()
	body := map[string]any{"user_id": userID}
	for f, v := range fields {
		body[f] = v
	}
	m := k.admin("/key/generate", body)
	key, _ := m["key"].(string)
	require.NotEmpty(k.t, key, "key/generate returned no key: %v", m)
	return key
}

// upstream stands in for the LLM proxy: it counts requests and echoes what
// it was given, so a test sees exactly what the reverse proxy forwarded.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

// echo is the upstream's answer.
type echo struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"` // X-Keygate-* and credential headers received
	BodyLen int               `json:"body_len"`
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		e := echo{Method: r.Method, Path: r.URL.Path, Headers: map[string]string{}, BodyLen: len(body)}
		for name, vs := range r.Header {
			lower := strings.ToLower(name)
			if strings.HasPrefix(lower, "x-keygate-") || lower == "authorization" || strings.HasSuffix(lower, "api-key") {
				e.Headers[name] = strings.Join(vs, ",")
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }
