package api_test

// Regression tests for the red team's login-throttling findings: each
// test names the finding it pins down.

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/password"
	"github.com/keygate/keygate/internal/app"
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
