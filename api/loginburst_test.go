package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
)

// TestLoginBurstIsBounded: a burst of bad logins must not queue up behind
// the password hasher without limit (that made a legitimate login wait
// 20 s): past a bounded queue, logins are answered 429 with Retry-After at
// once, and nothing fails with a 5xx.
func TestLoginBurstIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.PasswordParams = nil // the real cost: the queue has to fill
		o.MaxConcurrentHashes = 1
	})
	const n = 40
	var wg sync.WaitGroup
	results := make(chan response, n)
	for i := range n {
		wg.Go(func() {
			r, _ := e.login("nobody-"+itoa(i)+"@example.com", "wrong password!")
			results <- r
		})
	}
	wg.Wait()
	close(results)
	busy := 0
	for r := range results {
		require.Less(t, r.Code, 500, r.Body.String())
		if r.Code == http.StatusTooManyRequests {
			require.NotEmpty(t, r.Hdr.Get("Retry-After"), r.Body.String())
			if strings.Contains(r.Body.String(), "sign-ins") {
				busy++
			}
			continue
		}
		require.Equal(t, http.StatusUnauthorized, r.Code, r.Body.String())
	}
	require.Positive(t, busy, "logins past the hashing queue are turned away at once")
}
