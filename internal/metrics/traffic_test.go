package metrics_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/app"
)

const (
	masterKey    = "sk-master-metrics-test"
	metricsToken = "metrics-token-for-tests"
	adminEmail   = "admin@example.com"
	adminPass    = "bootstrap-admin-pass"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type client struct {
	t *testing.T
	h http.Handler
}

func (c client) do(method, path string, hdr map[string]string, body any) *httptest.ResponseRecorder {
	c.t.Helper()
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rdr = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rdr)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	return rec
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// newKey asks /key/generate (as the master key) for a key and returns it.
func (c client) newKey(body map[string]any) string {
	c.t.Helper()
	r := c.do(http.MethodPost, "/key/generate", bearer(masterKey), body)
	require.Equal(c.t, http.StatusOK, r.Code, r.Body.String())
	var out struct {
		Key string `json:"key"`
	}
	require.NoError(c.t, json.Unmarshal(r.Body.Bytes(), &out))
	return out.Key
}

// TestMetricsAfterTraffic drives the real application (internal/app on a
// real store) and checks that /metrics exposes every series the issue
// lists with the counts the traffic implies.
func TestMetricsAfterTraffic(t *testing.T) {
	st := openSQLite(t)
	clk := &clock{t: time.Now().UTC()}
	a, err := app.New(t.Context(), app.Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MasterKeyHash: sha256.Sum256([]byte(masterKey)), Now: clk.Now, MaxBodyBytes: 1 << 20,
		Secret: "test-secret-please-0123456789", Issuer: "http://keygate.test",
		UIUsername: adminEmail, UIPassword: adminPass, MetricsToken: metricsToken,
		PasswordParams: &password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	require.NoError(t, err)
	c := client{t: t, h: a.Handler()}

	// /metrics is in the route table and wants the token.
	require.Equal(t, http.StatusUnauthorized, c.do(http.MethodGet, "/metrics", nil, nil).Code)

	plain := c.newKey(map[string]any{"models": []string{"gpt-4o"}})
	expiring := c.newKey(map[string]any{"duration": "1h"})
	broke := c.newKey(map[string]any{"max_budget": 0.5})

	verify := func(key string, hdr map[string]string) int {
		h := map[string]string{}
		if key != "" {
			h["Authorization"] = "Bearer " + key
		}
		for k, v := range hdr {
			h[k] = v
		}
		return c.do(http.MethodGet, "/auth/verify", h, nil).Code
	}
	require.Equal(t, http.StatusOK, verify(plain, map[string]string{"X-Keygate-Model": "gpt-4o"}))
	require.Equal(t, http.StatusOK, verify(plain, nil)) // second call: a cache hit
	require.Equal(t, http.StatusForbidden, verify(plain, map[string]string{"X-Keygate-Model": "claude-3"}))
	require.Equal(t, http.StatusUnauthorized, verify("", nil))
	require.Equal(t, http.StatusUnauthorized, verify("sk-unknown-key-000000000000", nil))

	// Spend pushes one key over its budget.
	r := c.do(http.MethodPost, "/spend/report", bearer(masterKey), map[string]any{"request_id": "req-1", "api_key": broke, "model": "gpt-4o", "spend": 0.75})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, http.StatusTooManyRequests, verify(broke, nil))

	clk.Add(2 * time.Hour)
	require.Equal(t, http.StatusUnauthorized, verify(expiring, nil))

	// One good login, then five bad ones: four failures and a lockout.
	login := func(pass string) int {
		return c.do(http.MethodPost, "/v2/login", nil, map[string]string{"username": adminEmail, "password": pass}).Code
	}
	require.Equal(t, http.StatusOK, login(adminPass))
	for i := 0; i < 4; i++ {
		require.Equal(t, http.StatusUnauthorized, login("wrong-password"))
	}
	require.Equal(t, http.StatusTooManyRequests, login("wrong-password"))
	require.Equal(t, http.StatusNotFound, c.do(http.MethodGet, "/no/such/route", nil, nil).Code)

	res := c.do(http.MethodGet, "/metrics", bearer(metricsToken), nil)
	require.Equal(t, http.StatusOK, res.Code)
	body := res.Body.String()

	for outcome, n := range map[string]float64{"allowed": 2, "forbidden": 1, "unauthenticated": 2, "budget_exceeded": 1,
		"expired": 1, "unavailable": 0} {
		require.Equal(t, n, sample(t, body, "keygate_verify_total", `outcome="`+outcome+`"`), outcome)
	}
	require.Equal(t, 2.0, sample(t, body, "keygate_http_requests_total", `method="GET",route="/auth/verify",status="200"`))
	require.Equal(t, 3.0, sample(t, body, "keygate_http_requests_total", `method="POST",route="/key/generate",status="200"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_http_requests_total", `method="GET",route="unmatched",status="404"`))
	require.Equal(t, 2.0, sample(t, body, "keygate_http_request_duration_seconds_count", `method="GET",route="/auth/verify",status="200"`))
	require.GreaterOrEqual(t, sample(t, body, "keygate_auth_cache_hits_total", `cache="api_key"`), 1.0)
	require.GreaterOrEqual(t, sample(t, body, "keygate_auth_cache_misses_total", `cache="api_key"`), 1.0)
	sample(t, body, "keygate_auth_cache_hits_total", `cache="session"`)
	require.Equal(t, 1.0, sample(t, body, "keygate_logins_total", `outcome="success"`))
	require.Equal(t, 5.0, sample(t, body, "keygate_logins_total", `outcome="failure"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_logins_total", `outcome="lockout"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_spend_records_total", ""))
	require.Equal(t, 0.75, sample(t, body, "keygate_spend_usd_total", ""))
	require.Equal(t, 3.0, sample(t, body, "keygate_audit_events_total", `action="key.created"`))
	require.GreaterOrEqual(t, sample(t, body, "go_sql_open_connections", `db_name="keygate"`), 0.0)
	sample(t, body, "process_resident_memory_bytes", "")
	require.NotContains(t, body, masterKey)
	require.NotContains(t, body, plain)
}

// Refusals of the edge checks (body cap, text validation) are requests
// like any other: they count in keygate_http_requests_total with their
// route and status.
func TestEdgeRefusalsAreCounted(t *testing.T) {
	st := openSQLite(t)
	a, err := app.New(t.Context(), app.Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MasterKeyHash: sha256.Sum256([]byte(masterKey)), MaxBodyBytes: 1 << 10,
		Secret: "test-secret-please-0123456789", Issuer: "http://keygate.test", MetricsToken: metricsToken,
		PasswordParams: &password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	require.NoError(t, err)
	c := client{t: t, h: a.Handler()}
	big := c.do(http.MethodPost, "/user/new", bearer(masterKey), map[string]any{"user_id": string(bytes.Repeat([]byte("a"), 4<<10))})
	require.Equal(t, http.StatusRequestEntityTooLarge, big.Code, big.Body.String())
	nul := c.do(http.MethodPost, "/user/new", bearer(masterKey), map[string]any{"user_id": "a\x00b"})
	require.Equal(t, http.StatusBadRequest, nul.Code, nul.Body.String())
	q := c.do(http.MethodGet, "/user/info?user_id=%00", bearer(masterKey), nil)
	require.Equal(t, http.StatusBadRequest, q.Code, q.Body.String())
	_, body := scrape(t, a.Handler(), metricsToken)
	require.Equal(t, 1.0, sample(t, body, "keygate_http_requests_total", `method="GET",route="/user/info",status="400"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_http_requests_total", `method="POST",route="/user/new",status="413"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_http_requests_total", `method="POST",route="/user/new",status="400"`))
}
