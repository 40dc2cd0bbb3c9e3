package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/rbac"
)

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		userKey := e.userWithRole("kim", rbac.RoleInternalUser)
		require.Regexp(t, apikey.Regex, userKey)

		// generate without user_id: belongs to the caller
		r := e.do(http.MethodPost, "/key/generate", userKey, map[string]any{"key_alias": "laptop", "duration": "30d", "metadata": map[string]any{"env": "dev"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "no-store", r.Hdr.Get("Cache-Control"))
		k := r.JSON(t)
		raw := k["key"].(string)
		require.Regexp(t, apikey.Regex, raw)
		require.Equal(t, "kim", k["user_id"])
		require.Equal(t, apikey.Hash(raw), k["token"])
		require.Equal(t, "sk-..."+raw[len(raw)-4:], k["key_name"])
		require.NotNil(t, k["expires"])
		stored, err := e.store.GetKey(t.Context(), apikey.Hash(raw))
		require.NoError(t, err)
		require.NotContains(t, stored.KeyName+stored.Alias, raw, "the raw key is never stored")

		// duplicate alias → 409
		requireError(t, e.do(http.MethodPost, "/key/generate", userKey, map[string]any{"key_alias": "laptop"}), http.StatusConflict)

		// info: by raw key, by hash, and of the calling key itself
		for _, ref := range []string{raw, apikey.Hash(raw)} {
			r = e.do(http.MethodGet, "/key/info?key="+ref, userKey, nil)
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
			require.Equal(t, apikey.Hash(raw), r.JSON(t)["key"])
		}
		r = e.do(http.MethodGet, "/key/info", raw, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "laptop", r.JSON(t)["info"].(map[string]any)["key_alias"])
		require.NotContains(t, r.Body.String(), raw)

		// list: own keys only, hashes or full objects
		r = e.do(http.MethodGet, "/key/list", userKey, nil)
		require.Equal(t, http.StatusOK, r.Code)
		l := r.JSON(t)
		require.EqualValues(t, 2, l["total_count"])
		require.Contains(t, l["keys"], apikey.Hash(raw))
		r = e.do(http.MethodGet, "/key/list?return_full_object=true&size=1&page=2", userKey, nil)
		l = r.JSON(t)
		require.Len(t, l["keys"], 1)
		require.EqualValues(t, 2, l["total_pages"])
		require.IsType(t, map[string]any{}, l["keys"].([]any)[0])

		// update
		r = e.do(http.MethodPost, "/key/update", userKey, map[string]any{"key": raw, "key_alias": "laptop-2", "max_budget": 5})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "laptop-2", r.JSON(t)["key_alias"])

		// regenerate: new value works, old one stops at once, record carries over
		r = e.do(http.MethodPost, "/key/"+raw+"/regenerate", userKey, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		raw2 := r.JSON(t)["key"].(string)
		require.NotEqual(t, raw, raw2)
		require.Equal(t, "laptop-2", r.JSON(t)["key_alias"])
		requireError(t, e.do(http.MethodGet, "/auth/verify", raw, nil), http.StatusUnauthorized)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", raw2, nil).Code)
		r = e.do(http.MethodPost, "/key/regenerate", userKey, map[string]any{"key": raw2})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		raw3 := r.JSON(t)["key"].(string)

		// block (admin only) and unblock
		requireError(t, e.do(http.MethodPost, "/key/block", userKey, map[string]any{"key": raw3}), http.StatusForbidden)
		require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/key/block", masterKey, map[string]any{"key": raw3}).Code)
		requireError(t, e.do(http.MethodGet, "/auth/verify", raw3, nil), http.StatusUnauthorized)
		require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/key/unblock", masterKey, map[string]any{"key": apikey.Hash(raw3)}).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", raw3, nil).Code)

		// delete by alias; unknown → 404 and nothing deleted
		requireError(t, e.do(http.MethodPost, "/key/delete", userKey, map[string]any{"keys": []string{raw3, "sk-doesnotexist-000000000"}}), http.StatusNotFound)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", raw3, nil).Code)
		r = e.do(http.MethodPost, "/key/delete", userKey, map[string]any{"key_aliases": []string{"laptop-2"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, []any{"laptop-2"}, r.JSON(t)["deleted_keys"])
		requireError(t, e.do(http.MethodGet, "/auth/verify", raw3, nil), http.StatusUnauthorized)
	})
}

