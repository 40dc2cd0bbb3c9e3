package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// TestBadPathTextRefusedEverywhere: a NUL byte or invalid UTF-8 in the
// path or query is a 400 on /auth/verify and on forwarded routes too, as
// on every management route (README, Security). Both run in front of Gin
// and its text check; an outside test saw /auth/verify/v1/chat/completions%00
// allowed and forwarding send the path upstream.
func TestBadPathTextRefusedEverywhere(t *testing.T) {
	t.Parallel()
	up, served := fakeLLM(t)
	e := newEnvWith(t, databases()[0].open(t), withForwarding(up))
	e.userWithRole("ann", rbac.RoleInternalUser)
	key := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann", "models": []string{"gpt-test"}}))["key"].(string)
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`
	send := func(method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL.Path, req.URL.RawQuery, _ = strings.Cut(target, "?")
		req.RequestURI = target
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		return w
	}
	for _, target := range []string{
		"/auth/verify/v1/chat/completions\x00",
		"/auth/verify/v1/models\xff",
		"/auth/verify?path=/v1/chat/completions\x00",
		"/v1/chat/completions\x00",
		"/v1/chat/completions?x=\xff",
	} {
		before := served.Load()
		w := send(http.MethodPost, target)
		require.Equal(t, http.StatusBadRequest, w.Code, "%q: %s", target, w.Body.String())
		require.Contains(t, w.Body.String(), `"error"`, "%q: LiteLLM's error body", target)
		require.Equal(t, before, served.Load(), "%q reached the upstream", target)
	}
	// The same requests with clean text pass.
	require.Equal(t, http.StatusOK, send(http.MethodPost, "/auth/verify/v1/chat/completions").Code)
	require.Equal(t, http.StatusOK, send(http.MethodPost, "/v1/chat/completions").Code)
}

// TestCacheTTLBoundsAnUnheardChange: KEYGATE_CACHE_TTL (app CacheTTL) is
// the most a cached answer outlives a change this replica was never told
// about — a replica whose notification listener is cut off from the
// database (README, Caching). The row is changed behind the service's
// back, so no invalidation runs: the answer stays until the TTL, not
// after.
func TestCacheTTLBoundsAnUnheardChange(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.CacheTTL = 5 * time.Second })
	key := e.userWithRole("ann", rbac.RoleInternalUser)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", key, nil).Code)
	_, err := e.store.UpdateKey(t.Context(), apikey.Hash(key), func(k *store.Key) error { k.Blocked = true; return nil })
	require.NoError(t, err)
	e.now.Advance(4 * time.Second)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", key, nil).Code, "within the TTL: the cached answer (nobody was told)")
	e.now.Advance(2 * time.Second)
	requireError(t, e.do(http.MethodGet, "/auth/verify", key, nil), http.StatusUnauthorized)
}

// TestPassThroughThroughVerify: a model-limited key writing through a
// provider pass-through route must name a model Keygate can read.
func TestPassThroughThroughVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("ann", rbac.RoleInternalUser)
	key := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann", "models": []string{"cheap"}}))["key"].(string)
	free := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann"}))["key"].(string)
	json := map[string]string{"Content-Type": "application/json"}
	for _, route := range []string{"/vertex_ai/v1/projects/p/locations/l/endpoints/123:predict", "/bedrock/agents/a1/agentAliases/x/sessions/s/text"} {
		r := e.verifyAs(http.MethodPost, "/auth/verify"+route, key, json, `{"instances":[{"prompt":"hi"}]}`)
		requireError(t, r, http.StatusForbidden)
		require.Contains(t, r.Body.String(), "Cannot tell which model", route)
		require.Equal(t, http.StatusOK, e.verifyAs(http.MethodPost, "/auth/verify"+route, free, json, `{}`).Code, route)
	}
	require.Equal(t, http.StatusOK, e.verifyAs(http.MethodPost, "/auth/verify/anthropic/v1/complete", key, json, `{"model":"cheap","prompt":"hi"}`).Code)
	// Cursor's and Milvus's pass-through are provider routes too; Bedrock,
	// Vertex AI, Gemini, Cursor and Milvus read the model from the path, so
	// an allowed model in the body is a decoy and establishes nothing.
	for _, route := range []string{"/cursor/v0/agents", "/milvus/v2/vectordb/entities/search"} {
		requireError(t, e.verifyAs(http.MethodPost, "/auth/verify"+route, key, json, `{}`), http.StatusForbidden)
	}
	for _, route := range []string{"/bedrock/agents/a1/agentAliases/x/sessions/s/text", "/vertex_ai/v1/projects/p/locations/l/endpoints/123:predict"} {
		r := e.verifyAs(http.MethodPost, "/auth/verify"+route, key, json, `{"model":"cheap"}`)
		requireError(t, r, http.StatusForbidden)
	}
	r := e.verifyAs(http.MethodPost, "/auth/verify/vertex_ai/v1/projects/p/locations/l/publishers/google/models/cheap:generateContent", key, json, `{}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	requireError(t, e.verifyAs(http.MethodPost, "/auth/verify/vertex_ai/v1/projects/p/locations/l/publishers/google/models/gpt-4o:generateContent", key, json, `{"model":"cheap"}`),
		http.StatusForbidden)
	requireError(t, e.verifyAs(http.MethodPost, "/auth/verify/anthropic/v1/complete", key, json, `{"model":"gpt-4o","prompt":"hi"}`), http.StatusForbidden)
}

