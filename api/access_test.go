package api_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/rbac"
)

// verifyAs asks /auth/verify about key with extra headers and a raw body.
func (e *testEnv) verifyAs(method, path, key string, hdr map[string]string, body string) response {
	e.t.Helper()
	h := map[string]string{"Authorization": "Bearer " + key}
	for k, v := range hdr {
		h[k] = v
	}
	return e.doHeaders(method, path, h, body)
}

func (e *testEnv) mustOK(r response) map[string]any {
	e.t.Helper()
	require.Equal(e.t, http.StatusOK, r.Code, r.Body.String())
	if strings.HasPrefix(strings.TrimSpace(r.Body.String()), "{") {
		return r.JSON(e.t)
	}
	return nil
}

// TestNobodyReceivesAnotherUsersCredential (issue 12, defect 1): a team
// admin could regenerate a proxy admin's team key and act as proxy admin.
// Regenerate (any raw key) is for the owner and proxy admins only; a team
// admin may list, block and delete members' team keys, never regenerate or
// reshape them, and never touch keys of users who outrank them.
func TestNobodyReceivesAnotherUsersCredential(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("boss", rbac.RoleProxyAdmin)
		lead := e.userWithRole("lead", rbac.RoleInternalUser)
		mem := e.userWithRole("mem", rbac.RoleInternalUser)
		e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t", "members_with_roles": []any{
			map[string]any{"user_id": "lead", "role": "admin"}, map[string]any{"user_id": "mem", "role": "user"},
			map[string]any{"user_id": "boss", "role": "user"}}}))
		bossKey := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "boss", "team_id": "t"}))["key"].(string)
		memKey := e.mustOK(e.do(http.MethodPost, "/key/generate", mem, map[string]any{"team_id": "t"}))["key"].(string)

		before := snapshot(t, e)
		for _, c := range []struct {
			name, path string
			body       any
		}{
			{"regenerate admin's team key", "/key/regenerate", map[string]any{"key": bossKey}},
			{"regenerate admin's team key by path", "/key/" + apikey.Hash(bossKey) + "/regenerate", nil},
			{"regenerate member's team key", "/key/regenerate", map[string]any{"key": memKey}},
			{"update admin's team key", "/key/update", map[string]any{"key": bossKey, "key_alias": "mine"}},
			{"update member's team key", "/key/update", map[string]any{"key": memKey, "models": []string{"gpt-4o"}}},
			{"block admin's team key", "/key/block", map[string]any{"key": bossKey}},
			{"delete admin's team key", "/key/delete", map[string]any{"keys": []string{bossKey}}},
		} {
			requireError(t, e.do(http.MethodPost, c.path, lead, c.body), http.StatusForbidden)
		}
		require.Equal(t, before, snapshot(t, e), "a refused key operation changed the database")
		r := e.verifyAs(http.MethodGet, "/auth/verify", bossKey, nil, "")
		require.Equal(t, http.StatusOK, r.Code)
		require.Equal(t, "proxy_admin", r.Hdr.Get("X-Keygate-User-Role"))

		// what a team admin may do with a member's team key
		r = e.do(http.MethodGet, "/key/list?team_id=t", lead, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Contains(t, r.Body.String(), apikey.Hash(memKey))
		e.mustOK(e.do(http.MethodPost, "/key/block", lead, map[string]any{"key": memKey}))
		require.Equal(t, http.StatusUnauthorized, e.verifyAs(http.MethodGet, "/auth/verify", memKey, nil, "").Code)
		e.mustOK(e.do(http.MethodPost, "/key/unblock", lead, map[string]any{"key": memKey}))
		require.Equal(t, http.StatusOK, e.verifyAs(http.MethodGet, "/auth/verify", memKey, nil, "").Code)

		// the owner and a proxy admin may regenerate
		fresh := e.mustOK(e.do(http.MethodPost, "/key/regenerate", mem, map[string]any{"key": memKey}))["key"].(string)
		require.Equal(t, "mem", e.verifyAs(http.MethodGet, "/auth/verify", fresh, nil, "").Hdr.Get("X-Keygate-User-Id"))
		e.mustOK(e.do(http.MethodPost, "/key/regenerate", masterKey, map[string]any{"key": bossKey}))
		e.mustOK(e.do(http.MethodPost, "/key/delete", lead, map[string]any{"keys": []string{fresh}}))
	})
}