// TestKeyOwnership is the negative side of the key rules: everything an
// internal user or a viewer may not do with keys is refused with 403 and
// changes nothing.
func TestKeyOwnership(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "blue"})
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "red", "models": []string{"gpt-4o-mini"}})
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "ivy", "user_role": "internal_user",
			"models": []string{"gpt-4o", "gpt-4o-mini"}, "max_budget": 10, "tpm_limit": 1000, "teams": []string{"red"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		ivy := r.JSON(t)["key"].(string)
		other := e.userWithRole("oscar", rbac.RoleInternalUser)
		viewer := e.userWithRole("val", rbac.RoleInternalUserViewer)
		adminViewer := e.userWithRole("ava", rbac.RoleProxyAdminViewer)
		r = e.do(http.MethodPost, "/key/generate", other, map[string]any{"key_alias": "oscars"})
		require.Equal(t, http.StatusOK, r.Code)
		oscars := r.JSON(t)["key"].(string)

		before := snapshot(t, e)
		forbidden := []struct {
			name, method, path, token string
			body                      any
		}{
			{"viewer creates", http.MethodPost, "/key/generate", viewer, map[string]any{}},
			{"admin viewer creates", http.MethodPost, "/key/generate", adminViewer, map[string]any{}},
			{"key for another user", http.MethodPost, "/key/generate", ivy, map[string]any{"user_id": "oscar"}},
			{"team not a member of", http.MethodPost, "/key/generate", ivy, map[string]any{"team_id": "blue"}},
			{"unknown team", http.MethodPost, "/key/generate", ivy, map[string]any{"team_id": "nope"}},
			{"model beyond own", http.MethodPost, "/key/generate", ivy, map[string]any{"models": []string{"gpt-5"}}},
			{"all models, wider than own", http.MethodPost, "/key/generate", ivy, map[string]any{"key_alias": "wide", "models": []string{"*"}}},
			{"team model beyond team's", http.MethodPost, "/key/generate", ivy, map[string]any{"team_id": "red", "models": []string{"gpt-4o"}}},
			{"budget beyond own", http.MethodPost, "/key/generate", ivy, map[string]any{"models": []string{"gpt-4o"}, "max_budget": 11}},
			{"tpm beyond own", http.MethodPost, "/key/generate", ivy, map[string]any{"models": []string{"gpt-4o"}, "tpm_limit": 5000}},
			{"choose key value", http.MethodPost, "/key/generate", ivy, map[string]any{"models": []string{"gpt-4o"}, "key": "sk-chosen-by-user-123456"}},
			{"service key", http.MethodPost, "/key/generate", ivy, map[string]any{"models": []string{"gpt-4o"}, "key_type": "service"}},
			{"read other's key", http.MethodGet, "/key/info?key=" + oscars, ivy, nil},
			{"update other's key", http.MethodPost, "/key/update", ivy, map[string]any{"key": oscars, "key_alias": "mine"}},
			{"regenerate other's key", http.MethodPost, "/key/regenerate", ivy, map[string]any{"key": oscars}},
			{"regenerate other's key (path)", http.MethodPost, "/key/" + oscars + "/regenerate", ivy, nil},
			{"delete other's key", http.MethodPost, "/key/delete", ivy, map[string]any{"keys": []string{oscars}}},
			{"delete mixed (all-or-nothing)", http.MethodPost, "/key/delete", ivy, map[string]any{"keys": []string{ivy, oscars}}},
			{"block", http.MethodPost, "/key/block", ivy, map[string]any{"key": oscars}},
			{"unblock", http.MethodPost, "/key/unblock", ivy, map[string]any{"key": ivy}},
			{"widen own key", http.MethodPost, "/key/update", ivy, map[string]any{"key": ivy, "max_budget": 50}},
			{"give own key away", http.MethodPost, "/key/update", ivy, map[string]any{"key": ivy, "user_id": "oscar"}},
			{"block own key", http.MethodPost, "/key/update", ivy, map[string]any{"key": ivy, "blocked": true}},
			{"list other's keys", http.MethodGet, "/key/list?user_id=oscar", ivy, nil},
			{"viewer updates own", http.MethodPost, "/key/update", viewer, map[string]any{"key": viewer, "key_alias": "x"}},
			{"viewer deletes own", http.MethodPost, "/key/delete", viewer, map[string]any{"keys": []string{viewer}}},
			{"admin viewer deletes", http.MethodPost, "/key/delete", adminViewer, map[string]any{"keys": []string{oscars}}},
			{"spend report by user", http.MethodPost, "/spend/report", ivy, map[string]any{"request_id": "r1", "api_key": ivy, "spend": 0}},
			{"spend of others", http.MethodGet, "/spend/logs?user_id=oscar", ivy, nil},
		}
		for _, c := range forbidden {
			r := e.do(c.method, c.path, c.token, c.body)
			require.Equal(t, http.StatusForbidden, r.Code, "%s: %s", c.name, r.Body.String())
			requireError(t, r, http.StatusForbidden)
		}
		require.Equal(t, before, snapshot(t, e), "a forbidden key operation changed the database")
		k, err := e.store.GetKey(t.Context(), apikey.Hash(oscars))
		require.NoError(t, err)
		require.Equal(t, "oscars", k.Alias)

		// what ivy may do: narrow keys, own team with team models
		r = e.do(http.MethodPost, "/key/generate", ivy, map[string]any{"models": []string{"gpt-4o"}, "max_budget": 2, "tpm_limit": 10})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		// a key without models inherits ivy's: it never allows more
		r = e.do(http.MethodPost, "/key/generate", ivy, map[string]any{"key_alias": "inherits"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		inherits := r.JSON(t)["key"].(string)
		chat := map[string]string{"Authorization": "Bearer " + inherits, "Content-Type": "application/json"}
		require.Equal(t, http.StatusOK, e.doHeaders(http.MethodPost, "/auth/verify", chat, `{"model":"gpt-4o"}`).Code)
		require.Equal(t, http.StatusForbidden, e.doHeaders(http.MethodPost, "/auth/verify", chat, `{"model":"gpt-5"}`).Code)
		r = e.do(http.MethodPost, "/key/generate", ivy, map[string]any{"team_id": "red", "models": []string{"gpt-4o-mini"}})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		// the admin may do what ivy may not (for a member of the team)
		e.do(http.MethodPost, "/team/member_add", masterKey, map[string]any{"team_id": "blue", "member": map[string]any{"user_id": "oscar"}})
		r = e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "oscar", "team_id": "blue", "max_budget": 1000})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		// admin viewer reads anyone's key
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/key/info?key="+oscars, adminViewer, nil).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/key/list?user_id=oscar", adminViewer, nil).Code)
	})
}

