package e2e

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// BenchmarkVerify measures /auth/verify in process, through the whole
// handler (Gin engine, middleware, authenticator chain, cache, access
// check, JSON answer) but without sockets, so a CPU profile shows
// Keygate's own cost rather than the kernel's:
//
//	go test -run '^$' -bench BenchmarkVerify -benchmem -cpuprofile cpu.out ./internal/e2e/
//	go tool pprof -top cpu.out
//
// "miss" wires the app with a one-nanosecond cache TTL, so every request
// reads the key, its owner and memberships from the database.
func BenchmarkVerify(b *testing.B) {
	for _, c := range []struct {
		name     string
		postgres bool
		ttl      time.Duration
	}{
		{"cached/sqlite", false, 0},
		{"miss/sqlite", false, time.Nanosecond},
		{"miss/postgres", true, time.Nanosecond},
	} {
		b.Run(c.name, func(b *testing.B) {
			url := ""
			if c.postgres {
				url = dbtest.PostgresURL(b)
			}
			st := openStore(b, url)
			h := newApp(b, st, c.ttl).Handler()
			// Create a user through the same app, so its key is real.
			srv := httptest.NewServer(h)
			defer srv.Close()
			m := adminCall(b, srv.Client(), srv.URL, "/user/new",
				map[string]any{"user_id": "bench", "user_role": "internal_user", "models": []string{"gpt-4o"}})
			key, _ := m["key"].(string)
			if key == "" {
				b.Fatalf("no key in %v", m)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// One request and one writer per goroutine, reused, so the
				// profile shows Keygate rather than the harness.
				req := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
				req.Header.Set("Authorization", "Bearer "+key)
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
