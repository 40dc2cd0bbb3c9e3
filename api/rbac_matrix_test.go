package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// snapshot summarises everything a management call could change.
func snapshot(t *testing.T, e *testEnv) string {
	t.Helper()
	ctx := t.Context()
	all := store.Page{Limit: 1000}
	users, nu, err := e.store.ListUsers(ctx, store.UserFilter{Page: all})
	require.NoError(t, err)
	teams, nt, err := e.store.ListTeams(ctx, store.TeamFilter{Page: all})
	require.NoError(t, err)
	keys, nk, err := e.store.ListKeys(ctx, store.KeyFilter{Page: all})
	require.NoError(t, err)
	_, ni, err := e.store.ListInvitations(ctx, store.InvitationFilter{Page: all})
	require.NoError(t, err)
	_, na, err := e.store.ListAudit(ctx, store.AuditFilter{Page: all})
	require.NoError(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "users=%d teams=%d keys=%d invitations=%d audit=%d\n", nu, nt, nk, ni, na)
	for _, u := range users {
		fmt.Fprintf(&b, "u %s %s %s %v %s\n", u.ID, u.Role, u.Email, u.Disabled, u.Alias)
	}
	for _, tm := range teams {
		ms, err := e.store.ListMembershipsByTeam(ctx, tm.ID)
		require.NoError(t, err)
		fmt.Fprintf(&b, "t %s %s %v %d\n", tm.ID, tm.Alias, tm.Blocked, len(ms))
		for _, m := range ms {
			fmt.Fprintf(&b, "  m %s %s\n", m.UserID, m.Role)
		}
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "k %s %s %s %s %v %v %v %s\n", k.Hash, k.Alias, k.UserID, k.TeamID, k.Models, k.Blocked, fmtBudget(k.MaxBudget), k.KeyType)
	}
	return b.String()
}

func fmtBudget(b *float64) string {
	if b == nil {
		return "-"
	}
	return fmt.Sprint(*b)
}

// matrixBody carries every field any route might act on, aimed at a victim
// user and team, so a route that wrongly lets a call through would change
// something the snapshot sees.
func matrixBody() map[string]any {
	return map[string]any{
		"user_id": "victim", "user_ids": []string{"victim"}, "user_email": "victim@example.com",
		"user_role": "proxy_admin", "team_id": "team-1", "team_ids": []string{"team-1"}, "team_alias": "pwned",
		"member": map[string]any{"user_id": "actor-internal_user", "role": "admin"}, "role": "admin",
		"models": []string{"gpt-4o"}, "max_budget": 1,
	}
}

// TestRBACMatrix walks every registered route with a principal of every
// role, and with an ownerless (role-less) key, and requires 403 with
// nothing changed wherever the role table says no.
func TestRBACMatrix(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "victim", "user_email": "victim@example.com", "user_role": "internal_user"})
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "team-1", "members_with_roles": []any{map[string]any{"user_id": "victim", "role": "admin"}}})
		tokens := map[rbac.Role]string{}
		for _, role := range rbac.Roles() {
			tokens[role] = e.userWithRole("actor-"+string(role), role)
		}
		// an ownerless key (made by an admin without user_id) has no role
		r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"key_alias": "ownerless"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		tokens[rbac.RoleNone] = r.JSON(t)["key"].(string)
		roles := append(rbac.Roles(), rbac.RoleNone)
		checked := 0
		for _, rt := range e.server.Routes() {
			if rt.Public {
				continue
			}
			require.NotEmpty(t, rt.Perm, "%s %s has no permission", rt.Method, rt.Path)
			for _, role := range roles {
				if rbac.Can(role, rt.Perm) {
					continue
				}
				before := snapshot(t, e)
				path := strings.ReplaceAll(rt.Path, ":key", "sk-victimkey")
				path += "?user_id=victim&team_id=team-1"
				var body any
				if rt.Method != http.MethodGet {
					body = matrixBody()
				}
				r := e.do(rt.Method, path, tokens[role], body)
				inner := requireRouteError(t, r, rt.Path, http.StatusForbidden)
				require.Contains(t, inner["message"], string(role), "%s %s as %s", rt.Method, rt.Path, role)
				require.Equal(t, before, snapshot(t, e), "%s %s as %s changed the database", rt.Method, rt.Path, role)
				checked++
			}
		}
		require.Greater(t, checked, 20, "the matrix must actually exercise forbidden calls")
	})
}

// TestEveryRouteDeclaresPermission: Mount refuses a route with neither a
// permission nor Public, so no route can be added without a policy.
func TestEveryRouteDeclaresPermission(t *testing.T) {
	t.Parallel()
	srv := api.New(api.Options{})
	srv.Add(api.Route{Method: http.MethodGet, Path: "/oops", Handler: nil})
	eng, err := api.NewEngine(api.EngineOptions{})
	require.NoError(t, err)
	require.Panics(t, func() { srv.Mount(eng) })
}

// TestRouteTableMatchesRouter: everything the router serves comes from
// the table (so the matrix above sees it).
func TestRouteTableMatchesRouter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	eng, err := api.NewEngine(api.EngineOptions{})
	require.NoError(t, err)
	e.server.Mount(eng)
	table := map[string]bool{}
	for _, rt := range e.server.Routes() {
		table[rt.Method+" "+rt.Path] = true
	}
	for _, ri := range eng.Routes() {
		require.True(t, table[ri.Method+" "+ri.Path], "%s %s is served but not in the route table", ri.Method, ri.Path)
	}
	require.Len(t, eng.Routes(), len(table))
}