func TestOwnerlessAndTypedKeys(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"key_alias": "svc"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		ownerless := r.JSON(t)["key"].(string)
		require.Nil(t, r.JSON(t)["user_id"])
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", ownerless, nil).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/key/info", ownerless, nil).Code)
		for _, path := range []string{"/user/list", "/key/list", "/team/list", "/user/info?user_id=x", "/spend/logs"} {
			requireError(t, e.do(http.MethodGet, path, ownerless, nil), http.StatusForbidden)
		}
		requireError(t, e.do(http.MethodPost, "/key/generate", ownerless, map[string]any{}), http.StatusForbidden)

		// an admin's llm_api key cannot manage; a service key may report spend only
		e.userWithRole("root", rbac.RoleProxyAdmin)
		r = e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "root", "key_type": "llm_api"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		llm := r.JSON(t)["key"].(string)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", llm, nil).Code)
		requireError(t, e.do(http.MethodPost, "/user/new", llm, map[string]any{"user_id": "x"}), http.StatusForbidden)
		r = e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"key_type": "service"})
		svc := r.JSON(t)["key"].(string)
		r = e.do(http.MethodPost, "/spend/report", svc, map[string]any{"request_id": "req-1", "api_key": llm, "model": "gpt-4o", "spend": 0.25, "prompt_tokens": 10, "completion_tokens": 5})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireError(t, e.do(http.MethodGet, "/user/list", svc, nil), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"key_type": "superkey"}), http.StatusBadRequest)
	})
}