// TestNoKeyGrantsMoreThanItsOwner (defect 1, last rule): no caller, not
// even a proxy admin, can shape a key beyond what its owner may hold.
func TestNoKeyGrantsMoreThanItsOwner(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "lim", "user_role": "internal_user",
			"models": []string{"gpt-4o"}, "max_budget": 5})
		lim := e.mustOK(r)["key"].(string)
		e.userWithRole("free", rbac.RoleInternalUser)
		e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t", "models": []string{"gpt-4o-mini"}}))
		before := snapshot(t, e)
		for _, c := range []struct {
			name  string
			token string
			path  string
			body  map[string]any
		}{
			{"admin widens models", masterKey, "/key/update", map[string]any{"key": lim, "models": []string{"o3"}}},
			{"admin raises budget", masterKey, "/key/update", map[string]any{"key": lim, "max_budget": 50}},
			{"admin makes a key for a model the owner lacks", masterKey, "/key/generate", map[string]any{"user_id": "lim", "models": []string{"o3"}}},
			{"owner widens own", lim, "/key/update", map[string]any{"key": lim, "models": []string{"o3"}}},
		} {
			requireError(t, e.do(http.MethodPost, c.path, c.token, c.body), http.StatusForbidden)
		}
		// a team key whose owner is not in the team would act for a team
		// its owner does not belong to
		requireError(t, e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "free", "team_id": "t"}), http.StatusBadRequest)
		require.Equal(t, before, snapshot(t, e))
	})
}

