package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/store"
)

// auditSince returns the events appended after the first n.
func auditSince(t *testing.T, e *testEnv, n int64) []store.AuditEvent {
	t.Helper()
	rows, _, err := e.store.ListAudit(t.Context(), store.AuditFilter{Page: store.Page{Offset: int(n), Limit: 1000}})
	require.NoError(t, err)
	return rows
}

func auditCount(t *testing.T, e *testEnv) int64 {
	t.Helper()
	_, n, err := e.store.ListAudit(t.Context(), store.AuditFilter{Page: store.Page{Limit: 1}})
	require.NoError(t, err)
	return n
}

// TestAuditTrail: each audited action writes exactly one event with the
// right action, actor and target; a failed change writes none; no event
// holds a password, key or token.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		var secrets []string
		step := func(action, actor, target string, fn func()) {
			t.Helper()
			n := auditCount(t, e)
			fn()
			got := auditSince(t, e, n)
			require.Len(t, got, 1, "%s must write exactly one event, got %+v", action, got)
			require.Equal(t, action, got[0].Action)
			require.Equal(t, actor, got[0].ActorID, action)
			if target != "" {
				require.Equal(t, target, got[0].TargetID, action)
			}
			require.NotEmpty(t, got[0].RequestID, action)
		}
		none := func(what string, fn func()) {
			t.Helper()
			n := auditCount(t, e)
			fn()
			require.Empty(t, auditSince(t, e, n), "%s failed and must write no event", what)
		}
		step("user.created", "default_user_id", "aud", func() {
			e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "aud", "user_email": "aud@example.com", "user_role": "internal_user", "auto_create_key": false})
		})
		none("duplicate user", func() { e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "aud"}) })
		step("user.role_changed", "default_user_id", "aud", func() {
			e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "aud", "user_role": "internal_user_viewer"})
		})
		step("user.updated", "default_user_id", "aud", func() {
			e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "aud", "user_alias": "Aud", "password": "audited password"})
		})
		secrets = append(secrets, "audited password")
		step("user.role_changed", "default_user_id", "aud", func() {
			e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "aud", "user_role": "internal_user"})
		})

		var key string
		step("key.created", "default_user_id", "", func() {
			r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "aud", "key_alias": "a1"})
			key = r.JSON(t)["key"].(string)
		})
		secrets = append(secrets, key)
		none("forbidden key write", func() { e.do(http.MethodPost, "/key/generate", "sk-not-a-real-key-000000", map[string]any{}) })
		step("key.updated", "default_user_id", apikey.Hash(key), func() {
			e.do(http.MethodPost, "/key/update", masterKey, map[string]any{"key": key, "max_budget": 3})
		})
		step("key.blocked", "default_user_id", apikey.Hash(key), func() { e.do(http.MethodPost, "/key/block", masterKey, map[string]any{"key": key}) })
		step("key.unblocked", "default_user_id", apikey.Hash(key), func() { e.do(http.MethodPost, "/key/unblock", masterKey, map[string]any{"key": key}) })
		var key2 string
		step("key.regenerated", "default_user_id", "", func() {
			key2 = e.do(http.MethodPost, "/key/regenerate", masterKey, map[string]any{"key": key}).JSON(t)["key"].(string)
		})
		secrets = append(secrets, key2)
		step("key.deleted", "default_user_id", apikey.Hash(key2), func() { e.do(http.MethodPost, "/key/delete", masterKey, map[string]any{"keys": []string{key2}}) })

		var inv string
		step("invitation.created", "default_user_id", "aud", func() {
			inv = invitationID(t, e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "aud"}).JSON(t)["invitation_link"].(string))
		})
		secrets = append(secrets, inv)
		// claiming signs the user in: one consumption, then one login
		n := auditCount(t, e)
		r := e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": inv, "password": "claimed password"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		got := auditSince(t, e, n)
		require.Len(t, got, 2)
		require.Equal(t, []string{"invitation.consumed", "login.succeeded"}, []string{got[0].Action, got[1].Action})
		require.Equal(t, "aud", got[0].TargetID)
		secrets = append(secrets, "claimed password")
		step("login.failed", "aud", "aud", func() { e.login("aud@example.com", "wrong password") })
		var tok string
		step("login.succeeded", "aud", "", func() {
			r, _ := e.login("aud@example.com", "claimed password")
			tok = r.JSON(t)["token"].(string)
		})
		secrets = append(secrets, tok)
		step("logout", "aud", "", func() { e.do(http.MethodPost, "/session/logout", tok, nil) })
		inv2 := invitationID(t, e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "aud"}).JSON(t)["invitation_link"].(string))
		step("invitation.deleted", "default_user_id", "aud", func() { e.do(http.MethodPost, "/invitation/delete", masterKey, map[string]any{"invitation_id": inv2}) })
		step("user.deleted", "default_user_id", "aud", func() { e.do(http.MethodPost, "/user/delete", masterKey, map[string]any{"user_ids": []string{"aud"}}) })

		// no event carries a secret
		r = e.do(http.MethodGet, "/audit?page_size=100", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		all, err := json.Marshal(auditSince(t, e, 0))
		require.NoError(t, err)
		for _, s := range append(secrets, masterKey, "argon2id", testSecret) {
			require.False(t, strings.Contains(string(all), s) || strings.Contains(r.Body.String(), s), "the audit log contains a secret")
		}
		// filters, and only admins and admin viewers may read it
		r = e.do(http.MethodGet, "/audit?action=key.blocked", masterKey, nil)
		require.EqualValues(t, 1, r.JSON(t)["total"])
		viewer := e.userWithRole("auditor", "proxy_admin_viewer")
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/audit", viewer, nil).Code)
		user := e.userWithRole("plain", "internal_user")
		requireError(t, e.do(http.MethodGet, "/audit", user, nil), http.StatusForbidden)
	})
}