func TestVerify(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t", "models": []string{"gpt-4o", "gpt-4o-mini"}})
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "uma", "user_role": "internal_user", "teams": []string{"t"}, "auto_create_key": false})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.NotContains(t, r.JSON(t), "key")
		r = e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "uma", "team_id": "t", "key_alias": "uk", "models": []string{"gpt-4o"}, "max_budget": 1, "duration": "1h"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		key := r.JSON(t)["key"].(string)

		check := func(status int, hdr map[string]string, headersOrBody ...string) response {
			t.Helper()
			req := map[string]string{}
			for k, v := range hdr {
				req[k] = v
			}
			r := e.doHeaders(http.MethodGet, "/auth/verify", req, "")
			require.Equal(t, status, r.Code, r.Body.String())
			return r
		}
		r = check(200, map[string]string{"Authorization": "Bearer " + key, "X-Keygate-Model": "gpt-4o"})
		require.Equal(t, "uma", r.Hdr.Get("X-Keygate-User-Id"))
		require.Equal(t, "internal_user", r.Hdr.Get("X-Keygate-User-Role"))
		require.Equal(t, apikey.Hash(key), r.Hdr.Get("X-Keygate-Key-Id"))
		require.Equal(t, "t", r.Hdr.Get("X-Keygate-Team-Id"))
		require.Equal(t, "uk", r.Hdr.Get("X-Keygate-Key-Alias"))
		for _, h := range []string{"X-Api-Key", "Api-Key", "X-Litellm-Api-Key"} {
			check(200, map[string]string{h: key})
		}
		check(200, map[string]string{"Authorization": "Bearer " + masterKey})
		// model rules: key list, team list
		check(403, map[string]string{"Authorization": "Bearer " + key, "X-Keygate-Model": "gpt-4o-mini"})
		r = e.doHeaders(http.MethodPost, "/auth/verify", map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}, `{"model":"claude-3"}`)
		requireError(t, r, http.StatusForbidden)
		// missing / malformed / wrong checksum / not sk- / huge
		check(401, map[string]string{})
		check(401, map[string]string{"Authorization": "Bearer sk-kg-" + strings.Repeat("A", 28)})
		check(401, map[string]string{"Authorization": "Bearer not-a-key"})
		check(401, map[string]string{"Authorization": "Bearer sk-unknown-but-well-formed-key"})
		check(401, map[string]string{"Authorization": "Bearer sk-" + strings.Repeat("x", 9000)})
		r = e.doHeaders(http.MethodGet, "/auth/verify", map[string]string{"Authorization": "Bearer " + key[:len(key)-1] + flip(key[len(key)-1])}, "")
		requireError(t, r, http.StatusUnauthorized)
		// budget: spend reported by the admin blocks at the limit
		r = e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "a", "api_key": key, "model": "gpt-4o", "spend": 0.6})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		check(200, map[string]string{"Authorization": "Bearer " + key})
		e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "a", "api_key": key, "spend": 0.6})
		check(200, map[string]string{"Authorization": "Bearer " + key}) // duplicate request_id counted once
		e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "b", "api_key": apikey.Hash(key), "spend": 0.4})
		r = check(429, map[string]string{"Authorization": "Bearer " + key})
		require.Equal(t, "budget_exceeded", requireError(t, r, 429)["type"])
		// expiry
		e.do(http.MethodPost, "/key/update", masterKey, map[string]any{"key": key, "max_budget": 100})
		check(200, map[string]string{"Authorization": "Bearer " + key})
		e.now.Advance(2 * time.Hour)
		r = check(401, map[string]string{"Authorization": "Bearer " + key})
		require.Equal(t, "expired_key", requireError(t, r, 401)["type"])
		e.now.Advance(-2 * time.Hour)
		// owner blocked, owner deleted → 401
		e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "uma", "blocked": true})
		check(401, map[string]string{"Authorization": "Bearer " + key})
		e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "uma", "blocked": false})
		check(200, map[string]string{"Authorization": "Bearer " + key})
		e.do(http.MethodPost, "/user/delete", masterKey, map[string]any{"user_ids": []string{"uma"}})
		check(401, map[string]string{"Authorization": "Bearer " + key})
	})
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestSpendLogsScope(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		a := e.userWithRole("amy", rbac.RoleInternalUser)
		b := e.userWithRole("ben", rbac.RoleInternalUserViewer)
		for i, k := range []string{a, b, a} {
			r := e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "req-" + itoa(i), "api_key": k, "model": "m", "spend": 1})
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		}
		var rows []map[string]any
		// every filter a non-admin might try returns only their own rows
		for _, q := range []string{"", "?api_key=" + b, "?api_key=" + apikey.Hash(b), "?request_id=req-1", "?team_id=x", "?start_date=2000-01-01&end_date=2999-01-01"} {
			r := e.do(http.MethodGet, "/spend/logs"+q, a, nil)
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
			require.NoError(t, jsonUnmarshal(r.Body.Bytes(), &rows))
			for _, row := range rows {
				require.Equal(t, "amy", row["user"], "query %q leaked another user's spend", q)
			}
		}
		r := e.do(http.MethodGet, "/spend/logs", a, nil)
		require.NoError(t, jsonUnmarshal(r.Body.Bytes(), &rows))
		require.Len(t, rows, 2)
		r = e.do(http.MethodGet, "/spend/logs", masterKey, nil)
		require.NoError(t, jsonUnmarshal(r.Body.Bytes(), &rows))
		require.Len(t, rows, 3)
		// spend shows in /user/info and /key/info
		r = e.do(http.MethodGet, "/user/info", a, nil)
		require.EqualValues(t, 2, r.JSON(t)["user_info"].(map[string]any)["spend"])
		requireError(t, e.do(http.MethodGet, "/spend/logs?start_date=yesterday", a, nil), http.StatusBadRequest)
	})
}

