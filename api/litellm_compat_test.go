package api_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// TestLiteLLMDashboardContract: the requests LiteLLM's dashboard and
// clients make answer in LiteLLM's shape.
func TestLiteLLMDashboardContract(t *testing.T) {
	t.Parallel()
	st := openStore(t, pgOptions(dbtestPostgres(t)))
	e := newEnv(t, st)
	ctx := t.Context()
	aliceKey := e.userWithRole("alice", rbac.RoleInternalUser)
	e.userWithRole("viewer", rbac.RoleInternalUserViewer)
	_, err := e.store.UpdateUser(ctx, "alice", func(u *store.User) error {
		u.SSOIssuer, u.SSOSubject = "https://idp.example", "sub-alice"
		return nil
	})
	require.NoError(t, err)

	// /user/update answers {"user_id", "data": <row>} (the dashboard reads
	// data.user_id); unknown fields stay ignored.
	r := e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "alice", "user_alias": "Alice", "unknown_field": 1})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	out := r.JSON(t)
	require.Equal(t, "alice", out["data"].(map[string]any)["user_id"])
	require.Equal(t, "Alice", out["data"].(map[string]any)["user_alias"])
	require.Equal(t, "alice", out["user_id"])

	// GET /user/info without user_id: an admin gets LiteLLM's admin view.
	r = e.do(http.MethodGet, "/user/info", masterKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	out = r.JSON(t)
	require.Nil(t, out["user_id"])
	require.Nil(t, out["user_info"])
	require.GreaterOrEqual(t, len(out["keys"].([]any)), 2, "every key")
	require.NotNil(t, out["teams"])
	// ... a user still gets their own.
	r = e.do(http.MethodGet, "/user/info", aliceKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, "alice", r.JSON(t)["user_id"])

	// /user/list?sso_user_ids= filters.
	r = e.do(http.MethodGet, "/user/list?sso_user_ids=sub-alice", masterKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	users := r.JSON(t)["users"].([]any)
	require.Len(t, users, 1)
	require.Equal(t, "alice", users[0].(map[string]any)["user_id"])

	// POST /v2/key/info: several keys; a key the caller may not see is refused.
	viewerKey := e.userWithRole("viewer2", rbac.RoleInternalUserViewer)
	r = e.do(http.MethodPost, "/v2/key/info", masterKey, map[string]any{"keys": []string{aliceKey, viewerKey}})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	out = r.JSON(t)
	require.Len(t, out["info"].([]any), 2)
	require.NotContains(t, r.Body.String(), aliceKey, "raw keys are never echoed")
	r = e.do(http.MethodPost, "/v2/key/info", aliceKey, map[string]any{"keys": []string{viewerKey}})
	require.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, r.Code, r.Body.String())
	requireError(t, e.do(http.MethodPost, "/v2/key/info", masterKey, map[string]any{"keys": "not-a-list"}), http.StatusBadRequest)

	// GET /v2/team/list pages teams; a non-admin sees only their own.
	r = e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t1", "team_alias": "One",
		"members_with_roles": []map[string]any{{"user_id": "alice", "role": "user"}}})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	r = e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t2"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	r = e.do(http.MethodPost, "/team/member_update", masterKey, map[string]any{"team_id": "t1", "user_id": "alice", "max_budget_in_team": 5})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	r = e.do(http.MethodGet, "/v2/team/list?page=1&page_size=1", masterKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	out = r.JSON(t)
	require.EqualValues(t, 2, out["total"])
	require.EqualValues(t, 2, out["total_pages"])
	require.Len(t, out["teams"].([]any), 1)
	r = e.do(http.MethodGet, "/v2/team/list", aliceKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.EqualValues(t, 1, r.JSON(t)["total"])

	// /team/info: member budgets in LiteLLM's shape.
	r = e.do(http.MethodGet, "/team/info?team_id=t1", masterKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	ms := r.JSON(t)["team_memberships"].([]any)
	require.Len(t, ms, 1)
	m := ms[0].(map[string]any)
	require.Equal(t, 5.0, m["litellm_budget_table"].(map[string]any)["max_budget"])
	require.Contains(t, m, "budget_id")

	// GET /key/aliases: admins see every alias, users their own.
	_, err = e.store.UpdateKey(ctx, sha256hex(aliceKey), func(k *store.Key) error { k.Alias = "alice-laptop"; return nil })
	require.NoError(t, err)
	_, err = e.store.UpdateKey(ctx, sha256hex(viewerKey), func(k *store.Key) error { k.Alias = "viewer-ci"; return nil })
	require.NoError(t, err)
	r = e.do(http.MethodGet, "/key/aliases", masterKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, []any{"alice-laptop", "viewer-ci"}, r.JSON(t)["aliases"])
	r = e.do(http.MethodGet, "/key/aliases?search=ALICE", masterKey, nil)
	require.Equal(t, []any{"alice-laptop"}, r.JSON(t)["aliases"])
	r = e.do(http.MethodGet, "/key/aliases", aliceKey, nil)
	require.Equal(t, []any{"alice-laptop"}, r.JSON(t)["aliases"], "a user sees only their own keys' aliases")

	// UI settings (signed in) and the public UI config.
	r = e.do(http.MethodGet, "/sso/get/ui_settings", aliceKey, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	out = r.JSON(t)
	require.Equal(t, "https://intranet.example/bye", out["PROXY_LOGOUT_URL"])
	require.Equal(t, false, out["SSO_ENABLED"])
	requireError(t, e.do(http.MethodGet, "/sso/get/ui_settings", "", nil), http.StatusUnauthorized)
	for _, p := range []string{"/litellm/.well-known/litellm-ui-config", "/.well-known/litellm-ui-config"} {
		r = e.do(http.MethodGet, p, "", nil)
		require.Equal(t, http.StatusOK, r.Code, p)
		require.Equal(t, "/", r.JSON(t)["server_root_path"])
		require.Contains(t, r.JSON(t), "sso_configured")
	}

	// GET /onboarding/get_token returns a token the dashboard can decode,
	// consuming nothing; the token grants nothing.
	r = e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "viewer"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	inv := r.JSON(t)["id"].(string)
	for range 2 {
		r = e.do(http.MethodGet, "/onboarding/get_token?invite_link="+inv, "", nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	}
	tok := r.JSON(t)["token"].(string)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	require.Equal(t, "viewer", claims["user_id"])
	require.Equal(t, "viewer@example.com", claims["user_email"])
	requireError(t, e.do(http.MethodGet, "/key/list", tok, nil), http.StatusUnauthorized)
	r = e.do(http.MethodPost, "/onboarding/claim_token", tok, map[string]any{"invitation_link": inv, "user_id": "viewer", "password": "a-long-password"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
}

func sha256hex(raw string) string { return hex.EncodeToString(sha(raw)) }
