package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
)

func TestTeamLifecycle(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		lead := e.userWithRole("lead", rbac.RoleInternalUser)
		member := e.userWithRole("member", rbac.RoleInternalUser)
		outsider := e.userWithRole("outsider", rbac.RoleInternalUser)
		e.userWithRole("newbie", rbac.RoleInternalUserViewer)

		r := e.do(http.MethodPost, "/team/new", masterKey, map[string]any{
			"team_id": "ml", "team_alias": "ML", "models": []string{"gpt-4o"}, "max_budget": 100,
			"members_with_roles": []any{map[string]any{"user_id": "lead", "role": "admin"}, map[string]any{"user_email": "member@example.com", "role": "user"}},
		})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		team := r.JSON(t)
		require.Equal(t, "ML", team["team_alias"])
		require.Len(t, team["members_with_roles"], 2)
		requireError(t, e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "ml"}), http.StatusConflict)
		requireError(t, e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"members_with_roles": []any{map[string]any{"user_id": "ghost"}}}), http.StatusNotFound)
		requireError(t, e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"members_with_roles": []any{map[string]any{"user_id": "lead", "role": "owner"}}}), http.StatusBadRequest)

		// info: members yes, outsiders no
		r = e.do(http.MethodGet, "/team/info?team_id=ml", member, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "ml", r.JSON(t)["team_id"])
		requireError(t, e.do(http.MethodGet, "/team/info?team_id=ml", outsider, nil), http.StatusForbidden)
		requireError(t, e.do(http.MethodGet, "/team/info", masterKey, nil), http.StatusBadRequest)
		requireError(t, e.do(http.MethodGet, "/team/info?team_id=nope", masterKey, nil), http.StatusNotFound)

		// list: admin sees all, users their own, never someone else's
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "other"})
		r = e.do(http.MethodGet, "/team/list", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code)
		var all []any
		require.NoError(t, jsonUnmarshal(r.Body.Bytes(), &all))
		require.Len(t, all, 2)
		r = e.do(http.MethodGet, "/team/list", member, nil)
		var mine []any
		require.NoError(t, jsonUnmarshal(r.Body.Bytes(), &mine))
		require.Len(t, mine, 1)
		requireError(t, e.do(http.MethodGet, "/team/list?user_id=lead", member, nil), http.StatusForbidden)

		// team admin manages members of their team only
		r = e.do(http.MethodPost, "/team/member_add", lead, map[string]any{"team_id": "ml", "member": map[string]any{"user_id": "newbie", "role": "user"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Len(t, r.JSON(t)["members_with_roles"], 3)
		requireError(t, e.do(http.MethodPost, "/team/member_add", lead, map[string]any{"team_id": "other", "member": map[string]any{"user_id": "newbie"}}), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/team/member_add", member, map[string]any{"team_id": "ml", "member": map[string]any{"user_id": "outsider"}}), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/team/member_add", outsider, map[string]any{"team_id": "ml", "member": []any{map[string]any{"user_id": "outsider", "role": "admin"}}}), http.StatusForbidden)
		_, err := e.store.GetMembership(t.Context(), "ml", "outsider")
		require.Error(t, err, "forbidden member_add must change nothing")

		r = e.do(http.MethodPost, "/team/member_update", lead, map[string]any{"team_id": "ml", "user_id": "newbie", "role": "admin"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		m, err := e.store.GetMembership(t.Context(), "ml", "newbie")
		require.NoError(t, err)
		require.Equal(t, "admin", m.Role)
		requireError(t, e.do(http.MethodPost, "/team/member_update", lead, map[string]any{"team_id": "ml", "user_id": "outsider", "role": "admin"}), http.StatusNotFound)

		r = e.do(http.MethodPost, "/team/member_delete", masterKey, map[string]any{"team_id": "ml", "user_email": "MEMBER@example.com"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireError(t, e.do(http.MethodGet, "/team/info?team_id=ml", member, nil), http.StatusForbidden)

		// update and delete (admin only)
		r = e.do(http.MethodPost, "/team/update", masterKey, map[string]any{"team_id": "ml", "team_alias": "Machine Learning", "blocked": true})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, true, r.JSON(t)["blocked"])
		requireError(t, e.do(http.MethodPost, "/team/update", masterKey, map[string]any{"team_id": "nope", "team_alias": "x"}), http.StatusNotFound)
		requireError(t, e.do(http.MethodPost, "/team/delete", masterKey, map[string]any{"team_ids": []string{"ml", "nope"}}), http.StatusNotFound)
		_, err = e.store.GetTeam(t.Context(), "ml")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/team/delete", masterKey, map[string]any{"team_ids": []string{"ml"}}).Code)
		ms, err := e.store.ListMembershipsByUser(t.Context(), "lead")
		require.NoError(t, err)
		require.Empty(t, ms)

		// users created into a team by /user/new
		r = e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "joiner", "teams": []any{"other", map[string]any{"team_id": "other", "user_role": "admin"}}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, []any{"other"}, r.JSON(t)["teams"])
		requireError(t, e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "joiner2", "teams": []string{"missing"}}), http.StatusNotFound)
		_, err = e.store.GetUser(t.Context(), "joiner2")
		require.Error(t, err, "failed /user/new must roll back the user")
	})
}