// TestVerifyBodyModel: the model in a forwarded JSON body is enforced even
// when the body is large or cut off, and every method is accepted.
func TestVerifyBodyModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"models": []string{"gpt-4o"}})
	key := r.JSON(t)["key"].(string)
	hdr := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	pad := strings.Repeat("x", 70<<10)
	cases := map[string]struct {
		body string
		want int
	}{
		"allowed":                    {`{"model":"gpt-4o","messages":[]}`, 200},
		"denied":                     {`{"model":"o3","messages":[]}`, 403},
		"denied after a large field": {`{"messages":"` + pad + `","model":"o3"}`, 403},
		"allowed, model first, huge": {`{"model":"gpt-4o","messages":"` + pad + `"}`, 200},
		"model not a string":         {`{"model":7}`, 403},
		"not an object":              {`["model","gpt-4o"]`, 403},
		// POST /auth/verify without a route from the proxy is taken as a
		// model call; with no model named, a restricted key is refused.
		"no model field": {`{"input":"x"}`, 403},
	}
	for name, c := range cases {
		r := e.doHeaders(http.MethodPost, "/auth/verify", hdr, c.body)
		require.Equal(t, c.want, r.Code, "%s: %s", name, r.Body.String())
	}
	// Every method is answered; without a route from the proxy, methods
	// that may carry a body naming a model need one for a restricted key.
	for m, want := range map[string]int{http.MethodPut: 403, http.MethodDelete: 200, http.MethodPatch: 403, http.MethodHead: 200} {
		r := e.doHeaders(m, "/auth/verify", map[string]string{"Authorization": "Bearer " + key}, "")
		require.Equal(t, want, r.Code, m)
		r = e.doHeaders(m, "/auth/verify", map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}, `{"model":"gpt-4o"}`)
		require.Equal(t, http.StatusOK, r.Code, m)
	}
	// A GET on a route that takes its model in a body proves nothing
	// (auth_request asks with GET whatever the client sent): a restricted
	// key needs its model established there (TestVerifyMethodHeadersOnlyNarrow).
	r = e.doHeaders(http.MethodGet, "/auth/verify/v1/chat/completions", map[string]string{"Authorization": "Bearer " + key}, "")
	require.Equal(t, http.StatusForbidden, r.Code)
	r = e.doHeaders(http.MethodGet, "/auth/verify/v1/models", map[string]string{"Authorization": "Bearer " + key}, "")
	require.Equal(t, http.StatusOK, r.Code)
	// every identity header is present even when empty, so a client copy
	// can never survive a proxy that copies them
	for _, h := range []string{"X-Keygate-Team-Id", "X-Keygate-Key-Alias", "X-Keygate-User-Id"} {
		_, ok := r.Hdr[h]
		require.True(t, ok, h)
	}
}

