package api_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
)

// TestBadInput sends malformed, mistyped and oversized requests to every
// write endpoint: each must get a 4xx in LiteLLM's error shape, never a
// 500, and change nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "u1", "user_email": "u1@example.com"})
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t1"})
		huge := `{"user_id":"` + strings.Repeat("x", 2<<20) + `"}`
		cases := []struct {
			path   string
			body   any
			status int
		}{
			{"/user/new", `{"user_id":`, 400},
			{"/user/new", `not json`, 400},
			{"/user/new", ``, 400},
			{"/user/new", `[1,2]`, 400},
			{"/user/new", `{"a":1} {"b":2}`, 400},
			{"/user/new", map[string]any{"user_id": 12}, 400},
			{"/user/new", map[string]any{"max_budget": "ten"}, 400},
			{"/user/new", map[string]any{"max_budget": -1}, 400},
			{"/user/new", map[string]any{"models": "gpt-4o"}, 400},
			{"/user/new", map[string]any{"user_role": "superadmin"}, 400},
			{"/user/new", map[string]any{"user_role": "internal_user_view_only"}, 400},
			{"/user/new", map[string]any{"user_email": "not-an-email"}, 400},
			{"/user/new", map[string]any{"user_id": "has space"}, 400},
			{"/user/new", map[string]any{"user_id": strings.Repeat("a", 300)}, 400},
			{"/user/new", map[string]any{"budget_duration": "forever"}, 400},
			{"/user/new", map[string]any{"teams": "t1"}, 400},
			{"/user/new", map[string]any{"auto_create_key": "yes"}, 400},
			{"/user/new", map[string]any{"tpm_limit": -5}, 400},
			{"/user/new", huge, 413},
			{"/user/update", map[string]any{}, 400},
			{"/user/update", map[string]any{"user_id": "u1", "user_role": "root"}, 400},
			{"/user/update", map[string]any{"user_id": "u1", "max_budget": true}, 400},
			{"/user/update", map[string]any{"user_id": "u1", "user_email": "bad"}, 400},
			{"/user/delete", map[string]any{}, 400},
			{"/user/delete", map[string]any{"user_ids": "u1"}, 400},
			{"/user/delete", map[string]any{"user_ids": []string{""}}, 400},
			{"/team/new", map[string]any{"team_id": 5}, 400},
			{"/team/new", map[string]any{"members_with_roles": "x"}, 400},
			{"/team/new", map[string]any{"members_with_roles": []any{map[string]any{"role": "admin"}}}, 400},
			{"/team/update", map[string]any{}, 400},
			{"/team/update", map[string]any{"team_id": "t1", "max_budget": -3}, 400},
			{"/team/delete", map[string]any{"team_ids": []int{1}}, 400},
			{"/team/member_add", map[string]any{"team_id": "t1"}, 400},
			{"/team/member_add", map[string]any{"team_id": "t1", "member": map[string]any{"user_id": "u1", "role": "owner"}}, 400},
			{"/team/member_add", map[string]any{"team_id": "t1", "member": 7}, 400},
			{"/team/member_delete", map[string]any{"team_id": "t1"}, 400},
			{"/team/member_update", map[string]any{"team_id": "t1", "user_id": "u1", "role": "boss"}, 400},
		}
		before := snapshot(t, e)
		for _, c := range cases {
			name := c.path
			if s, ok := c.body.(string); ok && len(s) < 40 {
				name += " " + s
			}
			r := e.do(http.MethodPost, c.path, masterKey, c.body)
			requireError(t, r, c.status)
			require.NotContains(t, r.Body.String(), strings.Repeat("x", 100), "%s echoes the oversized input", name)
		}
		require.Equal(t, before, snapshot(t, e), "bad input changed the database")

		// unknown routes and methods answer in the same JSON shape
		requireError(t, e.do(http.MethodGet, "/no/such/route", masterKey, nil), http.StatusNotFound)
		requireError(t, e.do(http.MethodGet, "/user/new", masterKey, nil), http.StatusMethodNotAllowed)
		// missing / wrong credentials
		requireError(t, e.do(http.MethodGet, "/user/list", "", nil), http.StatusUnauthorized)
		requireError(t, e.do(http.MethodGet, "/user/list", "sk-wrong", nil), http.StatusUnauthorized)
	})
}

// TestWrongTypeMessagesNameTheField: a wrong type in a field with its own
// decoder names that field (it said "The request body must be a JSON
// object" with param None), and an integer field says "integer" (it said
// "must be of type number, got number 1e3").
func TestWrongTypeMessagesNameTheField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	for _, c := range []struct {
		body        map[string]any
		param, text string
	}{
		{map[string]any{"user_id": "a", "teams": "t1"}, "teams", `Field "teams" must be a list of team ids or objects.`},
		{map[string]any{"user_id": "b", "teams": []any{7}}, "teams", `Field "teams" must be a list of team ids or objects.`},
		{map[string]any{"user_id": "c", "rpm_limit": 1.5}, "rpm_limit", `Field "rpm_limit" must be of type integer, got number 1.5.`},
	} {
		r := e.do(http.MethodPost, "/user/new", masterKey, c.body)
		requireError(t, r, http.StatusBadRequest)
		errBody := r.JSON(t)["error"].(map[string]any)
		require.Equal(t, c.param, errBody["param"], r.Body.String())
		require.Equal(t, c.text, errBody["message"], r.Body.String())
	}
	r := e.do(http.MethodPost, "/team/member_add", masterKey, map[string]any{"team_id": "t1", "member": 7})
	requireError(t, r, http.StatusBadRequest)
	require.Contains(t, r.Body.String(), "A member must be an object")

	// A page size given as 0 is refused as 1000 is, not read as "absent".
	for _, q := range []string{"page_size=0", "page_size=1000", "page=0", "page=-1"} {
		requireError(t, e.do(http.MethodGet, "/user/list?"+q, masterKey, nil), http.StatusBadRequest)
	}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/list?page=1&page_size=1", masterKey, nil).Code)
}

// TestDisabledFeatureIsNoServerFault: a feature this server's
// configuration turns off answers 503 saying so, but it is not a failure:
// anyone may call it (these routes are public), so it must not write an
// ERROR line per request for an operator to be paged on (seen failing: a
// passwordless sign-in on a server without passkeys logged "request
// failed" at ERROR, twice).
func TestDisabledFeatureIsNoServerFault(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.BaseURL = "http://127.0.0.1:4100" // an IP address: no passkeys
	})
	origin := map[string]string{"Origin": "http://127.0.0.1:4100", "Content-Type": "application/json"}
	r := e.verifyAs(http.MethodPost, "/v2/login/mfa/webauthn?passwordless=true", "", origin, `{}`)
	requireError(t, r, http.StatusServiceUnavailable)
	require.Contains(t, r.Body.String(), "Passkeys need a host name")
	require.NotContains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "status=503", "the refusal is still logged")
}