// TestVerifyModelSources (defect 4): the model is taken as the upstream
// will read it, from every place a request can name one; a header can only
// narrow, and only a trusted proxy's header settles the question.
func TestVerifyModelSources(t *testing.T) {
	t.Parallel()
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, db.open(t))
			key := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"models": []string{"gpt-4o-mini"}}))["key"].(string)
			free := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{}))["key"].(string)
			json := map[string]string{"Content-Type": "application/json"}
			var mp bytes.Buffer
			mw := multipart.NewWriter(&mp)
			require.NoError(t, mw.WriteField("model", "whisper-1"))
			fw, _ := mw.CreateFormFile("file", "a.wav")
			_, _ = fw.Write([]byte("RIFF"))
			require.NoError(t, mw.Close())
			chat := "/auth/verify/v1/chat/completions"
			cases := []struct {
				name       string
				method     string
				path       string
				hdr        map[string]string
				body       string
				want, free int
			}{
				{"allowed body", "POST", chat, json, `{"model":"gpt-4o-mini"}`, 200, 200},
				{"header cannot override the body", "POST", chat, map[string]string{"Content-Type": "application/json", "X-Keygate-Model": "gpt-4o-mini"}, `{"model":"gpt-4o"}`, 403, 200},
				{"duplicate model keys: the last counts upstream", "POST", chat, json, `{"model":"gpt-4o-mini","model":"gpt-4o"}`, 403, 200},
				{"escaped key name", "POST", chat, json, `{"model":"gpt-4o-mini","mod\u0065l":"gpt-4o"}`, 403, 200},
				{"text/plain body is still read", "POST", chat, map[string]string{"Content-Type": "text/plain"}, `{"model":"gpt-4o"}`, 403, 200},
				{"no content type", "POST", chat, nil, `{"model":"gpt-4o"}`, 403, 200},
				{"multipart model field", "POST", "/auth/verify/v1/audio/transcriptions", map[string]string{"Content-Type": mw.FormDataContentType()}, mp.String(), 403, 200},
				{"form field", "POST", chat, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "model=gpt-4o", 403, 200},
				{"query model", "POST", chat + "?model=gpt-4o", json, `{"model":"gpt-4o-mini"}`, 403, 200},
				{"path model (Azure style)", "POST", "/auth/verify/openai/deployments/gpt-4o/chat/completions", json, `{}`, 403, 200},
				{"path model (Gemini style)", "POST", "/auth/verify/v1beta/models/gpt-4o:generateContent", json, `{}`, 403, 200},
				{"model-bearing route, no model", "POST", chat, json, `{"messages":[]}`, 403, 200},
				{"model-bearing route, empty body", "POST", chat, nil, ``, 403, 200},
				{"untrusted header alone does not settle it", "POST", chat, map[string]string{"X-Keygate-Model": "gpt-4o-mini"}, ``, 403, 200},
				{"unreadable JSON", "POST", chat, json, `{"model":"gpt-4o-mini",`, 403, 200},
				{"not a model-bearing route", "GET", "/auth/verify/v1/models", nil, ``, 200, 200},
				{"header narrows", "GET", "/auth/verify/v1/models", map[string]string{"X-Keygate-Model": "gpt-4o"}, ``, 403, 200},
			}
			for _, c := range cases {
				r := e.verifyAs(c.method, c.path, key, c.hdr, c.body)
				require.Equal(t, c.want, r.Code, "%s: %s", c.name, r.Body.String())
				r = e.verifyAs(c.method, c.path, free, c.hdr, c.body)
				require.Equal(t, c.free, r.Code, "%s (unrestricted key): %s", c.name, r.Body.String())
			}

			// From a trusted proxy (nginx + njs puts the body's model in the
			// header) the header settles the model, and the route headers
			// say which route the client called.
			trusted := newEnvWith(t, db.open(t), func(o *app.Options) { o.TrustedProxies = []string{"192.0.2.0/24"} })
			tk := trusted.mustOK(trusted.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"models": []string{"gpt-4o-mini"}}))["key"].(string)
			orig := func(model, uri string) int {
				return trusted.verifyAs("POST", "/auth/verify", tk, map[string]string{"X-Keygate-Model": model, "X-Original-URI": uri, "X-Original-Method": "POST"}, "").Code
			}
			require.Equal(t, 200, orig("gpt-4o-mini", "/v1/chat/completions"))
			require.Equal(t, 403, orig("gpt-4o", "/v1/chat/completions"))
			require.Equal(t, 403, orig("gpt-4o-mini", "/v1/chat/completions?model=gpt-4o"))
			require.Equal(t, 403, orig("gpt-4o-mini", "/openai/deployments/gpt-4o/chat/completions"))
			require.Equal(t, 403, orig("", "/v1/chat/completions"))
		})
	}
}

// TestPersonalKeyHasNoTeam (defect 5): a personal key of a user who is in
// teams is answered without a team, and team blocks and budgets do not
// apply to it.
func TestPersonalKeyHasNoTeam(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "blocked-team", "blocked": true}))
		e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "poor", "max_budget": 1}))
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "pat", "user_role": "internal_user", "teams": []string{"blocked-team", "poor"}})
		personal := e.mustOK(r)["key"].(string)
		teamKey := e.mustOK(e.do(http.MethodPost, "/key/generate", personal, map[string]any{"team_id": "poor"}))["key"].(string)
		e.mustOK(e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "x1", "api_key": teamKey, "spend": 2}))

		r = e.verifyAs(http.MethodGet, "/auth/verify", personal, nil, "")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		v, present := r.Hdr["X-Keygate-Team-Id"]
		require.True(t, present)
		require.Equal(t, []string{""}, v)
		require.Equal(t, http.StatusTooManyRequests, e.verifyAs(http.MethodGet, "/auth/verify", teamKey, nil, "").Code)
	})
}