// TestOwnerAndTeamRateLimits: a user's rpm_limit binds all their keys
// together and a team's all the team's keys, as in LiteLLM (an outside
// test sent 25 + 25 calls on two keys of a user limited to 10 a minute,
// and 50 on a team key of a team limited to 10: all served).
func TestOwnerAndTeamRateLimits(t *testing.T) {
	t.Parallel()
	up, _ := fakeLLM(t)
	e := newEnvWith(t, databases()[0].open(t), withForwarding(up))
	e.mustOK(e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "ann", "user_role": "internal_user", "rpm_limit": 3}))
	k1 := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann"}))["key"].(string)
	k2 := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann"}))["key"].(string)
	served, limited := 0, 0
	for i := range 6 {
		k := k1
		if i%2 == 1 {
			k = k2
		}
		switch code := chat(e.h, k, 5); code {
		case http.StatusOK:
			served++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("call %d: %d", i, code)
		}
	}
	require.Equal(t, 3, served, "the owner's limit counts both keys")
	require.Equal(t, 3, limited)

	e.mustOK(e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "bo", "user_role": "internal_user"}))
	e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t1", "rpm_limit": 2,
		"members_with_roles": []any{map[string]any{"user_id": "bo", "role": "user"}}}))
	tk := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "bo", "team_id": "t1"}))["key"].(string)
	tk2 := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "bo", "team_id": "t1"}))["key"].(string)
	require.Equal(t, http.StatusOK, chat(e.h, tk, 5))
	require.Equal(t, http.StatusOK, chat(e.h, tk2, 5))
	require.Equal(t, http.StatusTooManyRequests, chat(e.h, tk, 5), "the team's limit counts all its keys")
	require.Equal(t, http.StatusTooManyRequests, chat(e.h, tk2, 5))
	// A minute later the buckets have refilled.
	e.now.Advance(time.Minute)
	require.Equal(t, http.StatusOK, chat(e.h, tk2, 5))
	require.Equal(t, http.StatusOK, chat(e.h, k1, 5))

	// The user's sessions draw on the same bucket as their keys: 2 of 3
	// left this minute.
	e.setPassword("ann", "ann-password-1")
	r, _ := e.login("ann", "ann-password-1")
	jwt := r.JSON(t)["token"].(string)
	require.Equal(t, http.StatusOK, chat(e.h, jwt, 5))
	require.Equal(t, http.StatusOK, chat(e.h, k2, 5))
	require.Equal(t, http.StatusTooManyRequests, chat(e.h, jwt, 5), "the session counts against ann's limit")
}

// TestForwardedEndpointWithTrailingJunk: forwarding reads
// /v1/chat/completions;x as the chat endpoint, so a model-limited key
// sending no model is refused there too, before the upstream.
func TestForwardedEndpointWithTrailingJunk(t *testing.T) {
	t.Parallel()
	up, served := fakeLLM(t)
	e := newEnvWith(t, databases()[0].open(t), withForwarding(up))
	e.userWithRole("ann", rbac.RoleInternalUser)
	key := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann", "models": []string{"gpt-test"}}))["key"].(string)
	for _, target := range []string{"/v1/chat/completions;x", "/v1/chat/completions.json", "/v1/messages/batches;x"} {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		before := served.Load()
		e.h.ServeHTTP(w, req)
		require.Equal(t, http.StatusForbidden, w.Code, "%s: %s", target, w.Body.String())
		require.Equal(t, before, served.Load(), target)
	}
}

// TestAskedRouteTextRefused: what a trusted proxy says about the request
// (X-Original-URI, X-Forwarded-Uri, the method headers, X-Keygate-Model)
// gets the path's text rule: NUL, invalid UTF-8 or a malformed escape is a
// 400 (an outside test got answers for X-Original-URI:
// /v1/chat/completions%00 and X-Keygate-Model: cheap\xff).
func TestAskedRouteTextRefused(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.TrustedProxies = []string{"192.0.2.0/24"} })
	e.userWithRole("ann", rbac.RoleInternalUser)
	key := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "ann", "models": []string{"cheap"}}))["key"].(string)
	for _, h := range []map[string]string{
		{"X-Original-URI": "/v1/chat/completions%00"},
		{"X-Original-URI": "/v1/chat/completions?x=%ff"},
		{"X-Original-URI": "/v1/chat/completions?x=%0"},
		{"X-Original-URI": "/v1/chat/\xff"},
		{"X-Forwarded-Uri": "/v1/chat/\xff"},
		{"X-Original-URI": "/v1/models", "X-Keygate-Model": "cheap\xff"},
		{"X-Original-URI": "/v1/models", "X-Original-Method": "G\x00T"},
	} {
		r := e.verifyAs(http.MethodGet, "/auth/verify", key, h, "")
		requireError(t, r, http.StatusBadRequest)
	}
	r := e.verifyAs(http.MethodGet, "/auth/verify", key, map[string]string{"X-Original-URI": "/v1/models?limit=5", "X-Original-Method": "GET"}, "")
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
}
