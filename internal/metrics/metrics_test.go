package metrics_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func scrape(t *testing.T, h http.Handler, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// sample returns the value of the series `name{labels}` in a text
// exposition; labels are written as Prometheus writes them (sorted by
// name), e.g. `outcome="allowed"`. It fails the test if the series is
// absent.
func sample(t *testing.T, body, name, labels string) float64 {
	t.Helper()
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, prefix)), 64)
			require.NoError(t, err, line)
			return v
		}
	}
	t.Fatalf("series %s{%s} not exposed; got:\n%s", name, labels, body)
	return 0
}

func TestHandlerToken(t *testing.T) {
	open := metrics.New(metrics.Options{})
	code, body := scrape(t, open.Handler(), "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `keygate_verify_total{outcome="allowed"} 0`)
	require.Contains(t, body, "go_goroutines")

	guarded := metrics.New(metrics.Options{Token: "metrics-secret"})
	for _, tok := range []string{"", "wrong", "metrics-secre", "metrics-secret2"} {
		code, body := scrape(t, guarded.Handler(), tok)
		require.Equal(t, http.StatusUnauthorized, code, "token %q", tok)
		require.Contains(t, body, `"type":"auth_error"`)
		require.NotContains(t, body, "metrics-secret")
	}
	code, _ = scrape(t, guarded.Handler(), "metrics-secret")
	require.Equal(t, http.StatusOK, code)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Basic bWV0cmljcy1zZWNyZXQ=")
	rec := httptest.NewRecorder()
	guarded.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Equal(t, `Bearer realm="keygate-metrics"`, rec.Header().Get("WWW-Authenticate"))
}

func TestVerifyOutcome(t *testing.T) {
	cases := []struct {
		status  int
		errType string
		want    string
	}{
		{200, "", metrics.OutcomeAllowed},
		{401, "auth_error", metrics.OutcomeUnauthenticated},
		{401, "expired_key", metrics.OutcomeExpired},
		{403, "auth_error", metrics.OutcomeForbidden},
		{429, "budget_exceeded", metrics.OutcomeBudgetExceeded},
		{429, "rate_limit_error", metrics.OutcomeRateLimited},
		{503, "service_unavailable", metrics.OutcomeUnavailable},
		{500, "internal_server_error", metrics.OutcomeError},
		{400, "bad_request_error", metrics.OutcomeError},
	}
	for _, c := range cases {
		require.Equal(t, c.want, metrics.VerifyOutcome(c.status, c.errType), "%d %s", c.status, c.errType)
	}
}

func TestObserveHTTPLabels(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveHTTP(http.MethodGet, "/key/info", 200, "", 3*time.Millisecond)
	m.ObserveHTTP(http.MethodGet, "", 404, "not_found_error", time.Millisecond)
	m.ObserveHTTP(http.MethodHead, metrics.VerifyRoute, 401, "expired_key", time.Millisecond)
	m.ObserveHTTP(http.MethodPost, metrics.VerifyRoute+"/*path", 200, "", time.Millisecond)
	m.ObserveHTTP(http.MethodGet, "/auth/verifyx", 200, "", time.Millisecond)
	_, body := scrape(t, m.Handler(), "")
	require.Equal(t, 1.0, sample(t, body, "keygate_http_requests_total", `method="GET",route="/key/info",status="200"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_http_requests_total", `method="GET",route="unmatched",status="404"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_http_request_duration_seconds_count", `method="GET",route="/key/info",status="200"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_http_request_duration_seconds_bucket", `method="GET",route="/key/info",status="200",le="0.005"`))
	require.Equal(t, 0.0, sample(t, body, "keygate_http_request_duration_seconds_bucket", `method="GET",route="/key/info",status="200",le="0.0025"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_verify_total", `outcome="expired"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_verify_total", `outcome="allowed"`), "sub-paths count, look-alikes do not")
}

func TestAddCacheReadsStatsAtScrape(t *testing.T) {
	m := metrics.New(metrics.Options{})
	var mu sync.Mutex
	hits, misses := uint64(0), uint64(0)
	m.AddCache("api_key", func() (uint64, uint64) { mu.Lock(); defer mu.Unlock(); return hits, misses })
	_, body := scrape(t, m.Handler(), "")
	require.Equal(t, 0.0, sample(t, body, "keygate_auth_cache_hits_total", `cache="api_key"`))
	mu.Lock()
	hits, misses = 7, 3
	mu.Unlock()
	_, body = scrape(t, m.Handler(), "")
	require.Equal(t, 7.0, sample(t, body, "keygate_auth_cache_hits_total", `cache="api_key"`))
	require.Equal(t, 3.0, sample(t, body, "keygate_auth_cache_misses_total", `cache="api_key"`))
}

func openSQLite(t *testing.T) *gormstore.Store {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestInstrumentStoreCountsCommitted proves that events written inside a
// transaction count only once it commits, that nested transactions join
// the outer one, and that spend is counted with its amount.
func TestInstrumentStoreCountsCommitted(t *testing.T) {
	ctx := context.Background()
	raw := openSQLite(t)
	m := metrics.New(metrics.Options{DB: metrics.DBOf(raw)})
	st := m.InstrumentStore(raw)
	now := time.Now().UTC()
	ev := func(action string) *store.AuditEvent {
		return &store.AuditEvent{At: now, Action: action, ActorID: "default_user_id", TargetType: "user", TargetID: "u1"}
	}

	require.NoError(t, st.AppendAudit(ctx, ev("login.failed")))
	boom := errors.New("boom")
	err := st.Tx(ctx, func(tx store.Store) error {
		require.NoError(t, tx.AppendAudit(ctx, ev("user.created")))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.NoError(t, st.Tx(ctx, func(tx store.Store) error {
		if err := tx.AppendAudit(ctx, ev("login.succeeded")); err != nil {
			return err
		}
		return tx.Tx(ctx, func(inner store.Store) error { return inner.AppendAudit(ctx, ev("login.lockout")) })
	}))

	require.NoError(t, raw.CreateUser(ctx, &store.User{ID: "u1", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
	hash := sha256.Sum256([]byte("sk-test"))
	k := &store.Key{Hash: hex.EncodeToString(hash[:]), KeyName: "sk-...test", UserID: "u1", CreatedAt: now, UpdatedAt: now}
	require.NoError(t, raw.CreateKey(ctx, k))
	require.NoError(t, st.RecordSpend(ctx, store.SpendEntry{RequestID: "r1", KeyHash: k.Hash, UserID: "u1", Spend: 0.25, CreatedAt: now}))
	require.Error(t, st.RecordSpend(ctx, store.SpendEntry{RequestID: "r1", KeyHash: k.Hash, UserID: "u1", Spend: 0.25, CreatedAt: now}),
		"a duplicate request id is refused and not counted")

	_, body := scrape(t, m.Handler(), "")
	require.Equal(t, 1.0, sample(t, body, "keygate_logins_total", `outcome="failure"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_logins_total", `outcome="success"`))
	require.Equal(t, 1.0, sample(t, body, "keygate_logins_total", `outcome="lockout"`))
	require.NotContains(t, body, `action="user.created"`, "a rolled-back event must not count")
	require.Equal(t, 1.0, sample(t, body, "keygate_spend_records_total", ""))
	require.Equal(t, 0.25, sample(t, body, "keygate_spend_usd_total", ""))
	require.Equal(t, 1.0, sample(t, body, "go_sql_max_open_connections", `db_name="keygate"`))
}