// TestOneModelMatcher (defect 6): key creation, update and verification
// agree on wildcards and LiteLLM's special names.
func TestOneModelMatcher(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "w", "user_role": "internal_user", "models": []string{"openai/*"}})
		w := e.mustOK(r)["key"].(string)
		body := func(m string) string { return `{"model":"` + m + `"}` }
		hdr := map[string]string{"Content-Type": "application/json"}
		require.Equal(t, 200, e.verifyAs("POST", "/auth/verify", w, hdr, body("openai/gpt-4o")).Code)
		require.Equal(t, 403, e.verifyAs("POST", "/auth/verify", w, hdr, body("anthropic/claude")).Code)
		narrow := e.mustOK(e.do(http.MethodPost, "/key/generate", w, map[string]any{"models": []string{"openai/gpt-4o"}}))["key"].(string)
		require.Equal(t, 200, e.verifyAs("POST", "/auth/verify", narrow, hdr, body("openai/gpt-4o")).Code)
		require.Equal(t, 403, e.verifyAs("POST", "/auth/verify", narrow, hdr, body("openai/gpt-4o-mini")).Code)
		e.mustOK(e.do(http.MethodPost, "/key/generate", w, map[string]any{"models": []string{"openai/*"}}))
		e.mustOK(e.do(http.MethodPost, "/key/update", w, map[string]any{"key": narrow, "models": []string{"openai/o3"}}))
		for _, wide := range [][]string{{"anthropic/claude"}, {"*"}, {"all-proxy-models"}, {"openai*"}} {
			requireError(t, e.do(http.MethodPost, "/key/generate", w, map[string]any{"models": wide}), http.StatusForbidden)
		}
	})
}

// TestDurationBounds (defect 8): a duration beyond ten years is refused
// instead of wrapping around to a date in the past.
func TestDurationBounds(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		before := snapshot(t, e)
		for _, c := range []struct{ path, field string }{
			{"/key/generate", "budget_duration"}, {"/key/generate", "duration"},
			{"/team/new", "budget_duration"}, {"/user/new", "budget_duration"},
		} {
			for _, d := range []string{"999999d", "3651d", "522w", "122mo", "315360001s"} {
				r := e.do(http.MethodPost, c.path, masterKey, map[string]any{c.field: d})
				require.Equal(t, c.field, requireError(t, r, http.StatusBadRequest)["param"], "%s %s=%s", c.path, c.field, d)
			}
		}
		require.Equal(t, before, snapshot(t, e))
		e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"budget_duration": "3650d", "duration": "520w"}))
	})
}

// TestTeamAdminCannotProbeOrPullInAdmins (defect 9): to a team admin an
// unknown account and one they may not add look the same, and nobody who
// outranks them joins their team through them.
func TestTeamAdminCannotProbeOrPullInAdmins(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		lead := e.userWithRole("lead", rbac.RoleInternalUser)
		e.userWithRole("boss", rbac.RoleProxyAdmin)
		e.userWithRole("auditor", rbac.RoleProxyAdminViewer)
		e.userWithRole("peer", rbac.RoleInternalUser)
		e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t", "members_with_roles": []any{map[string]any{"user_id": "lead", "role": "admin"}}}))
		before := snapshot(t, e)
		var answers []string
		for _, m := range []map[string]any{
			{"user_email": "nobody@example.com"}, {"user_email": "boss@example.com"}, {"user_id": "nobody"}, {"user_id": "boss"},
			{"user_id": "auditor"}, {"user_email": "AUDITOR@example.com"},
		} {
			r := e.do(http.MethodPost, "/team/member_add", lead, map[string]any{"team_id": "t", "member": m})
			answers = append(answers, itoa(r.Code)+" "+r.Body.String())
		}
		for _, a := range answers[1:] {
			require.Equal(t, answers[0], a, "a team admin can tell accounts apart")
		}
		require.True(t, strings.HasPrefix(answers[0], "404 "), answers[0])
		require.Equal(t, before, snapshot(t, e))
		e.mustOK(e.do(http.MethodPost, "/team/member_add", lead, map[string]any{"team_id": "t", "member": map[string]any{"user_id": "peer"}}))
		// a proxy admin still gets precise answers and may add anyone
		requireError(t, e.do(http.MethodPost, "/team/member_add", masterKey, map[string]any{"team_id": "t", "member": map[string]any{"user_id": "nobody"}}), http.StatusNotFound)
		e.mustOK(e.do(http.MethodPost, "/team/member_add", masterKey, map[string]any{"team_id": "t", "member": map[string]any{"user_id": "boss"}}))
		// and a team admin cannot promote or demote someone above them
		requireError(t, e.do(http.MethodPost, "/team/member_update", lead, map[string]any{"team_id": "t", "user_id": "boss", "role": "admin"}), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/team/member_delete", lead, map[string]any{"team_id": "t", "user_id": "boss"}), http.StatusForbidden)
	})
}

