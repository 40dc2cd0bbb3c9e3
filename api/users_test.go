package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
)

func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		// create with client-chosen, e-mail-like id; unknown fields ignored
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{
			"user_id": "alice@corp.example", "user_email": "Alice@Corp.example", "user_role": "internal_user",
			"max_budget": 10.5, "models": []string{"gpt-4o"}, "aliases": map[string]any{}, "tpm_limit": 1000,
			"teams": []string{}, "some_future_field": true,
		})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		u := r.JSON(t)
		require.Equal(t, "alice@corp.example", u["user_id"])
		require.Equal(t, "internal_user", u["user_role"])
		require.Equal(t, 10.5, u["max_budget"])
		require.NotContains(t, r.Body.String(), "password")

		// generated id when none is given; default role is the least privileged
		r = e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "bob@corp.example"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		bob := r.JSON(t)
		require.Len(t, bob["user_id"], 36)
		require.Equal(t, "internal_user_viewer", bob["user_role"])

		// duplicate e-mail, other case → 409; duplicate id → 409
		requireError(t, e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "ALICE@corp.EXAMPLE"}), http.StatusConflict)
		requireError(t, e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "alice@corp.example"}), http.StatusConflict)

		// info (v1 and v2)
		r = e.do(http.MethodGet, "/user/info?user_id=alice@corp.example", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		info := r.JSON(t)
		require.Equal(t, "alice@corp.example", info["user_id"])
		require.Equal(t, "internal_user", info["user_info"].(map[string]any)["user_role"])
		r = e.do(http.MethodGet, "/v2/user/info?user_id=alice@corp.example", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code)
		require.Equal(t, "Alice@Corp.example", r.JSON(t)["user_email"])
		requireError(t, e.do(http.MethodGet, "/user/info?user_id=nobody", masterKey, nil), http.StatusNotFound)

		// update: role change; unknown user is 404 and creates nothing
		r = e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "alice@corp.example", "user_role": "proxy_admin_viewer", "user_alias": "Alice"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "proxy_admin_viewer", r.JSON(t)["user_role"])
		requireError(t, e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "ghost", "user_alias": "x"}), http.StatusNotFound)
		requireError(t, e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_email": "ghost@corp.example", "user_alias": "x"}), http.StatusNotFound)
		_, total, err := e.store.ListUsers(t.Context(), storeUserFilter())
		require.NoError(t, err)
		require.EqualValues(t, 3, total, "update must never create users (the bootstrap admin and two users)")
		// update by e-mail (case-insensitive lookup)
		r = e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_email": "BOB@corp.example", "max_budget": 3})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.EqualValues(t, 3, r.JSON(t)["max_budget"])
		// changing e-mail to a taken one → 409
		requireError(t, e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": bob["user_id"], "user_email": "alice@CORP.example"}), http.StatusConflict)

		// list with filters and paging
		for i := 0; i < 5; i++ {
			e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "list" + itoa(i) + "@corp.example", "user_role": "internal_user"})
		}
		r = e.do(http.MethodGet, "/user/list?page=1&page_size=2&role=internal_user", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		l := r.JSON(t)
		require.EqualValues(t, 5, l["total"])
		require.EqualValues(t, 3, l["total_pages"])
		require.Len(t, l["users"], 2)
		require.Contains(t, l["users"].([]any)[0].(map[string]any), "key_count")
		r = e.do(http.MethodGet, "/user/list?page=3&page_size=2&role=internal_user", masterKey, nil)
		require.Len(t, r.JSON(t)["users"], 1)
		r = e.do(http.MethodGet, "/user/list?user_email=LIST3", masterKey, nil)
		require.EqualValues(t, 1, r.JSON(t)["total"])
		requireError(t, e.do(http.MethodGet, "/user/list?page_size=101", masterKey, nil), http.StatusBadRequest)
		requireError(t, e.do(http.MethodGet, "/user/list?page=abc", masterKey, nil), http.StatusBadRequest)
		requireError(t, e.do(http.MethodGet, "/user/list?role=superuser", masterKey, nil), http.StatusBadRequest)

		// delete cascades memberships; unknown id deletes nothing
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t1", "members_with_roles": []any{map[string]any{"user_id": "alice@corp.example", "role": "user"}}})
		requireError(t, e.do(http.MethodPost, "/user/delete", masterKey, map[string]any{"user_ids": []string{"alice@corp.example", "ghost"}}), http.StatusNotFound)
		_, err = e.store.GetUser(t.Context(), "alice@corp.example")
		require.NoError(t, err, "all-or-nothing delete")
		r = e.do(http.MethodPost, "/user/delete", masterKey, map[string]any{"user_ids": []string{"alice@corp.example"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		ms, err := e.store.ListMembershipsByTeam(t.Context(), "t1")
		require.NoError(t, err)
		require.Empty(t, ms)
		requireError(t, e.do(http.MethodGet, "/user/info?user_id=alice@corp.example", masterKey, nil), http.StatusNotFound)

		// roles
		r = e.do(http.MethodGet, "/user/available_roles", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code)
		roles := r.JSON(t)
		for _, role := range rbac.Roles() {
			require.Contains(t, roles, string(role))
		}
	})
}

func TestUserSelfScope(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		carol := e.userWithRole("carol", rbac.RoleInternalUser)
		e.userWithRole("dave", rbac.RoleInternalUser)
		viewer := e.userWithRole("vera", rbac.RoleProxyAdminViewer)

		// own info without user_id
		r := e.do(http.MethodGet, "/user/info", carol, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "carol", r.JSON(t)["user_id"])
		// someone else's: 403 on v1, 404 on v2 (LiteLLM hides existence there)
		requireError(t, e.do(http.MethodGet, "/user/info?user_id=dave", carol, nil), http.StatusForbidden)
		requireError(t, e.do(http.MethodGet, "/v2/user/info?user_id=dave", carol, nil), http.StatusNotFound)
		// admin viewer sees everyone, changes nothing
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info?user_id=dave", viewer, nil).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/list", viewer, nil).Code)
		requireError(t, e.do(http.MethodPost, "/user/update", viewer, map[string]any{"user_id": "vera", "user_role": "proxy_admin"}), http.StatusForbidden)
		u, err := e.store.GetUser(t.Context(), "vera")
		require.NoError(t, err)
		require.Equal(t, "proxy_admin_viewer", u.Role)

		// a role change applies on the next request
		require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/user/list", carol, nil).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "carol", "user_role": "proxy_admin_viewer"}).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/list", carol, nil).Code)
	})
}

func TestNoSecretsInUserAnswers(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("erin", rbac.RoleInternalUser)
		_, err := e.store.UpdateUser(t.Context(), "erin", func(u *User) error { u.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"; return nil })
		require.NoError(t, err)
		for _, path := range []string{"/user/info?user_id=erin", "/v2/user/info?user_id=erin", "/user/list"} {
			r := e.do(http.MethodGet, path, masterKey, nil)
			require.Equal(t, http.StatusOK, r.Code)
			require.False(t, strings.Contains(r.Body.String(), "argon2id"), "%s leaks the password hash", path)
		}
	})
}
