package scim_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func (e *env) userWithRole(id, role string) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": id, "user_email": id + "@example.com", "user_role": role})
	require.Equal(e.t, http.StatusOK, r.Code, r.Body.String())
	return r.JSON(e.t)["key"].(string)
}

// TestOnlySCIMTokensAndTheMasterKeyProvision: a person's credential never
// reaches /scim/v2, not even a proxy admin's; refusals are SCIM errors and
// change nothing.
func TestOnlySCIMTokensAndTheMasterKeyProvision(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		admin := e.userWithRole("admin", "proxy_admin")
		viewer := e.userWithRole("viewer", "proxy_admin_viewer")
		internal := e.userWithRole("internal", "internal_user")
		// A key the admin gives type scim but also an owner cannot be made,
		// and turning an owned key into a scim key does not make it one.
		r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"key_type": "scim", "user_id": "internal"})
		require.Equal(t, http.StatusBadRequest, r.Code, r.Body.String())
		owned := e.userKey("internal")
		r = e.do(http.MethodPost, "/key/update", masterKey, map[string]any{"key": owned, "key_type": "scim"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())

		before := e.snapshot()
		for name, cred := range map[string]string{"proxy_admin's own key": admin, "proxy_admin_viewer": viewer,
			"internal_user": internal, "an owned key of type scim": owned} {
			for _, call := range [][2]string{{http.MethodGet, "/scim/v2/Users"}, {http.MethodPost, "/scim/v2/Users"}} {
				r := e.do(call[0], call[1], cred, user("intruder@example.com", nil))
				requireSCIMError(t, r, http.StatusForbidden, "")
				require.Contains(t, r.JSON(t)["detail"], "requires scim", name)
			}
		}
		r = e.do(http.MethodGet, "/scim/v2/Users", "", nil)
		requireSCIMError(t, r, http.StatusUnauthorized, "")
		require.Equal(t, `Bearer realm="keygate-scim"`, r.Hdr.Get("WWW-Authenticate"))
		requireSCIMError(t, e.do(http.MethodGet, "/scim/v2/Users", "sk-not-a-real-key-0000000000", nil), http.StatusUnauthorized, "")
		require.Equal(t, before, e.snapshot(), "refused calls changed nothing")

		// The master key and the scim token are let in.
		e.ok(e.do(http.MethodGet, "/scim/v2/Users", masterKey, nil), http.StatusOK)
		e.ok(e.scim(http.MethodGet, "/Users", nil), http.StatusOK)
	})
}

// TestSCIMTokenCallsNothingElse: a scim token is refused by the management
// API, by /key/info and by forward auth (it is no LLM credential).
func TestSCIMTokenCallsNothingElse(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		for _, call := range [][2]string{{http.MethodGet, "/user/list"}, {http.MethodGet, "/key/info"}, {http.MethodPost, "/user/new"},
			{http.MethodGet, "/audit"}, {http.MethodPost, "/key/generate"}} {
			r := e.do(call[0], call[1], e.token, map[string]any{"user_id": "x"})
			require.Equal(t, http.StatusForbidden, r.Code, "%s %s: %s", call[0], call[1], r.Body.String())
			require.Contains(t, r.Body.String(), `"error"`, "LiteLLM's error body outside /scim/v2")
		}
		r := e.do(http.MethodGet, "/auth/verify", e.token, nil)
		require.Equal(t, http.StatusForbidden, r.Code, r.Body.String())
		require.Contains(t, r.Body.String(), "SCIM")
	})
}

// TestOnlyAdminsMakeSCIMTokens: an internal user cannot mint a scim key
// for themselves, by generate or by update.
func TestOnlyAdminsMakeSCIMTokens(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		internal := e.userWithRole("internal", "internal_user")
		r := e.do(http.MethodPost, "/key/generate", internal, map[string]any{"key_type": "scim"})
		require.Equal(t, http.StatusForbidden, r.Code, r.Body.String())
		own := e.userKey("internal")
		r = e.do(http.MethodPost, "/key/update", internal, map[string]any{"key": own, "key_type": "scim"})
		require.Equal(t, http.StatusForbidden, r.Code, r.Body.String())
	})
}