// TestRedTeamFindings: what an outside review of the access decision
// found (issue 12 follow-up); each case failed before its fix.
func TestRedTeamFindings(t *testing.T) {
	t.Parallel()
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			e := newEnvWith(t, db.open(t), func(o *app.Options) { o.TrustedProxies = []string{"192.0.2.0/24"} })
			admin := e.userWithRole("boss", rbac.RoleProxyAdmin)
			viewer := e.userWithRole("auditor", rbac.RoleProxyAdminViewer)
			user := e.userWithRole("ivy", rbac.RoleInternalUser)
			lowly := e.userWithRole("val", rbac.RoleInternalUserViewer)
			adminLLM := e.mustOK(e.do("POST", "/key/generate", masterKey, map[string]any{"user_id": "boss", "key_type": "llm_api"}))["key"].(string)
			service := e.mustOK(e.do("POST", "/key/generate", masterKey, map[string]any{"key_type": "service"}))["key"].(string)
			readOnly := e.mustOK(e.do("POST", "/key/generate", masterKey, map[string]any{"user_id": "ivy", "key_type": "read_only"}))["key"].(string)
			mgmt := e.mustOK(e.do("POST", "/key/generate", masterKey, map[string]any{"user_id": "boss", "key_type": "management"}))["key"].(string)
			restricted := e.mustOK(e.do("POST", "/key/generate", masterKey, map[string]any{"user_id": "ivy", "models": []string{"gpt-4o"}}))["key"].(string)
			json := map[string]string{"Content-Type": "application/json"}
			status := func(method, path, key string, hdr map[string]string, body string) int {
				return e.verifyAs(method, path, key, hdr, body).Code
			}

			// 1. The proxy's own admin routes behind /auth/verify are for
			// admins: Keygate must not vouch for anyone else there.
			for _, k := range []string{user, lowly, adminLLM, readOnly, service} {
				require.Equal(t, 403, status("POST", "/auth/verify/key/generate", k, json, `{}`))
				require.Equal(t, 403, status("POST", "/auth/verify", k, map[string]string{"X-Original-URI": "/config/update", "X-Original-Method": "POST"}, ""))
				require.Equal(t, 403, status("GET", "/auth/verify/global/spend", k, nil, ""))
			}
			require.Equal(t, 200, status("POST", "/auth/verify/key/generate", admin, json, `{}`))
			require.Equal(t, 200, status("POST", "/auth/verify/key/generate", mgmt, json, `{}`))
			require.Equal(t, 200, status("POST", "/auth/verify/key/generate", masterKey, json, `{}`))
			require.Equal(t, 200, status("GET", "/auth/verify/global/spend", viewer, nil, ""))
			require.Equal(t, 403, status("POST", "/auth/verify/user/new", viewer, json, `{}`))
			// an untrusted route header can still only narrow
			require.Equal(t, 403, e.doHeaders("GET", "/auth/verify", map[string]string{"Authorization": "Bearer " + user,
				"X-Forwarded-Uri": "/key/generate"}, "").Code)

			// 2. Percent-encoded routes are read as the upstream decodes them.
			for _, p := range []string{"/v1/chat%2Fcompletions", "/v1beta/models/gpt-5%3AgenerateContent",
				"/openai%2Fdeployments%2Fgpt-5%2Fchat%2Fcompletions", "/bedrock/model%2Fgpt-5%2Finvoke"} {
				require.Equal(t, 403, status("POST", "/auth/verify"+p, restricted, json, `{"model":"gpt-5"}`), p)
				require.Equal(t, 403, status("POST", "/auth/verify", restricted, map[string]string{"X-Original-URI": p,
					"X-Original-Method": "POST", "X-Keygate-Model": "gpt-4o"}, ""), p)
			}
			require.Equal(t, 200, status("POST", "/auth/verify/v1/chat/completions", restricted, json, `{"model":"gpt-4o"}`))

			// 4. A multipart part whose disposition names the field twice.
			mp := "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o\r\n" +
				"--XyZ\r\nContent-Disposition: form-data; name=\"x\"; name=\"model\"\r\n\r\ngpt-5\r\n--XyZ--\r\n"
			require.Equal(t, 403, status("POST", "/auth/verify/v1/audio/transcriptions", restricted,
				map[string]string{"Content-Type": "multipart/form-data; boundary=XyZ"}, mp))

			// 6. Key types on the LLM path.
			for _, k := range []string{service, readOnly, mgmt} {
				require.Equal(t, 403, status("POST", "/auth/verify/v1/chat/completions", k, json, `{"model":"gpt-4o"}`))
			}
			require.Equal(t, 200, status("POST", "/auth/verify/v1/chat/completions", adminLLM, json, `{"model":"gpt-4o"}`))
			require.Equal(t, 200, status("GET", "/auth/verify/v1/models", readOnly, nil, ""))

			// 10. Every model header line from a trusted proxy counts, and
			// both route headers do.
			req := map[string]string{"X-Original-URI": "/v1/chat/completions", "X-Original-Method": "POST", "X-Keygate-Model": "gpt-4o, gpt-5"}
			require.Equal(t, 403, status("POST", "/auth/verify", restricted, req, ""))
			req = map[string]string{"X-Original-URI": "/v1/models", "X-Forwarded-Uri": "/key/generate", "X-Original-Method": "GET"}
			require.Equal(t, 403, status("GET", "/auth/verify", user, req, ""))

			// 11. A trusted proxy's method header settles the method only
			// when it is one standard method: a proxy appending its value to
			// the client's ("POST, GET") or passing on junk leaves it unknown,
			// so a model route still needs its model (an outside test got 200
			// for "POST, GET", "FOO" and "G%45T" with no model at all).
			for _, m := range []string{"POST, GET", "GET, POST", "FOO", "G%45T", "GET;"} {
				req = map[string]string{"X-Original-URI": "/v1/chat/completions", "X-Original-Method": m}
				require.Equal(t, 403, status("GET", "/auth/verify", restricted, req, ""), m)
			}
			req = map[string]string{"X-Original-URI": "/v1/chat/completions", "X-Original-Method": " get "}
			require.Equal(t, 200, status("GET", "/auth/verify", restricted, req, ""), "a trusted GET is a GET")
			// Only the method header of the route header's family settles it:
			// an nginx setting X-Original-URI alone passes the client's
			// X-Forwarded-Method through.
			req = map[string]string{"X-Original-URI": "/v1/chat/completions", "X-Forwarded-Method": "GET"}
			require.Equal(t, 403, status("GET", "/auth/verify", restricted, req, ""), "X-Forwarded-Method does not settle an nginx route")
			req = map[string]string{"X-Forwarded-Uri": "/v1/chat/completions", "X-Forwarded-Method": "GET"}
			require.Equal(t, 200, status("GET", "/auth/verify", restricted, req, ""), "Traefik's pair does")
		})
	}
}

