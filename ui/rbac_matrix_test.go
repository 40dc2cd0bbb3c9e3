package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// uiSnapshot summarises everything a UI form could change.
func uiSnapshot(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	all := store.Page{Limit: 1000}
	users, nu, err := e.store.ListUsers(ctx, store.UserFilter{Page: all})
	require.NoError(t, err)
	teams, nt, err := e.store.ListTeams(ctx, store.TeamFilter{Page: all})
	require.NoError(t, err)
	keys, nk, err := e.store.ListKeys(ctx, store.KeyFilter{Page: all})
	require.NoError(t, err)
	_, ni, err := e.store.ListInvitations(ctx, store.InvitationFilter{Page: all})
	require.NoError(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "users=%d teams=%d keys=%d invitations=%d\n", nu, nt, nk, ni)
	for _, u := range users {
		fmt.Fprintf(&b, "u %s %s %s %v %s\n", u.ID, u.Role, u.Email, u.Disabled, u.PasswordHash)
	}
	for _, tm := range teams {
		ms, err := e.store.ListMembershipsByTeam(ctx, tm.ID)
		require.NoError(t, err)
		fmt.Fprintf(&b, "t %s %s %d\n", tm.ID, tm.Alias, len(ms))
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "k %s %s %v\n", k.Hash, k.UserID, k.Blocked)
	}
	return b.String()
}

// TestUIRoleMatrix walks the UI's route table with a signed-in browser of
// every role, as TestRBACMatrix walks the API's: wherever the table says
// no, the answer is 403 and nothing changed, even with a valid CSRF token
// and a form aimed at another user's data; wherever it says yes, pages
// open.
func TestUIRoleMatrix(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	victim, role := "victim@example.com", string(rbac.RoleInternalUser)
	v, err := e.app.Service().CreateUser(ctx, master(), service.NewUser{UserEmail: &victim, UserRole: &role})
	require.NoError(t, err)
	teamID := "team-victim"
	_, err = e.app.Service().CreateTeam(ctx, master(), service.NewTeam{TeamID: &teamID})
	require.NoError(t, err)
	keys, _, err := e.store.ListKeys(ctx, store.KeyFilter{UserID: v.User.ID})
	require.NoError(t, err)
	victimKey := ""
	if len(keys) > 0 {
		victimKey = keys[0].Hash
	}

	browsers := map[rbac.Role]*browser{}
	ownKey := map[rbac.Role]string{} // a key of each actor, for the pages that edit one
	for _, r := range rbac.Roles() {
		email := "actor-" + string(r) + "@example.com"
		e.user(email, r)
		b := e.browser()
		b.login(email, "password-of-"+email)
		browsers[r] = b
		u, err := e.app.Service().GetUserByEmail(ctx, master(), email)
		require.NoError(t, err)
		ik, err := e.app.Service().GenerateKey(ctx, master(), service.KeyRequest{UserID: &u.ID})
		require.NoError(t, err)
		ownKey[r] = ik.Key.Hash
	}
	// Pages about one record are opened for a record the role may see.
	query := func(path string, r rbac.Role) string {
		switch path {
		case "/users/edit":
			return "?id=" + v.User.ID
		case "/teams/edit":
			return "?id=" + teamID
		case "/keys/edit":
			return "?key=" + ownKey[r]
		}
		return ""
	}
	checked, opened := 0, 0
	for _, rt := range e.app.UI().Routes() {
		if rt.Public {
			continue
		}
		require.NotEmpty(t, rt.Perm, "%s %s has no permission", rt.Method, rt.Path)
		for _, r := range rbac.Roles() {
			b := browsers[r]
			allowed := rbac.Can(r, rt.Perm)
			if allowed && rt.Method != http.MethodGet {
				continue // allowed writes are the handlers' tests' business
			}
			before := uiSnapshot(t, e)
			var p page
			if rt.Method == http.MethodGet {
				p = b.get("/ui" + rt.Path + query(rt.Path, r))
			} else {
				p = b.post("/ui"+rt.Path, url.Values{"csrf_token": {b.cookie("keygate_csrf")}, "user_id": {v.User.ID},
					"team_id": {teamID}, "key": {victimKey}, "email": {"sneaky@example.com"}, "role": {"proxy_admin"},
					"alias": {"sneaky"}, "current": {"password-of-actor-" + string(r) + "@example.com"},
					"password": {"new-password-123"}, "confirm": {"new-password-123"}, "member_role": {"admin"}})
			}
			name := fmt.Sprintf("%s /ui%s as %s", rt.Method, rt.Path, r)
			if !allowed {
				require.Equal(t, http.StatusForbidden, p.Status, name)
				require.Equal(t, before, uiSnapshot(t, e), "%s changed the database", name)
				checked++
				continue
			}
			require.Equal(t, http.StatusOK, p.Status, name)
			opened++
		}
	}
	require.Greater(t, checked, 25, "the matrix must exercise forbidden calls")
	require.Greater(t, opened, 15)
}
