package api_test

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/app"
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

// TestMasterKeyIsNoAPIKey: a custom key (or regenerated value) equal to
// the master key is refused and stores nothing: the row would show the
// master key's hash in a user's key list (an outside test made one).
func TestMasterKeyIsNoAPIKey(t *testing.T) {
	t.Parallel()
	// The tests' usual master key is too short to pass as a custom key
	// anyway; this one is long enough.
	long := "sk-master-long-enough-to-be-a-key-0123"
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.MasterKeyHash = sha256.Sum256([]byte(long)) })
	e.mustOK(e.do(http.MethodPost, "/user/new", long, map[string]any{"user_id": "ann", "user_role": "internal_user"}))
	requireError(t, e.do(http.MethodPost, "/key/generate", long, map[string]any{"key": long, "user_id": "ann"}), http.StatusBadRequest)
	r := e.do(http.MethodPost, "/key/generate", long, map[string]any{"user_id": "ann"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	k := r.JSON(t)["key"].(string)
	requireError(t, e.do(http.MethodPost, "/key/regenerate", long, map[string]any{"key": k, "new_key": long}), http.StatusBadRequest)
	r = e.do(http.MethodGet, "/key/list?user_id=ann", long, nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.NotContains(t, r.Body.String(), apikey.Hash(long), "no key row holds the master key")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", k, nil).Code, "the refused regenerate left the key alone")
}
