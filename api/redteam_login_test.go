package api_test

// Regression tests for the red team's login-throttling findings: each
// test names the finding it pins down.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/websession"
	"github.com/keygate/keygate/rbac"
)

// F2: during a flood the hash queue refused the right password with an
// overload 429, but the attempt had already been recorded against the
// account, so five refusals locked the user out for 15 minutes. An
// overload refusal now records nothing: the user signs in once the queue
// drains, however often they were turned away.
func TestOverloadRefusalIsNotAFailedAttempt(t *testing.T) {
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			h, err := password.New(cheapArgon, 1)
			require.NoError(t, err)
			h.LimitQueue(0) // the one slot is the only place
			e := newEnvWith(t, db.open(t), func(o *app.Options) { o.Hasher = h })
			e.userWithRole("steady", rbac.RoleInternalUser)
			e.setPassword("steady", "steady's password")

			flood, err := h.Reserve() // the flood holds every place
			require.NoError(t, err)
			for i := 0; i < 8; i++ { // more than the account's limit of 5
				r := e.loginFrom("198.51.100.9", "steady@example.com", "steady's password")
				body := requireError(t, r, http.StatusTooManyRequests)
				require.Contains(t, body["message"], "being checked right now", "refusal %d", i)
				require.NotEmpty(t, r.Hdr.Get("Retry-After"))
			}
			flood.Release()
			r := e.loginFrom("198.51.100.9", "steady@example.com", "steady's password")
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		})
	}
}

// loginWithCookie is loginFrom with a Cookie header.
func (e *testEnv) loginWithCookie(ip, cookie, user, pass string) response {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v2/login", strings.NewReader(`{"username":`+jsonStr(user)+`,"password":`+jsonStr(pass)+`}`))
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", websession.DeviceCookie+"="+cookie)
	}
	req.RemoteAddr = ip + ":40000"
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return response{Code: w.Code, Body: w.Body, Hdr: w.Header()}
}

func deviceCookie(t *testing.T, r response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Hdr}).Cookies() {
		if c.Name == websession.DeviceCookie {
			require.True(t, c.HttpOnly, "device cookie is HttpOnly")
			require.Equal(t, http.SameSiteLaxMode, c.SameSite)
			require.Greater(t, c.MaxAge, 30*24*3600, "device cookie is long-lived")
			return c.Value
		}
	}
	t.Fatalf("no device cookie set: %v", r.Hdr.Values("Set-Cookie"))
	return ""
}

// F3: a flood of wrong passwords from one address (20 goroutines, other
// accounts) made another account's right password from that address wait
// 16 s and then answered "Too many failed logins from your network" — a
// lock, against the rule "per-address slow-down, never a lock". A browser
// that signed in to the account before carries a device cookie, and that
// account's sign-ins from it skip the address's slow-down; the account's
// own lockout still applies. Without the cookie (or with a forged one, or
// one for another account) the address is slowed, and a refusal says so,
// after a bounded wait, with Retry-After.
func TestDeviceCookieSkipsAddressSlowDown(t *testing.T) {
	const ip = "203.0.113.5"
	var hold atomic.Bool
	var sleeping atomic.Int64
	gate := make(chan struct{})
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		// The flood's slow-down waits until the test lets it go, holding
		// the address's turn for as long as the test needs.
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			if !hold.Load() {
				return nil
			}
			sleeping.Add(1)
			defer sleeping.Add(-1)
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	e.userWithRole("regular", rbac.RoleInternalUser)
	e.setPassword("regular", "regular's password")
	e.userWithRole("other", rbac.RoleInternalUser)
	e.setPassword("other", "other's password")
	r := e.loginWithCookie(ip, "", "regular@example.com", "regular's password")
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	mine := deviceCookie(t, r)
	r = e.doHeaders(http.MethodPost, "/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"username=other%40example.com&password=other%27s+password")
	require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String()) // LiteLLM's form login sets it too
	others := deviceCookie(t, r)
	id64, rest, _ := strings.Cut(mine, ".")
	require.NotEqual(t, "b3RoZXI", id64)
	forged := "b3RoZXI." + rest // "other" with regular's issue time and MAC

	for i := range 12 { // past the address's free failures
		requireError(t, e.loginWithCookie(ip, "", "nob-"+itoa(i)+"@example.com", "wrongwrong"), http.StatusUnauthorized)
	}
	hold.Store(true)
	stop := make(chan struct{})
	var flood sync.WaitGroup
	for i := range 20 {
		flood.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				e.loginWithCookie(ip, "", "nob-"+itoa(i)+"-"+itoa(n)+"@example.com", "wrongwrong")
			}
		})
	}
	require.Eventually(t, func() bool { return sleeping.Load() > 0 }, 10*time.Second, time.Millisecond, "the flood holds the address's turn")

	start := time.Now()
	r = e.loginWithCookie(ip, mine, "regular@example.com", "regular's password")
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Less(t, time.Since(start), 3*time.Second, "the device cookie's account is not held back by the flood")

	// No exemption without a valid cookie for this account: slowed, and
	// a refusal after a bounded wait that says so.
	var others3 sync.WaitGroup
	for _, ck := range []string{"", others, forged} {
		others3.Go(func() {
			start := time.Now()
			r := e.loginWithCookie(ip, ck, "regular@example.com", "regular's password")
			body := requireError(t, r, http.StatusTooManyRequests)
			msg, _ := body["message"].(string)
			require.Contains(t, msg, "slowed down", "cookie %q", ck)
			require.NotContains(t, msg, "Too many failed logins")
			require.NotEmpty(t, r.Hdr.Get("Retry-After"))
			require.Less(t, time.Since(start), 12*time.Second, "the wait is bounded")
		})
	}
	others3.Wait()
	close(stop)
	close(gate)
	flood.Wait()

	// The account's own lockout still applies to the cookie's holder.
	for i := range 5 {
		r := e.loginWithCookie(ip, mine, "regular@example.com", "wrong guess "+itoa(i))
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, r.Code, r.Body.String())
	}
	body := requireError(t, e.loginWithCookie(ip, mine, "regular@example.com", "regular's password"), http.StatusTooManyRequests)
	require.Contains(t, body["message"], "Too many login attempts")
}
