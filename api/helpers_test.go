package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/store"
)

// User aliases store.User for updater closures.
type User = store.User

func storeUserFilter() store.UserFilter { return store.UserFilter{Page: store.Page{Limit: 1000}} }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// fakeClock is an adjustable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// doHeaders sends a request with exactly the given headers and raw body.
func (e *testEnv) doHeaders(method, path string, hdr map[string]string, body string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return response{Code: w.Code, Body: w.Body, Hdr: w.Header()}
}
