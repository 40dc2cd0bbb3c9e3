package metrics

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// VerifyRoute is the forward-auth route whose answers (with any method,
// and under its sub-paths, which Envoy may append) are also counted as
// verification outcomes.
const VerifyRoute = "/auth/verify"

// unmatchedRoute labels requests no route matched, so that probing random
// paths cannot create unbounded series.
const unmatchedRoute = "unmatched"

// ObserveHTTP records one finished request. route is the matched route
// template ("" when none matched), errType the "type" of the JSON error
// body when the answer was an error (it tells expired_key from other 401s
// and budget_exceeded from other 429s). Its signature is that of
// internal/httperr.Observer.
func (m *Metrics) ObserveHTTP(method, route string, status int, errType string, elapsed time.Duration) {
	if route == "" {
		route = unmatchedRoute
	}
	code := strconv.Itoa(status)
	m.httpRequests.WithLabelValues(route, method, code).Inc()
	m.httpDuration.WithLabelValues(route, method, code).Observe(elapsed.Seconds())
	if route == VerifyRoute || strings.HasPrefix(route, VerifyRoute+"/") {
		m.verify.WithLabelValues(VerifyOutcome(status, errType)).Inc()
	}
}

// VerifyOutcome maps a forward-auth answer to its outcome label.
func VerifyOutcome(status int, errType string) string {
	switch {
	case status >= 200 && status < 300:
		return OutcomeAllowed
	case status == http.StatusUnauthorized && errType == "expired_key":
		return OutcomeExpired
	case status == http.StatusUnauthorized:
		return OutcomeUnauthenticated
	case status == http.StatusForbidden:
		return OutcomeForbidden
	case status == http.StatusTooManyRequests && errType == "budget_exceeded":
		return OutcomeBudgetExceeded
	case status == http.StatusTooManyRequests:
		return OutcomeRateLimited
	case status == http.StatusServiceUnavailable:
		return OutcomeUnavailable
	}
	return OutcomeError
}

// Audit actions that are also counted as logins (internal/service writes
// them).
const (
	actionLoginSucceeded = "login.succeeded"
	actionLoginFailed    = "login.failed"
	actionLoginLockout   = "login.lockout"
)

// ObserveAudit counts one committed audit event and, for login events,
// the login outcome.
func (m *Metrics) ObserveAudit(action string) {
	if action == "" || len(action) > 64 {
		action = "other"
	}
	m.audit.WithLabelValues(action).Inc()
	switch action {
	case actionLoginSucceeded:
		m.ObserveLogin(LoginSuccess)
	case actionLoginFailed:
		m.ObserveLogin(LoginFailure)
	case actionLoginLockout:
		m.ObserveLogin(LoginLockout)
	}
}

// ObserveLogin counts a login outcome (LoginSuccess, LoginFailure,
// LoginLockout). InstrumentStore calls it from the audit events; it is
// exported for a login path that writes no audit event.
func (m *Metrics) ObserveLogin(outcome string) {
	switch outcome {
	case LoginSuccess, LoginFailure, LoginLockout:
		m.logins.WithLabelValues(outcome).Inc()
	}
}

// ObserveSpend counts one stored usage record of usd.
func (m *Metrics) ObserveSpend(usd float64) {
	m.spendCount.Inc()
	if usd > 0 && !math.IsInf(usd, 0) && !math.IsNaN(usd) {
		m.spendUSD.Add(usd)
	}
}

// hotSeries are the instruments of one (method, route, status, error
// type) combination, resolved once.
type hotSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	verify   prometheus.Counter // nil off the verification route
}

type hotKey struct {
	method, route string
	status        int
	errType       string
}

// HotObserver returns an observer with ObserveHTTP's meaning for a hot
// route (/auth/verify): each label combination is resolved once and kept,
// so a request costs two atomic adds and a histogram observation instead
// of three label lookups. Methods outside the standard set are counted as
// OTHER, which keeps the cache (and the series) bounded.
func (m *Metrics) HotObserver() func(method, route string, status int, errType string, elapsed time.Duration) {
	var cache sync.Map // hotKey → *hotSeries
	return func(method, route string, status int, errType string, elapsed time.Duration) {
		if route == "" {
			route = unmatchedRoute
		}
		k := hotKey{method: standardMethod(method), route: route, status: status, errType: errType}
		v, ok := cache.Load(k)
		if !ok {
			code := strconv.Itoa(status)
			s := &hotSeries{requests: m.httpRequests.WithLabelValues(route, k.method, code),
				duration: m.httpDuration.WithLabelValues(route, k.method, code)}
			if route == VerifyRoute || strings.HasPrefix(route, VerifyRoute+"/") {
				s.verify = m.verify.WithLabelValues(VerifyOutcome(status, errType))
			}
			v, _ = cache.LoadOrStore(k, s)
		}
		s := v.(*hotSeries)
		s.requests.Inc()
		s.duration.Observe(elapsed.Seconds())
		if s.verify != nil {
			s.verify.Inc()
		}
	}
}

func standardMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
