package e2e

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/websession"
)

// BenchmarkVerify measures /auth/verify in process, through the whole
// handler (api.VerifyHandler in front of Gin, authenticator chain, cache,
// access decision, identity headers) but without sockets, so a CPU profile
// shows Keygate's own cost rather than the kernel's:
//
//	go test -run '^$' -bench BenchmarkVerify -benchmem -cpuprofile cpu.out -o e2e.test ./internal/e2e/
//	go tool pprof -top e2e.test cpu.out
//
// "cached" verifies an API key whose answer is cached; "jwt-bearer" and
// "jwt-cookie" a session JWT (Authorization: Bearer, or the session
// cookie) whose signature check and session row are cached; "miss" wires
// the app with a one-nanosecond cache TTL, so every request reads the key,
// its owner and memberships from the database.
func BenchmarkVerify(b *testing.B) {
	for _, c := range []struct {
		name     string
		cred     string // "key", "bearer" or "cookie"
		postgres bool
		ttl      time.Duration
	}{
		{"cached/sqlite", "key", false, 0},
		{"jwt-bearer/sqlite", "bearer", false, 0},
		{"jwt-cookie/sqlite", "cookie", false, 0},
		{"miss/sqlite", "key", false, time.Nanosecond},
		{"miss/postgres", "key", true, time.Nanosecond},
	} {
		b.Run(c.name, func(b *testing.B) {
			url := ""
			if c.postgres {
				url = dbtest.PostgresURL(b)
			}
			h, header, value := verifyTarget(b, url, c.ttl, c.cred)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			defer func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				// One request and one writer per goroutine, reused, so the
				// profile shows Keygate rather than the harness.
				req := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
				req.Header.Set(header, value)
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					w.code = 0
					h.ServeHTTP(w, req)
					if w.code != http.StatusOK {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		})
	}
}

// TestVerifyAllocations bounds the heap allocations of a cached
// /auth/verify (issue 19): the request id and its header value and the
// status recorder, for an API key and a session JWT alike. Before the
// issue they were 8, 10 and 12: the credential copied to be hashed (twice
// for a JWT), the digest, the checksum's copy of the key, the cached
// claims cloned, the cookie parsed into Cookie values, a Content-Type
// slice per answer.
func TestVerifyAllocations(t *testing.T) {
	for _, cred := range []string{"key", "bearer", "cookie"} {
		t.Run(cred, func(t *testing.T) {
			h, header, value := verifyTarget(t, "", 0, cred)
			req := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
			req.Header.Set(header, value)
			w := &discardWriter{h: http.Header{}}
			n := testing.AllocsPerRun(200, func() {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
			})
			require.Equal(t, http.StatusOK, w.code)
			require.Equal(t, "bench", w.h.Get("X-Keygate-User-Id"))
			require.LessOrEqual(t, n, 3.0, "allocations per cached /auth/verify with a %s", cred)
		})
	}
}

// verifyTarget wires Keygate (with sessions) on a fresh database (SQLite
// when url is empty) and returns its handler and the request header that
// authenticates user "bench" with cred: "key" (an API key), "bearer" or
// "cookie" (a session JWT from /v2/login). cacheTTL 0 keeps the default.
func verifyTarget(t testing.TB, url string, cacheTTL time.Duration, cred string) (h http.Handler, header, value string) {
	t.Helper()
	st := openStore(t, url)
	a, err := app.New(context.Background(), app.Options{Store: st, Logger: quietLogger(),
		MasterKeyHash: sha256.Sum256([]byte(masterKey)), MaxBodyBytes: 1 << 20, CacheTTL: cacheTTL,
		TrustedProxies: []string{"127.0.0.1"}, Secret: "bench-secret-0123456789abcdef", Issuer: "http://127.0.0.1"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a.Run(ctx)
	t.Cleanup(func() { cancel(); a.Wait() })
	h = a.Handler()
	// Create the user through the same app, so its key and its session
	// token are real.
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := adminCall(t, srv.Client(), srv.URL, "/user/new",
		map[string]any{"user_id": "bench", "user_role": "internal_user", "models": []string{"gpt-4o"}})
	key, _ := m["key"].(string)
	require.NotEmpty(t, key, "no key in %v", m)
	if cred == "key" {
		return h, "Authorization", "Bearer " + key
	}
	adminCall(t, srv.Client(), srv.URL, "/user/update", map[string]any{"user_id": "bench", "password": "bench-password-1"})
	m = adminCall(t, srv.Client(), srv.URL, "/v2/login", map[string]any{"username": "bench", "password": "bench-password-1"})
	tok, _ := m["token"].(string)
	require.NotEmpty(t, tok, "no token in %v", m)
	if cred == "cookie" {
		return h, "Cookie", websession.SessionCookie + "=" + tok
	}
	return h, "Authorization", "Bearer " + tok
}

// processCPU is the CPU time this process has used (user and system):
// per request it is the figure the targets are about, which
// ns/op, a wall time, is not when a request waits on PostgreSQL.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardWriter is the cheapest http.ResponseWriter: it keeps the status
// and drops the body.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// WriteString, as net/http's own writer has, so io.WriteString does not
// convert (and allocate) in the harness.
func (w *discardWriter) WriteString(s string) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(s), nil
}
