package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// TestNginxForwardAuth puts Debian's nginx, configured by the committed
// deploy/nginx/keygate.conf (auth_request) or keygate-njs.conf (njs),
// between a client and an upstream, with Keygate answering, and checks
// every outcome a client can meet — including that the upstream never sees
// a denied request.
func TestNginxForwardAuth(t *testing.T) {
	t.Parallel()
	t.Run("auth_request", func(t *testing.T) { testNginx(t, false) })
	t.Run("njs", func(t *testing.T) { testNginx(t, true) })
}

func testNginx(t *testing.T, njs bool) {
	if _, err := os.Stat(nginxBinary); err != nil {
		dbtest.RequireOrSkip(t, "nginx", "apt-get install -y nginx")
	}
	if _, err := os.Stat(njsModule); njs && err != nil {
		dbtest.RequireOrSkip(t, "nginx njs module", "apt-get install -y libnginx-mod-http-js")
	}
	kg := startKeygate(t, openStore(t, ""))
	up := startUpstream(t)
	proxy := startNginx(t, renderNginxSite(t, njs, kg.addr(), up.addr()))

	alice := kg.newUser("alice", "gpt-4o")
	blocked := kg.newKey("alice", nil)
	kg.admin("/key/block", map[string]any{"key": blocked})
	broke := kg.newKey("alice", map[string]any{"max_budget": 0})
	neverUsed := kg.newKey("alice", nil)
	kg.admin("/user/new", map[string]any{"user_id": "free", "user_role": "internal_user", "auto_create_key": false})
	anyModel := kg.newKey("free", nil)
	unknown, err := apikey.Generate(rand.Reader) // well-formed, never stored
	require.NoError(t, err)

	// allowed sends a request that must reach the upstream and returns what
	// the upstream received.
	allowed := func(t *testing.T, method string, hdr map[string]string, body string) echo {
		t.Helper()
		before := up.hits.Load()
		status, _, raw := send(t, proxy, method, "/v1/chat/completions", hdr, body)
		require.Equal(t, http.StatusOK, status, string(raw))
		require.Equal(t, before+1, up.hits.Load(), "upstream must see the request exactly once")
		var e echo
		if method != http.MethodHead {
			require.NoError(t, json.Unmarshal(raw, &e), string(raw))
		}
		return e
	}
	// denied sends a request that must be refused with status before it
	// reaches the upstream.
	denied := func(t *testing.T, status int, hdr map[string]string, withBody ...string) (message string) {
		t.Helper()
		b := `{"model":"gpt-4o","messages":[]}`
		if len(withBody) > 0 {
			b = withBody[0]
		}
		before := up.hits.Load()
		got, h, raw := send(t, proxy, http.MethodPost, "/v1/chat/completions", hdr, b)
		require.Equal(t, status, got, string(raw))
		require.Equal(t, before, up.hits.Load(), "a denied request reached the upstream")
		require.Contains(t, h.Get("Content-Type"), "application/json")
		var body struct {
			Error struct{ Code, Type, Message string }
		}
		require.NoError(t, json.Unmarshal(raw, &body), string(raw))
		require.Equal(t, fmt.Sprint(status), body.Error.Code)
		return body.Error.Message
	}
	bearer := func(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

	t.Run("valid key reaches the upstream with identity headers", func(t *testing.T) {
		e := allowed(t, http.MethodGet, bearer(alice), "")
		require.Equal(t, "alice", e.Headers["X-Keygate-User-Id"])
		require.Equal(t, "internal_user", e.Headers["X-Keygate-User-Role"])
		require.Equal(t, apikey.Hash(alice), e.Headers["X-Keygate-Key-Id"])
		require.NotContains(t, e.Headers, "Authorization", "the client's key must not be handed upstream")
		require.Equal(t, "/v1/chat/completions", e.Path)
	})
	t.Run("every credential header works", func(t *testing.T) {
		for _, h := range []string{"X-Api-Key", "Api-Key", "X-Litellm-Api-Key"} {
			e := allowed(t, http.MethodGet, map[string]string{h: alice}, "")
			require.Equal(t, "alice", e.Headers["X-Keygate-User-Id"], h)
			require.Empty(t, e.Headers[h], "%s must not be handed upstream", h)
		}
	})
	t.Run("allowed model and body pass through", func(t *testing.T) {
		body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
		hdr := bearer(alice)
		if !njs {
			// auth_request shows Keygate no body, so only a key without
			// model limits gets through on a model route.
			hdr = bearer(anyModel)
		}
		hdr["Content-Type"] = "application/json"
		e := allowed(t, http.MethodPost, hdr, body)
		require.Equal(t, http.MethodPost, e.Method)
		require.Equal(t, len(body), e.BodyLen)
	})
	if !njs {
		t.Run("restricted key on a model route: the model cannot be seen", func(t *testing.T) {
			hdr := bearer(alice)
			hdr["X-Keygate-Model"] = "gpt-4o" // the client's word proves nothing
			hdr["Content-Type"] = "application/json"
			denied(t, http.StatusForbidden, hdr, `{"model":"other-model","messages":[]}`)
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		allowed(t, http.MethodHead, bearer(alice), "")
	})
	t.Run("identity headers sent by the client are replaced", func(t *testing.T) {
		hdr := bearer(alice)
		hdr["X-Keygate-User-Id"] = "admin"
		hdr["X-Keygate-User-Role"] = "proxy_admin"
		hdr["X-Keygate-Team-Id"] = "team-of-admins" // alice has no team: must vanish
		e := allowed(t, http.MethodGet, hdr, "")
		require.Equal(t, "alice", e.Headers["X-Keygate-User-Id"])
		require.Equal(t, "internal_user", e.Headers["X-Keygate-User-Role"])
		require.NotContains(t, e.Headers, "X-Keygate-Team-Id")
	})

	t.Run("no key", func(t *testing.T) { denied(t, http.StatusUnauthorized, nil) })
	t.Run("malformed key", func(t *testing.T) { denied(t, http.StatusUnauthorized, bearer("sk-not-a-real-key")) })
	t.Run("unknown key", func(t *testing.T) { denied(t, http.StatusUnauthorized, bearer(unknown)) })
	t.Run("blocked key", func(t *testing.T) { denied(t, http.StatusUnauthorized, bearer(blocked)) })
	t.Run("model not allowed", func(t *testing.T) {
		hdr := bearer(alice)
		hdr["X-Keygate-Model"] = "other-model"
		hdr["Content-Type"] = "application/json"
		denied(t, http.StatusForbidden, hdr, `{"model":"other-model","messages":[]}`)
	})
	if njs {
		// Only njs sees the body: the model is enforced without any help
		// from the client, however large the body.
		jsonKey := map[string]string{"Authorization": "Bearer " + alice, "Content-Type": "application/json"}
		t.Run("client's model header cannot vouch for a text/plain body", func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + alice, "Content-Type": "text/plain", "X-Keygate-Model": "gpt-4o"}
			denied(t, http.StatusForbidden, hdr, `{"model":"other-model","messages":[]}`)
		})
		t.Run("a form body is read as a form, as the upstream reads it", func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + alice, "Content-Type": "application/x-www-form-urlencoded"}
			denied(t, http.StatusForbidden, hdr, `{"a":"&model=other-model&","model":"gpt-4o"}`)
		})
		t.Run("model in the body not allowed", func(t *testing.T) {
			msg := denied(t, http.StatusForbidden, jsonKey, `{"model":"other-model","messages":[]}`)
			require.Contains(t, msg, `"other-model" is not allowed`, "njs passes Keygate's own error on")
		})
		t.Run("model in a large body not allowed", func(t *testing.T) {
			big := `{"model":"other-model","messages":[{"role":"user","content":"` + strings.Repeat("x", 200<<10) + `"}]}`
			denied(t, http.StatusForbidden, jsonKey, big)
		})
		t.Run("model in the body allowed", func(t *testing.T) {
			allowed(t, http.MethodPost, jsonKey, `{"model":"gpt-4o","messages":[]}`)
		})
	}
	t.Run("budget exceeded", func(t *testing.T) { denied(t, http.StatusTooManyRequests, bearer(broke)) })

	// The last two take parts away, so they run last and in this order.
	t.Run("database down", func(t *testing.T) {
		require.NoError(t, kg.store.Close())
		denied(t, http.StatusServiceUnavailable, bearer(neverUsed))
	})
	t.Run("keygate down", func(t *testing.T) {
		kg.srv.Close()
		denied(t, http.StatusServiceUnavailable, bearer(alice))
	})
}
