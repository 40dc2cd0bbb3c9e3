package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
)

// TestKeyAliasUniquePerOwner: a key name is unique per owner (issue 16):
// another user's "laptop" neither blocks nor shows through; the same
// owner's duplicate keeps LiteLLM's 409; deleting by alias takes the
// caller's own key, and an admin's ambiguous alias is refused.
func TestKeyAliasUniquePerOwner(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		ann := e.userWithRole("ann", rbac.RoleInternalUser)
		bo := e.userWithRole("bo", rbac.RoleInternalUser)
		gen := func(key string) response {
			return e.do(http.MethodPost, "/key/generate", key, map[string]any{"key_alias": "laptop"})
		}
		r := gen(ann)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		annKey := r.JSON(t)["key"].(string)
		r = gen(bo)
		require.Equal(t, http.StatusOK, r.Code, "another owner's name does not matter: %s", r.Body.String())
		boKey := r.JSON(t)["key"].(string)
		dup := gen(bo)
		requireError(t, dup, http.StatusConflict)
		require.Contains(t, dup.Body.String(), "A key with this key_alias (or value) already exists.")

		// An admin naming the alias two owners use is told to be precise.
		requireError(t, e.do(http.MethodPost, "/key/delete", masterKey, map[string]any{"key_aliases": []string{"laptop"}}), http.StatusConflict)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", annKey, nil).Code)

		// bo deletes their own "laptop"; ann's stays.
		r = e.do(http.MethodPost, "/key/delete", bo, map[string]any{"key_aliases": []string{"laptop"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireError(t, e.do(http.MethodGet, "/auth/verify", boKey, nil), http.StatusUnauthorized)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", annKey, nil).Code)
		// Now the name is unambiguous, but not bo's: refused, nothing
		// deleted, and answered as a name nobody uses is (a 403 told bo
		// that someone has a key of that name).
		others := e.do(http.MethodPost, "/key/delete", bo, map[string]any{"key_aliases": []string{"laptop"}})
		requireError(t, others, http.StatusNotFound)
		nobodys := e.do(http.MethodPost, "/key/delete", bo, map[string]any{"key_aliases": []string{"lapt0p"}})
		requireError(t, nobodys, http.StatusNotFound)
		require.Equal(t, strings.ReplaceAll(nobodys.Body.String(), "lapt0p", "laptop"), others.Body.String())
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", annKey, nil).Code)
		r = e.do(http.MethodPost, "/key/delete", masterKey, map[string]any{"key_aliases": []string{"laptop"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireError(t, e.do(http.MethodGet, "/auth/verify", annKey, nil), http.StatusUnauthorized)
	})
}
