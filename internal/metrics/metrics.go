// Package metrics collects Keygate's Prometheus metrics in a registry of
// its own (never the process-global default registry, so two Apps in one
// test process do not collide) and serves them at /metrics.
//
// What is measured and where it comes from:
//   - HTTP requests and latency by route template, method and status, and
//     the outcomes of /auth/verify: ObserveHTTP, called once per request by
//     the router's middleware (internal/httperr.Observe);
//   - verification-cache hits and misses: read at scrape time from the
//     caches' Stats() (AddCache);
//   - logins, every audited action and recorded spend: counted from what
//     the service layer writes to the store, through InstrumentStore, and
//     only once the transaction that wrote it has committed;
//   - database pool statistics (Options.DB), Go runtime and process figures.
//
// Labels are route templates, methods, statuses, outcomes and audit action
// names: never user ids, e-mails, keys or request paths, so a scrape
// reveals no identity and cardinality stays bounded.
package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Keygate metric.
const Namespace = "keygate"

// Verification outcomes, the values of keygate_verify_total{outcome}.
const (
	OutcomeAllowed         = "allowed"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeExpired         = "expired"
	OutcomeForbidden       = "forbidden"
	OutcomeBudgetExceeded  = "budget_exceeded"
	OutcomeRateLimited     = "rate_limited"
	OutcomeUnavailable     = "unavailable"
	// OutcomeError is any other answer (a malformed request, a 500).
	OutcomeError = "error"
)

// Login outcomes, the values of keygate_logins_total{outcome}.
const (
	LoginSuccess = "success"
	LoginFailure = "failure"
	LoginLockout = "lockout"
)

// Options configures New.
type Options struct {
	// Token, when not empty, is required as "Authorization: Bearer <Token>"
	// on /metrics (KEYGATE_METRICS_TOKEN). Empty serves the metrics to
	// anyone who can reach the port: they hold no secrets or identities,
	// as with LiteLLM's own /metrics, but an operator exposing Keygate to
	// the internet should set a token or block the path at the proxy.
	Token string
	// DB, when set, adds the database pool statistics (go_sql_*).
	DB *sql.DB
}

// Metrics holds the registry and the instruments.
type Metrics struct {
	reg       *prometheus.Registry
	tokenHash [sha256.Size]byte
	hasToken  bool

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	verify       *prometheus.CounterVec
	logins       *prometheus.CounterVec
	audit        *prometheus.CounterVec
	spendCount   prometheus.Counter
	spendUSD     prometheus.Counter
}

// latencyBuckets start well below a millisecond: a cached /auth/verify
// answers in tens of microseconds, and the default buckets (from 5 ms)
// would put every such request in the first bucket.
func latencyBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// New returns the metrics with every instrument registered. Label values
// that are known in advance (outcomes) start at zero, so their series
// exist before the first event and rate() works from the start.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	if o.Token != "" {
		m.tokenHash, m.hasToken = sha256.Sum256([]byte(o.Token)), true
	}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests by route template (\"unmatched\" for unknown paths), method and status code."},
		[]string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "HTTP request latency by route template, method and status code.", Buckets: latencyBuckets()},
		[]string{"route", "method", "status"})
	m.verify = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "verify_total",
		Help: "Forward-auth (/auth/verify) answers by outcome."}, []string{"outcome"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "logins_total",
		Help: "Logins (password and SSO) by outcome: success, failure, lockout (a failure that locked the account or IP)."},
		[]string{"outcome"})
	m.audit = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "audit_events_total",
		Help: "Committed audit events by action."}, []string{"action"})
	m.spendCount = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "spend_records_total",
		Help: "Usage records stored (one per metered request; duplicates are not counted)."})
	m.spendUSD = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "spend_usd_total",
		Help: "Sum of recorded spend, in the proxy's currency unit (USD for LiteLLM)."})
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.verify, m.logins, m.audit, m.spendCount, m.spendUSD,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.DB != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(o.DB, Namespace))
	}
	for _, v := range []string{OutcomeAllowed, OutcomeUnauthenticated, OutcomeExpired, OutcomeForbidden,
		OutcomeBudgetExceeded, OutcomeRateLimited, OutcomeUnavailable, OutcomeError} {
		m.verify.WithLabelValues(v)
	}
	for _, v := range []string{LoginSuccess, LoginFailure, LoginLockout} {
		m.logins.WithLabelValues(v)
	}
	return m
}

// Registry exposes the registry so other packages can add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AddCache exposes a cache's hit and miss counts, read at scrape time, as
// keygate_auth_cache_{hits,misses}_total{cache=name}. The hit ratio is
// hits / (hits + misses). Adding the same name twice is a programming
// error and panics, as prometheus.MustRegister does.
func (m *Metrics) AddCache(name string, stats func() (hits, misses uint64)) {
	labels := prometheus.Labels{"cache": name}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "auth_cache_hits_total",
			Help: "Verification cache hits.", ConstLabels: labels}, func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "auth_cache_misses_total",
			Help: "Verification cache misses (database lookups).", ConstLabels: labels}, func() float64 { _, mi := stats(); return float64(mi) }))
}

// AddCacheTrust adds keygate_auth_cache_trusted{cache=name}: 1 while the
// cache may answer for existing credentials, 0 while this replica cannot
// hear other replicas' changes and reads the database instead (start-up,
// or KEYGATE_CACHE_FAIL_CLOSED with the listener down).
func (m *Metrics) AddCacheTrust(name string, trusted func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "auth_cache_trusted",
		Help:        "1 while cached answers about existing keys or sessions are used; 0 while changes may go unheard.",
		ConstLabels: prometheus.Labels{"cache": name}}, func() float64 {
		if trusted() {
			return 1
		}
		return 0
	}))
}

// DBOf returns the *sql.DB of a store that exposes one
// (store/gormstore.Store.DB), or nil, for Options.DB.
func DBOf(st any) *sql.DB {
	if d, ok := st.(interface{ DB() *sql.DB }); ok {
		return d.DB()
	}
	return nil
}

// Handler serves the registry in the Prometheus text format, after
// checking the bearer token when one is configured.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.hasToken && !m.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keygate-metrics"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"Authentication Error, the metrics endpoint needs Authorization: Bearer <KEYGATE_METRICS_TOKEN>.","type":"auth_error","param":"None","code":"401"}}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authorized compares hashes in constant time, so neither the token's
// content nor its length leaks through timing.
func (m *Metrics) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], m.tokenHash[:]) == 1
}