// TestTeamAdminSeesOnlyWhatTheyManage (red team 7, 8): a team admin's view
// of team keys leaves out ownerless keys and keys of higher roles, and
// they cannot raise member budgets past the team's or their own at all.
func TestTeamAdminSeesOnlyWhatTheyManage(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		lead := e.userWithRole("lead", rbac.RoleInternalUser)
		e.userWithRole("boss", rbac.RoleProxyAdmin)
		mem := e.userWithRole("mem", rbac.RoleInternalUser)
		e.mustOK(e.do(http.MethodPost, "/team/new", masterKey, map[string]any{"team_id": "t", "max_budget": 100, "members_with_roles": []any{
			map[string]any{"user_id": "lead", "role": "admin"}, map[string]any{"user_id": "mem", "role": "user"},
			map[string]any{"user_id": "boss", "role": "user"}}}))
		bossKey := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "boss", "team_id": "t"}))["key"].(string)
		ownerless := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"team_id": "t"}))["key"].(string)
		memKey := e.mustOK(e.do(http.MethodPost, "/key/generate", mem, map[string]any{"team_id": "t"}))["key"].(string)

		r := e.do(http.MethodGet, "/key/list?team_id=t", lead, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Contains(t, r.Body.String(), apikey.Hash(memKey))
		require.NotContains(t, r.Body.String(), apikey.Hash(bossKey))
		require.NotContains(t, r.Body.String(), apikey.Hash(ownerless))
		for _, k := range []string{bossKey, ownerless} {
			requireError(t, e.do(http.MethodGet, "/key/info?key="+apikey.Hash(k), lead, nil), http.StatusForbidden)
		}
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/key/info?key="+apikey.Hash(memKey), lead, nil).Code)

		before := snapshot(t, e)
		requireError(t, e.do(http.MethodPost, "/team/member_update", lead, map[string]any{"team_id": "t", "user_id": "lead", "max_budget_in_team": 99999}), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/team/member_update", lead, map[string]any{"team_id": "t", "user_id": "mem", "max_budget_in_team": 101}), http.StatusForbidden)
		require.Equal(t, before, snapshot(t, e))
		e.mustOK(e.do(http.MethodPost, "/team/member_update", lead, map[string]any{"team_id": "t", "user_id": "mem", "max_budget_in_team": 50}))
	})
}

