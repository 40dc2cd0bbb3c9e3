package scim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func urlEncode(s string) string { return url.QueryEscape(s) }

// TestLifecycle walks a joiner, mover and leaver through SCIM on both
// databases: create → list with filter → PUT → PATCH → group with members
// → role from group → deactivate (keys refused) → reactivate (keys work)
// → delete.
func TestLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		// create
		created := e.ok(e.scim(http.MethodPost, "/Users", user("Ada@Example.com", map[string]any{
			"externalId": "00u-ada", "name": map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
			"displayName": "Ada Lovelace", "emails": []any{map[string]any{"value": "ada@example.com", "type": "work", "primary": true}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"employeeNumber": "0815", "department": "R&D"},
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		})), http.StatusCreated)
		id := created["id"].(string)
		require.Equal(t, "Ada@Example.com", created["userName"])
		require.Equal(t, true, created["active"])
		require.Equal(t, "https://keygate.example/scim/v2/Users/"+id, created["meta"].(map[string]any)["location"])
		u, err := e.store.GetUser(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, "internal_user_viewer", u.Role, "provisioned users start least privileged")
		require.Equal(t, "Ada Lovelace", u.Alias)
		require.Equal(t, "0815", u.Directory.EmployeeNumber)
		require.Equal(t, "R&D", u.Directory.Department)

		// read it back
		got := e.ok(e.scim(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
		require.Equal(t, "Lovelace", got["name"].(map[string]any)["familyName"])
		require.Equal(t, "0815", got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["employeeNumber"])

		// list with filter (userName compares case-insensitively)
		list := e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`userName eq "ada@example.COM"`), nil), http.StatusOK)
		require.EqualValues(t, 1, list["totalResults"])
		require.EqualValues(t, 1, list["startIndex"])
		require.EqualValues(t, 1, list["itemsPerPage"])
		require.Equal(t, id, list["Resources"].([]any)[0].(map[string]any)["id"])
		list = e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`externalId eq "00u-ada" and active eq true`), nil), http.StatusOK)
		require.EqualValues(t, 1, list["totalResults"])

		// PUT replaces
		put := e.ok(e.scim(http.MethodPut, "/Users/"+id, user("ada@example.com", map[string]any{"externalId": "00u-ada",
			"name": map[string]any{"givenName": "Ada", "familyName": "King"}, "displayName": "Ada King"})), http.StatusOK)
		require.Equal(t, "Ada King", put["displayName"])
		require.NotContains(t, put, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "PUT replaces: the omitted extension is gone")

		// PATCH edits
		p := e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(
			map[string]any{"op": "replace", "path": "name.familyName", "value": "Lovelace"},
			map[string]any{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Math"})), http.StatusOK)
		require.Equal(t, "Lovelace", p["name"].(map[string]any)["familyName"])
		require.Equal(t, "Math", p["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["department"])

		// The user's key works; keep one for the deactivation check.
		key := e.userKey(id)
		require.Equal(t, http.StatusOK, e.verify(key))

		// group with members, role from group
		g := e.ok(e.scim(http.MethodPost, "/Groups", group("llm-users", id)), http.StatusCreated)
		gid := g["id"].(string)
		require.Len(t, g["members"], 1)
		u, err = e.store.GetUser(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, "internal_user", u.Role, "llm-users maps to internal_user")
		got = e.ok(e.scim(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
		require.Equal(t, gid, got["groups"].([]any)[0].(map[string]any)["value"])
		admins := e.ok(e.scim(http.MethodPost, "/Groups", group("llm-admins")), http.StatusCreated)
		e.ok(e.scim(http.MethodPatch, "/Groups/"+admins["id"].(string), patch(map[string]any{"op": "add", "path": "members",
			"value": []any{map[string]any{"value": id}}})), http.StatusOK)
		u, _ = e.store.GetUser(t.Context(), id)
		require.Equal(t, "proxy_admin", u.Role, "the most privileged mapped group wins")
		e.ok(e.scim(http.MethodPatch, "/Groups/"+admins["id"].(string), patch(map[string]any{"op": "remove",
			"path": `members[value eq "` + id + `"]`})), http.StatusOK)
		u, _ = e.store.GetUser(t.Context(), id)
		require.Equal(t, "internal_user", u.Role, "leaving the admin group downgrades")
		require.Equal(t, http.StatusOK, e.verify(key))

		// deactivate: the key is refused at once, memberships are kept
		d := e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})), http.StatusOK)
		require.Equal(t, false, d["active"])
		require.Equal(t, http.StatusUnauthorized, e.verify(key))
		ms, err := e.store.ListMembershipsByUser(t.Context(), id)
		require.NoError(t, err)
		require.Len(t, ms, 1, "team memberships are kept for audit")
		list = e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`active eq false`), nil), http.StatusOK)
		require.EqualValues(t, 1, list["totalResults"])

		// reactivate: the same key works again
		e.ok(e.scim(http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "replace", "path": "active", "value": true})), http.StatusOK)
		require.Equal(t, http.StatusOK, e.verify(key))

		// delete: gone, key refused, spend history rows untouched
		require.NoError(t, e.store.RecordSpend(t.Context(), store.SpendEntry{RequestID: "r1", KeyHash: sha256hex(key), UserID: id, Spend: 0.5,
			CreatedAt: u.CreatedAt}))
		e.ok(e.scim(http.MethodDelete, "/Users/"+id, nil), http.StatusNoContent)
		requireSCIMError(t, e.scim(http.MethodGet, "/Users/"+id, nil), http.StatusNotFound, "")
		require.Equal(t, http.StatusUnauthorized, e.verify(key))
		spend, n, err := e.store.ListSpend(t.Context(), store.SpendFilter{UserID: id})
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "spend history survives the user")
		require.Equal(t, 0.5, spend[0].Spend)
		g = e.ok(e.scim(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK)
		require.Empty(t, g["members"])

		// delete the group
		e.ok(e.scim(http.MethodDelete, "/Groups/"+gid, nil), http.StatusNoContent)
		requireSCIMError(t, e.scim(http.MethodGet, "/Groups/"+gid, nil), http.StatusNotFound, "")

		// every change is in the audit log, made by the token
		events, _, err := e.store.ListAudit(t.Context(), store.AuditFilter{ActionPrefix: "scim.", Page: store.Page{Limit: 1000}})
		require.NoError(t, err)
		actions := map[string]bool{}
		for _, ev := range events {
			actions[ev.Action] = true
			require.Equal(t, "key:"+sha256hex(e.token), ev.ActorID, ev.Action)
		}
		for _, a := range []string{"scim.user.created", "scim.user.updated", "scim.user.deactivated", "scim.user.reactivated",
			"scim.user.deleted", "scim.user.role_changed", "scim.group.created", "scim.group.member_added", "scim.group.member_removed",
			"scim.group.deleted"} {
			require.True(t, actions[a], "audit has %s", a)
		}
	})
}