// TestBlockedOrDeletedSCIMTokenIsRefused: revoking the token ends the
// IdP's access at once.
func TestBlockedOrDeletedSCIMTokenIsRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		e.ok(e.scim(http.MethodGet, "/Users", nil), http.StatusOK)
		r := e.do(http.MethodPost, "/key/block", masterKey, map[string]any{"key": e.token})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireSCIMError(t, e.scim(http.MethodGet, "/Users", nil), http.StatusUnauthorized, "")
		r = e.do(http.MethodPost, "/key/unblock", masterKey, map[string]any{"key": e.token})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		e.ok(e.scim(http.MethodGet, "/Users", nil), http.StatusOK)
		r = e.do(http.MethodPost, "/key/delete", masterKey, map[string]any{"keys": []string{e.token}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireSCIMError(t, e.scim(http.MethodGet, "/Users", nil), http.StatusUnauthorized, "")
	})
}

// TestConcurrentCreatesOfOneUserName: of a burst of creates for the same
// userName (IdP retries), exactly one wins and the rest are 409.
func TestConcurrentCreatesOfOneUserName(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const n = 12
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := "burst@example.com"
				if i%2 == 1 {
					name = strings.ToUpper(name)
				}
				codes[i] = e.scim(http.MethodPost, "/Users", user(name, nil)).Code
			}()
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
			default:
				t.Fatalf("unexpected status %d in %v", c, codes)
			}
		}
		require.Equal(t, 1, created, "%v", codes)
	})
}

// TestHandMadeTeamsAreInvisibleToSCIM: SCIM manages only the groups it
// created; a team made in Keygate cannot be read, changed or deleted
// through it, nor shadowed by a group of the same name.
func TestHandMadeTeamsAreInvisibleToSCIM(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		r := e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "finance", "team_alias": "Finance"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		l := e.ok(e.scim(http.MethodGet, "/Groups", nil), http.StatusOK)
		require.EqualValues(t, 0, l["totalResults"])
		before := e.snapshot()
		requireSCIMError(t, e.scim(http.MethodGet, "/Groups/finance", nil), http.StatusNotFound, "")
		requireSCIMError(t, e.scim(http.MethodPatch, "/Groups/finance", patch(map[string]any{"op": "replace", "path": "displayName", "value": "x"})),
			http.StatusNotFound, "")
		requireSCIMError(t, e.scim(http.MethodDelete, "/Groups/finance", nil), http.StatusNotFound, "")
		requireSCIMError(t, e.scim(http.MethodPost, "/Groups", group("finance")), http.StatusConflict, "uniqueness")
		require.Equal(t, before, e.snapshot())
	})
}

// TestSCIMCannotTakeOverAccountsItDidNotProvision: SCIM may adopt an
// existing account (found by userName, then updated), but not change the
// e-mail that identifies it — a password reset to a new address would hand
// the account over — and it may not touch a proxy_admin it did not
// provision at all (SSO never links those either), nor change its role
// through groups.
func TestSCIMCannotTakeOverAccountsItDidNotProvision(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		e.userWithRole("boss", "proxy_admin")
		e.userWithRole("dev", "internal_user")

		// Adopting an existing account keeps its e-mail.
		found := e.ok(e.scim(http.MethodGet, "/Users?"+filterQ(`userName eq "dev@example.com"`), nil), http.StatusOK)
		require.EqualValues(t, 1, found["totalResults"])
		r := e.ok(e.scim(http.MethodPut, "/Users/dev", user("DEV@example.com", map[string]any{"displayName": "Dev"})), http.StatusOK)
		require.Equal(t, "Dev", r["displayName"])
		before := e.snapshot()
		requireSCIMError(t, e.scim(http.MethodPatch, "/Users/dev", patch(map[string]any{"op": "replace", "path": "userName",
			"value": "attacker@evil.example"})), http.StatusBadRequest, "mutability")
		require.Equal(t, before, e.snapshot())

		// A proxy_admin made in Keygate is out of SCIM's reach.
		before = e.snapshot()
		for _, req := range []struct {
			method string
			body   any
		}{
			{http.MethodPut, user("boss@example.com", map[string]any{"active": false})},
			{http.MethodPatch, patch(map[string]any{"op": "replace", "path": "userName", "value": "attacker@evil.example"})},
			{http.MethodPatch, patch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})},
			{http.MethodDelete, nil},
		} {
			requireSCIMError(t, e.scim(req.method, "/Users/boss", req.body), http.StatusForbidden, "")
		}
		require.Equal(t, before, e.snapshot())

		// Group membership does not change the role of an account SCIM
		// never provisioned (llm-users maps to internal_user).
		e.ok(e.scim(http.MethodPost, "/Groups", group("llm-users", "boss")), http.StatusCreated)
		u, err := e.store.GetUser(t.Context(), "boss")
		require.NoError(t, err)
		require.Equal(t, "proxy_admin", u.Role)
	})
}