// TestSpendReportTokenBounds (red team): token counts that would overflow
// their sum are refused.
func TestSpendReportTokenBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	k := e.userWithRole("u", rbac.RoleInternalUser)
	r := e.do(http.MethodPost, "/spend/report", masterKey, map[string]any{"request_id": "r", "api_key": k, "spend": 1,
		"prompt_tokens": int64(9223372036854775807), "completion_tokens": 2})
	requireError(t, r, http.StatusBadRequest)
}

// TestVerifyMethodHeadersOnlyNarrow: a method header from a proxy Keygate
// does not trust is still checked, so it can only make the decision
// stricter; and since nginx's auth_request and Traefik ask with GET
// whatever the client used, a route that takes a model in its body needs
// the model established for a model-restricted credential unless a trusted
// proxy said the client's method.
func TestVerifyMethodHeadersOnlyNarrow(t *testing.T) {
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, db.open(t))
			e.userWithRole("ivy", rbac.RoleInternalUser)
			key := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"models": []string{"gpt-4o"}}))["key"].(string)
			free := e.mustOK(e.do(http.MethodPost, "/key/generate", masterKey, map[string]any{}))["key"].(string)
			readOnly := e.mustOK(e.do("POST", "/key/generate", masterKey, map[string]any{"user_id": "ivy", "key_type": "read_only"}))["key"].(string)
			chat := "/auth/verify/v1/chat/completions"
			post := map[string]string{"X-Original-Method": "POST"}
			cases := []struct {
				name       string
				method     string
				path       string
				hdr        map[string]string
				want, free int
			}{
				{"untrusted X-Original-Method POST, no body", "GET", chat, post, 403, 200},
				{"untrusted X-Forwarded-Method POST, no body", "GET", chat, map[string]string{"X-Forwarded-Method": "post"}, 403, 200},
				{"untrusted X-Original-Method GET does not settle the method", "GET", chat, map[string]string{"X-Original-Method": "GET"}, 403, 200},
				{"no method header: the subrequest's GET proves nothing", "GET", chat, nil, 403, 200},
				{"HEAD subrequest", "HEAD", chat, nil, 403, 200},
				{"embeddings", "GET", "/auth/verify/v1/embeddings", nil, 403, 200},
				{"route from an untrusted header", "GET", "/auth/verify", map[string]string{"X-Original-URI": "/v1/chat/completions"}, 403, 200},
				// A ?model= must be allowed, but establishes the model only where
				// the upstream takes it from the query (realtime): an outside test
				// ran a Vertex AI endpoint and an assistant's run by adding
				// ?model=<allowed> (with Envoy's path_prefix the client writes it).
				{"model on verify's own query: names, does not establish", "GET", chat + "?model=gpt-4o", post, 403, 200},
				{"a disallowed model on the query", "GET", chat + "?model=gpt-5", post, 403, 200},
				{"realtime takes its model from the query", "GET", "/auth/verify/v1/realtime?model=gpt-4o", nil, 200, 200},
				{"realtime, a disallowed model", "GET", "/auth/verify/v1/realtime?model=gpt-5", nil, 403, 200},
				{"realtime, an Azure deployment beside an allowed model", "GET", "/auth/verify/v1/realtime?model=gpt-4o&deployment=gpt-5", nil, 403, 200},
				{"a run on the query's model", "GET", "/auth/verify/v1/threads/runs?model=gpt-4o", post, 403, 200},
				{"a Vertex AI endpoint on the query's model", "GET", "/auth/verify/vertex_ai/v1/projects/p/locations/l/endpoints/1:predict?model=gpt-4o", post, 403, 200},
				{"Interactions with no model", "GET", "/auth/verify/v1beta/interactions", post, 403, 200},
				{"a route that names no model", "GET", "/auth/verify/v1/models", post, 200, 200},
				{"a route that names no model, no header", "GET", "/auth/verify/v1/models", nil, 200, 200},
			}
			for _, c := range cases {
				r := e.verifyAs(c.method, c.path, key, c.hdr, "")
				require.Equal(t, c.want, r.Code, "%s: %s", c.name, r.Body.String())
				if c.want == 403 && c.method != "HEAD" && !strings.Contains(c.path, "model=") {
					require.Contains(t, r.Body.String(), "Cannot tell which model", c.name)
				}
				r = e.verifyAs(c.method, c.path, free, c.hdr, "")
				require.Equal(t, c.free, r.Code, "%s (unrestricted key): %s", c.name, r.Body.String())
			}
			// Batches run the models their uploaded file names: a restricted
			// key may not create one, whatever model its body claims.
			batch := map[string]string{"Content-Type": "application/json", "X-Original-Method": "POST"}
			for _, p := range []string{"/auth/verify/v1/batches", "/auth/verify/v1/files"} {
				r := e.verifyAs("POST", p, key, batch, `{"model":"gpt-4o","input_file_id":"file-1","endpoint":"/v1/chat/completions"}`)
				require.Equal(t, 403, r.Code, "%s: %s", p, r.Body.String())
				require.Equal(t, 200, e.verifyAs("POST", p, free, batch, `{"input_file_id":"file-1"}`).Code, p)
			}
			// A read_only key only reads: a claimed POST makes the request
			// one that is not a read.
			require.Equal(t, 200, e.verifyAs("GET", "/auth/verify/v1/models", readOnly, nil, "").Code)
			require.Equal(t, 403, e.verifyAs("GET", "/auth/verify/v1/models", readOnly, post, "").Code)

			trusted := newEnvWith(t, db.open(t), func(o *app.Options) { o.TrustedProxies = []string{"192.0.2.0/24"} })
			tk := trusted.mustOK(trusted.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"models": []string{"gpt-4o"}}))["key"].(string)
			via := func(hdr map[string]string) int {
				h := map[string]string{"X-Original-URI": "/v1/chat/completions"}
				for k, v := range hdr {
					h[k] = v
				}
				return trusted.verifyAs("GET", "/auth/verify", tk, h, "").Code
			}
			require.Equal(t, 403, via(nil), "a trusted proxy that omits the method")
			require.Equal(t, 403, via(post))
			require.Equal(t, 200, via(map[string]string{"X-Original-Method": "GET"}), "a trusted proxy says the client sent GET")
			require.Equal(t, 403, via(map[string]string{"X-Forwarded-Method": "GET"}), "only nginx's own method header settles an nginx route")
			require.Equal(t, 403, via(map[string]string{"X-Original-Method": "GET", "X-Forwarded-Method": "POST"}), "every method named counts")
			require.Equal(t, 200, via(map[string]string{"X-Original-Method": "POST", "X-Keygate-Model": "gpt-4o"}))
		})
	}
}
