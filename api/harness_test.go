package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

const (
	masterKey     = "sk-master-test-key"
	testSecret    = "test-secret-please-0123456789"
	testIssuer    = "http://keygate.test"
	adminPassword = "bootstrap-admin-pass"
)

// testEnv is the real application (internal/app, as cmd wires it) over a
// real store. Principals of each role authenticate with real API keys.
type testEnv struct {
	t      *testing.T
	store  store.Store
	app    *app.App
	server *api.Server
	h      http.Handler
	now    *fakeClock
}

type dbCase struct {
	name string
	open func(t *testing.T) store.Store
}

func databases() []dbCase {
	return []dbCase{
		{"sqlite", func(t *testing.T) store.Store {
			return openStore(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
		}},
		{"postgres", func(t *testing.T) store.Store {
			return openStore(t, gormstore.Options{DatabaseURL: dbtest.PostgresURL(t)})
		}},
	}
}

func openStore(t *testing.T, o gormstore.Options) store.Store {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := gormstore.Open(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// eachDB runs fn against SQLite and PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, e *testEnv)) {
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			fn(t, newEnv(t, db.open(t)))
		})
	}
}

func newEnv(t *testing.T, st store.Store) *testEnv {
	t.Helper()
	return newEnvWith(t, st, func(o *app.Options) {
		o.MaxBodyBytes = 1 << 20
		o.LogoutURL, o.LogoutAllowlist = "https://intranet.example/bye", []string{"https://allowed.example/"}
		o.UIUsername, o.UIPassword = "admin@example.com", adminPassword
	})
}

// newEnvWith builds the application over st with the tests' master key,
// secret, issuer, clock and cheap password cost; adjust adds what one test
// needs (SSO providers, a mailer, a notifier, ...).
func newEnvWith(t *testing.T, st store.Store, adjust func(*app.Options)) *testEnv {
	t.Helper()
	var mk [32]byte
	copy(mk[:], sha(masterKey))
	clock := newFakeClock()
	o := app.Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MasterKeyHash: mk, Now: clock.Now,
		Secret: testSecret, Issuer: testIssuer, PasswordParams: &cheapArgon}
	if adjust != nil {
		adjust(&o)
	}
	a, err := app.New(t.Context(), o)
	require.NoError(t, err)
	return &testEnv{t: t, store: st, app: a, server: a.API(), h: a.Handler(), now: clock}
}

// userWithRole creates a user of role (with its first key, as /user/new
// does by default) and returns that key.
func (e *testEnv) userWithRole(id string, role rbac.Role) string {
	e.t.Helper()
	resp := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": id, "user_email": id + "@example.com", "user_role": string(role)})
	require.Equal(e.t, http.StatusOK, resp.Code, resp.Body.String())
	key, _ := resp.JSON(e.t)["key"].(string)
	require.NotEmpty(e.t, key)
	return key
}

type response struct {
	Code int
	Body *bytes.Buffer
	Hdr  http.Header
}

func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body.Bytes(), &m), r.Body.String())
	return m
}

// do sends a request; body may be nil, a string (sent raw) or a value
// (JSON-encoded).
func (e *testEnv) do(method, path, token string, body any) response {
	e.t.Helper()
	var rdr io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rdr = strings.NewReader(b)
	case []byte:
		rdr = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rdr = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rdr)
	if rdr != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return response{Code: w.Code, Body: w.Body, Hdr: w.Header()}
}

// requireError asserts a LiteLLM-shaped JSON error with the given status.
func requireError(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Code, r.Body.String())
	m := r.JSON(t)
	inner, ok := m["error"].(map[string]any)
	require.True(t, ok, "error body shape: %s", r.Body.String())
	for _, k := range []string{"message", "type", "param", "code"} {
		require.Contains(t, inner, k)
	}
	require.Equal(t, strings.TrimSpace(itoa(status)), inner["code"])
	require.NotContains(t, r.Body.String(), "goroutine", "stack trace leaked")
	return inner
}

func itoa(n int) string { return strconv.Itoa(n) }

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestMain(m *testing.M) {
	dbtest.Main(m)
}

// cheapArgon keeps these HTTP tests fast under -race; the production cost
// (OWASP m=19 MiB, t=2) is tested and benchmarked in auth/password.
var cheapArgon = password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func dbtestPostgres(t *testing.T) string { return dbtest.PostgresURL(t) }

func pgOptions(url string) gormstore.Options { return gormstore.Options{DatabaseURL: url} }

// newEnvWithNotifier is a replica: its own store connection and cache,
// with cross-replica invalidation running.
func newEnvWithNotifier(t *testing.T, url string) *testEnv {
	t.Helper()
	return newEnvWithNotifierOpts(t, url, nil)
}

// newEnvWithNotifierOpts is newEnvWithNotifier with adjust applied too.
func newEnvWithNotifierOpts(t *testing.T, url string, adjust func(*app.Options)) *testEnv {
	t.Helper()
	st := replicaStore(t, url, gormstore.Options{})
	e := runReplica(t, st, st, adjust)
	time.Sleep(100 * time.Millisecond) // let LISTEN start
	return e
}