// TestVerifyDatabaseDown: with the database gone, a cached answer still
// holds, an uncached key is 503 (never an allow), and readiness says so.
func TestVerifyDatabaseDown(t *testing.T) {
	t.Parallel()
	st := openStore(t, pgOptions(dbtestPostgres(t)))
	e := newEnv(t, st)
	cached := e.userWithRole("cache", "internal_user")
	other := e.userWithRole("cold", "internal_user")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", cached, nil).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/health/readiness", "", nil).Code)
	require.NoError(t, st.(interface{ Close() error }).Close())

	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", cached, nil).Code, "cached answer")
	r := e.do(http.MethodGet, "/auth/verify", other, nil)
	requireError(t, r, http.StatusServiceUnavailable)
	require.Equal(t, http.StatusServiceUnavailable, e.do(http.MethodGet, "/health/readiness", "", nil).Code)
	requireError(t, e.do(http.MethodGet, "/user/list", masterKey, nil), http.StatusServiceUnavailable)
}

// TestBudgetPeriodReset: a key blocked by its budget works again once its
// budget_duration has elapsed and the reset job has run.
func TestBudgetPeriodReset(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		r := e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"max_budget": 1, "budget_duration": "1d"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		key := r.JSON(t)["key"].(string)
		e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "b1", "api_key": key, "spend": 1.5})
		requireError(t, e.do(http.MethodGet, "/auth/verify", key, nil), http.StatusTooManyRequests)
		n, err := e.app.Service().ResetDueBudgets(t.Context())
		require.NoError(t, err)
		require.Zero(t, n, "nothing is due yet")
		e.now.Advance(25 * time.Hour)
		n, err = e.app.Service().ResetDueBudgets(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", key, nil).Code)
		r = e.do(http.MethodGet, "/key/info?key="+key, masterKey, nil)
		require.EqualValues(t, 0, r.JSON(t)["info"].(map[string]any)["spend"])
	})
}
