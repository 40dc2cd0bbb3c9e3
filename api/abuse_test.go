package api_test

// Regression tests for issue 14 ("Logins, links and sessions that resist
// abuse"): each test names the defect it pins down.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/smtptest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Defect 1: with PROXY_BASE_URL unset, a Host header chose the host of the
// mailed reset link (account takeover). Links that leave the server come
// from configuration only.
func TestLinksIgnoreHostHeader(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: sink.Port(), TLS: mail.TLSNone, From: "keygate@example.com"})
	require.NoError(t, err)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.Mailer = app.Mailer(m) }) // no BaseURL: the configured issuer
	e.userWithRole("vic", rbac.RoleProxyAdmin)
	evil := map[string]string{"Host": "attacker.example", "Content-Type": "application/json", "X-Forwarded-Host": "attacker.example"}

	r := e.doHeaders(http.MethodPost, "/user/forgot_password", evil, `{"user_email":"vic@example.com"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	body := sink.Wait(t, 1)[0].Text()
	require.NotContains(t, body, "attacker.example")
	require.Regexp(t, `http://keygate\.test/ui/reset-password\?token=[A-Za-z0-9_-]{43}`, body)

	hdr := map[string]string{"Host": "attacker.example", "Content-Type": "application/json", "Authorization": "Bearer " + masterKey}
	r = e.doHeaders(http.MethodPost, "/invitation/new", hdr, `{"user_id":"vic"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	link := r.JSON(t)["invitation_link"].(string)
	require.True(t, strings.HasPrefix(link, "http://keygate.test/ui/onboarding?id="), link)
	r = e.doHeaders(http.MethodGet, "/onboarding/get_token?invite_link="+invitationID(t, link), map[string]string{"Host": "attacker.example"}, "")
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.True(t, strings.HasPrefix(r.JSON(t)["login_url"].(string), "http://keygate.test/"), r.Body.String())
}

// Defect 3: lockout was check-then-act, so a concurrent burst had every
// guess evaluated and a right password inside the burst logged in.
func TestLockoutBurst(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("burst", rbac.RoleInternalUser)
		e.setPassword("burst", "the right password")
		const n, right = 200, 29
		codes := make([]int, n)
		var returned atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pw := "wrong guess " + itoa(i)
				if i == right {
					// the right password arrives ~30th, while the burst runs
					for returned.Load() < right {
						time.Sleep(time.Millisecond)
					}
					pw = "the right password"
				}
				r, _ := e.login("burst@example.com", pw)
				codes[i] = r.Code
				returned.Add(1)
			}()
		}
		close(start)
		wg.Wait()
		for i, c := range codes {
			// 503: on a loaded machine some of 200 simultaneous logins
			// queue longer than KEYGATE_DB_ACQUIRE_TIMEOUT and fail fast,
			// which is the bounded-database rule at work (never a 500).
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusOK, http.StatusServiceUnavailable}, c, "guess %d", i)
		}
		// every evaluated guess leaves an audit event, failed or not
		evaluated := 0
		for _, action := range []string{"login.failed", "login.succeeded"} {
			evs, _, err := e.store.ListAudit(t.Context(), store.AuditFilter{Action: action, Page: store.Page{Limit: 1000}})
			require.NoError(t, err)
			evaluated += len(evs)
		}
		t.Logf("%d concurrent guesses, %d evaluated", n, evaluated)
		require.NotEqual(t, http.StatusOK, codes[right], "the right password inside the burst logged in")
		require.LessOrEqual(t, evaluated, 5, "at most the limit is evaluated")
		r, _ := e.login("burst@example.com", "the right password")
		requireError(t, r, http.StatusTooManyRequests)
	})
}

// Defect 3: the e-mail and the user id of one account are one bucket.
func TestLockoutOneBucketPerAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("duo", rbac.RoleInternalUser)
	e.setPassword("duo", "duo's right password")
	for i := 0; i < 5; i++ {
		name := "duo@example.com"
		if i%2 == 1 {
			name = "duo"
		}
		r := e.loginFrom("198.51.100."+itoa(i+1), name, "wrong "+itoa(i))
		require.Contains(t, []int{401, 429}, r.Code)
	}
	for _, name := range []string{"duo", "DUO@example.com"} {
		r := e.loginFrom("198.51.100.77", name, "duo's right password")
		requireError(t, r, http.StatusTooManyRequests)
	}
}

// Defect 4: five failures from one address locked every account. Failures
// from an address now slow it down but never refuse another account's
// right password outright.
func TestPerIPFailuresDoNotLockOthers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var waits []time.Duration
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			return nil
		}
	})
	e.userWithRole("office", rbac.RoleInternalUser)
	e.setPassword("office", "office password")
	for i := 0; i < 30; i++ { // one NAT address, many mistyped accounts
		r, _ := e.login("someone-"+itoa(i)+"@example.com", "a wrong password")
		requireError(t, r, http.StatusUnauthorized)
	}
	r, _ := e.login("office@example.com", "office password")
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())

	// the address was slowed down progressively: nothing for the first
	// ten failures, then doubling waits up to a cap
	recorded := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
	got := recorded()
	require.Len(t, got, 21, "attempts 11..31 wait")
	require.Equal(t, 500*time.Millisecond, got[0])
	for i := 1; i < len(got); i++ {
		require.GreaterOrEqual(t, got[i], got[i-1])
	}
	require.Equal(t, 8*time.Second, got[len(got)-1])
	// another address is not slowed at all
	require.Equal(t, http.StatusOK, e.loginFrom("198.51.100.200", "office@example.com", "office password").Code)
	require.Len(t, recorded(), len(got))
}

// Defect 4: X-Forwarded-For without a trusted proxy means every client
// shares the proxy's address; say so once.
func TestForwardedForWithoutTrustedProxyWarns(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for i := 0; i < 3; i++ {
		e.doHeaders(http.MethodGet, "/health/liveliness", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "")
	}
	require.Equal(t, 1, strings.Count(logs.String(), "carry X-Forwarded-For"), "warned once: %s", logs.String())
	require.Contains(t, logs.String(), "KEYGATE_TRUSTED_PROXIES")
}

// redirectAttacks are return targets that browsers resolve off-site (or
// that only a lenient server would), per the WHATWG URL parser: tab and
// newline are removed anywhere, a backslash is a slash, "//" starts an
// authority, and encoded forms reach servers that decode before
// redirecting.
func redirectAttacks() []string {
	return []string{
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example/phish",
		"/\n/evil.example", "/\r/evil.example", "\t//evil.example", "/%09/evil.example", "/%2F/evil.example",
		"/%2f%2fevil.example", "/%5Cevil.example", "/%5cevil.example", "%2F%2Fevil.example", "https://evil.example/",
		"http:evil.example", "javascript:alert(1)", "//user@evil.example", "/@evil.example/..//x", " //evil.example",
		"/ui/\\\\evil.example", "//%09evil.example", "/%252F/evil.example", "data:text/html,x", "/\x00/evil.example",
		"/\u3000/evil.example", "https:/\\evil.example", "//evil.example@good", "/.//evil.example", "\x7f//evil.example",
		// Local, but not the UI: sign-ins land in the UI, by password and
		// by SSO alike (SSO once kept these).
		"/ui@evil.example", "/@evil.example", "/v1/models",
		// http.Redirect cleans a fragment before any query as a path.
		"/ui/x#/../../y", "/ui/a/b#/../../../key/generate",
	}
}

// Defect 5: return_to of the SSO flow became an open redirect
// (/%09/evil.example).
func TestSSOReturnToStaysOnOrigin(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t, service.SSOPolicy{})
	for _, target := range redirectAttacks() {
		b := browser(t)
		resp, err := b.Get(e.base + "/sso/login/test?return_to=" + url.QueryEscape(target))
		require.NoError(t, err)
		resp.Body.Close()
		if strings.ContainsRune(target, 0) {
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "NUL is refused at the edge")
			continue
		}
		require.Equal(t, http.StatusFound, resp.StatusCode, "%q", target)
		q := e.op.Login(t, resp.Header.Get("Location"))
		resp, err = b.Get(e.base + "/sso/callback?" + q.Encode())
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, target)
		require.Equal(t, "/ui/?login=success", resp.Header.Get("Location"), "return_to %q", target)
	}
	// a real local path is kept
	b := browser(t)
	resp, err := b.Get(e.base + "/sso/login/test?return_to=" + url.QueryEscape("/ui/keys?page=2"))
	require.NoError(t, err)
	resp.Body.Close()
	q := e.op.Login(t, resp.Header.Get("Location"))
	resp, err = b.Get(e.base + "/sso/callback?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "/ui/keys?page=2", resp.Header.Get("Location"))
}

// Defect 6: the logout allow-list was a string prefix.
func TestLogoutAllowlistComparesOrigins(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.LogoutURL = "https://intranet.example/bye"
		o.LogoutAllowlist = []string{"https://app.example.com", "https://portal.example.com/signed-out"}
	})
	for target, want := range map[string]string{
		"https://app.example.com":                          "https://app.example.com",
		"https://app.example.com/after?x=1":                "https://app.example.com/after?x=1",
		"https://APP.example.com:443/x":                    "https://APP.example.com:443/x",
		"https://portal.example.com/signed-out/thanks":     "https://portal.example.com/signed-out/thanks",
		"https://app.example.com.evil.example":             "https://intranet.example/bye",
		"https://app.example.com.evil.example/":            "https://intranet.example/bye",
		"https://app.example.com@evil.example":             "https://intranet.example/bye",
		"https://app.example.com:pw@evil.example/":         "https://intranet.example/bye",
		"https://app.example.com:8443/":                    "https://intranet.example/bye",
		"http://app.example.com/":                          "https://intranet.example/bye",
		"https://portal.example.com/signed-outside":        "https://intranet.example/bye",
		"https://portal.example.com/other":                 "https://intranet.example/bye",
		"https://app.example.com\\@evil.example":           "https://intranet.example/bye",
		"https://app.example.com%2F@evil.example":          "https://intranet.example/bye",
		"https://app.example.com\t.evil.example":           "https://intranet.example/bye",
		"//app.example.com":                                "https://intranet.example/bye",
		"https://portal.example.com/signed-out/../../evil": "https://intranet.example/bye",
		"https://portal.example.com/signed-out/%2e%2e/x":   "https://intranet.example/bye",
		"https://portal.example.com/signed-out/%2F/x":      "https://intranet.example/bye",
		"https://portal.example.com/signed-out//x":         "https://intranet.example/bye",
	} {
		r := e.doHeaders(http.MethodGet, "/ui/logout?redirect="+url.QueryEscape(target), nil, "")
		require.Equal(t, http.StatusSeeOther, r.Code, target)
		require.Equal(t, want, r.Hdr.Get("Location"), target)
	}
}

// Defect 7: login CSRF on LiteLLM's form login, and /v2/login took
// text/plain (which a cross-site form can send).
func TestLoginRefusesCrossSitePosts(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("cs", rbac.RoleInternalUser)
		e.setPassword("cs", "cs's password!")
		form := url.Values{"username": {"cs@example.com"}, "password": {"cs's password!"}}.Encode()
		formHdr := func(extra map[string]string) map[string]string {
			h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			for k, v := range extra {
				h[k] = v
			}
			return h
		}
		for name, extra := range map[string]map[string]string{
			"cross-site":               {"Sec-Fetch-Site": "cross-site"},
			"same-site sibling":        {"Sec-Fetch-Site": "same-site"},
			"foreign origin":           {"Origin": "https://evil.example"},
			"null origin":              {"Origin": "null"},
			"cross-site with origin":   {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			"lookalike origin by port": {"Origin": "http://example.com:8080"},
		} {
			r := e.doHeaders(http.MethodPost, "/login", formHdr(extra), form)
			requireError(t, r, http.StatusForbidden)
			require.NotContains(t, strings.Join(r.Hdr.Values("Set-Cookie"), ";"), "keygate_session=", name)
			r = e.doHeaders(http.MethodPost, "/v2/login", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": extra["Sec-Fetch-Site"], "Origin": extra["Origin"]},
				`{"username":"cs@example.com","password":"cs's password!"}`)
			requireError(t, r, http.StatusForbidden)
		}
		// same-origin browsers and non-browser clients still log in
		r := e.doHeaders(http.MethodPost, "/login", formHdr(map[string]string{"Sec-Fetch-Site": "same-origin"}), form)
		require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String())
		r = e.doHeaders(http.MethodPost, "/login", formHdr(map[string]string{"Origin": "http://example.com"}), form) // httptest's Host
		require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String())
		r = e.doHeaders(http.MethodPost, "/login", formHdr(nil), form)
		require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String())

		// JSON endpoints want a JSON body, as a cross-site form cannot send
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain; charset=application/json"} {
			r := e.doHeaders(http.MethodPost, "/v2/login", map[string]string{"Content-Type": ct}, `{"username":"cs@example.com","password":"cs's password!"}`)
			requireError(t, r, http.StatusUnsupportedMediaType)
			require.Empty(t, r.Hdr.Values("Set-Cookie"), ct)
			r = e.doHeaders(http.MethodPost, "/user/forgot_password", map[string]string{"Content-Type": ct}, `{"user_email":"cs@example.com"}`)
			requireError(t, r, http.StatusUnsupportedMediaType)
		}
		for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"} {
			r := e.doHeaders(http.MethodPost, "/v2/login", map[string]string{"Content-Type": ct}, `{"username":"cs@example.com","password":"cs's password!"}`)
			require.Equal(t, http.StatusOK, r.Code, ct+": "+r.Body.String())
		}
	})
}

// Defect 8: cookie-authenticated writes on forwarded /v1/* routes skipped
// CSRF.
func TestForwardedCookieWritesNeedCSRF(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	}))
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.Forwarding = app.Forwarding{URL: target, Key: "sk-upstream"} })
	e.userWithRole("fw", rbac.RoleInternalUser)
	e.setPassword("fw", "fw's password!")
	r, cookies := e.login("fw@example.com", "fw's password!")
	require.Equal(t, http.StatusOK, r.Code)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	ck := cookieHeader(cookies)
	for name, hdr := range map[string]map[string]string{
		"no token":        {"Cookie": ck, "Content-Type": "application/json"},
		"forged token":    {"Cookie": ck, "Content-Type": "application/json", "X-CSRF-Token": "forged"},
		"cross-site post": {"Cookie": ck, "Content-Type": "application/json", "X-CSRF-Token": cookies["keygate_csrf"], "Sec-Fetch-Site": "cross-site"},
	} {
		r := e.doHeaders(http.MethodPost, "/v1/chat/completions", hdr, body)
		requireError(t, r, http.StatusForbidden)
		require.Zero(t, calls.Load(), name)
	}
	r = e.doHeaders(http.MethodPost, "/v1/chat/completions", map[string]string{"Cookie": ck, "Content-Type": "application/json",
		"X-CSRF-Token": cookies["keygate_csrf"], "Sec-Fetch-Site": "same-origin"}, body)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	r = e.doHeaders(http.MethodPost, "/v1/chat/completions", map[string]string{"Authorization": "Bearer " + cookies["keygate_session"],
		"Content-Type": "application/json"}, body)
	require.Equal(t, http.StatusOK, r.Code, "a bearer token needs no CSRF token: %s", r.Body.String())
	require.Equal(t, int64(2), calls.Load())
}

// loginFrom posts /v2/login from the given client address.
func (e *testEnv) loginFrom(ip, user, pass string) response {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v2/login", strings.NewReader(`{"username":`+jsonStr(user)+`,"password":`+jsonStr(pass)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = ip + ":40000"
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return response{Code: w.Code, Body: w.Body, Hdr: w.Header()}
}

func cookieHeader(cookies map[string]string) string {
	var parts []string
	for k, v := range cookies {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "; ")
}

// Defect 8: GET /ui/logout ended a session without a token.
func TestLogoutNeedsPOSTWithCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("lo", rbac.RoleInternalUser)
	e.setPassword("lo", "lo's password!")
	r, cookies := e.login("lo@example.com", "lo's password!")
	tok := r.JSON(t)["token"].(string)
	ck := cookieHeader(cookies)

	r = e.doHeaders(http.MethodGet, "/ui/logout", map[string]string{"Cookie": ck}, "")
	require.Equal(t, http.StatusOK, r.Code, "GET shows a confirmation, it does not sign out")
	require.Contains(t, r.Body.String(), `method="post"`)
	require.Contains(t, r.Body.String(), `action="/ui/logout"`)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", tok, nil).Code, "still signed in after GET /ui/logout")

	for _, hdr := range []map[string]string{
		{"Cookie": ck, "Content-Type": "application/x-www-form-urlencoded"},
		{"Cookie": ck, "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": "forged"},
		{"Cookie": ck, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"},
	} {
		e.doHeaders(http.MethodPost, "/ui/logout", hdr, "csrf_token="+url.QueryEscape(hdr["X-CSRF-Token"]))
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", tok, nil).Code, "a forged logout signed out")
	}
	r = e.doHeaders(http.MethodPost, "/ui/logout", map[string]string{"Cookie": ck, "Content-Type": "application/x-www-form-urlencoded"},
		"csrf_token="+url.QueryEscape(cookies["keygate_csrf"]))
	require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String())
	requireError(t, e.do(http.MethodGet, "/user/info", tok, nil), http.StatusUnauthorized)
}

// Defect 9: the reset mail was sent inside the request, so the answer's
// time told whether the account exists. It now answers before the mail
// server is even reached.
func TestForgotPasswordAnswersBeforeMail(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	held := sink.Hold()
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: sink.Port(), TLS: mail.TLSNone, From: "keygate@example.com", Timeout: time.Minute})
	require.NoError(t, err)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.Mailer = app.Mailer(m) })
	e.userWithRole("slow", rbac.RoleInternalUser)
	answered := make(chan response, 1)
	go func() {
		answered <- e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "slow@example.com"})
	}()
	select {
	case r := <-answered:
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	case <-time.After(20 * time.Second):
		sink.Release()
		t.Fatal("the answer waited for the mail server")
	}
	<-held // the mail is on its way, after the answer
	sink.Release()
	require.Contains(t, sink.Wait(t, 1)[0].Text(), "/ui/reset-password?token=")
}

// Defect 10: password change had no attempt limit and failures were not
// audited.
func TestPasswordChangeLimitedAndAudited(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("pc", rbac.RoleInternalUser)
		e.setPassword("pc", "pc's real password")
		r, _ := e.login("pc@example.com", "pc's real password")
		tok := r.JSON(t)["token"].(string)
		for i := 0; i < 5; i++ {
			r := e.do(http.MethodPost, "/user/password/change", tok, map[string]any{"current_password": "guess " + itoa(i), "new_password": "a new password 1"})
			requireError(t, r, http.StatusBadRequest)
		}
		r = e.do(http.MethodPost, "/user/password/change", tok, map[string]any{"current_password": "pc's real password", "new_password": "a new password 1"})
		requireError(t, r, http.StatusTooManyRequests)
		require.NotEmpty(t, r.Hdr.Get("Retry-After"))
		evs, _, err := e.store.ListAudit(t.Context(), store.AuditFilter{Action: "user.password_change_failed", Page: store.Page{Limit: 100}})
		require.NoError(t, err)
		require.Len(t, evs, 5)
		require.Equal(t, "pc", evs[0].TargetID)
		e.now.Advance(15*time.Minute + time.Second)
		r, _ = e.login("pc@example.com", "pc's real password")
		tok = r.JSON(t)["token"].(string)

		// One bucket per account: wrong passwords at the sign-in and wrong
		// current passwords from a session add up to the same 5 (two
		// buckets gave a stolen session 5 more guesses).
		for i := range 3 {
			r, _ := e.login("pc@example.com", "sign-in guess "+itoa(i))
			requireError(t, r, http.StatusUnauthorized)
		}
		for i := range 2 {
			r := e.do(http.MethodPost, "/user/password/change", tok, map[string]any{"current_password": "guess " + itoa(i), "new_password": "a new password 1"})
			requireError(t, r, http.StatusBadRequest)
		}
		requireError(t, e.do(http.MethodPost, "/user/password/change", tok, map[string]any{"current_password": "pc's real password", "new_password": "a new password 1"}),
			http.StatusTooManyRequests)
		r, _ = e.login("pc@example.com", "pc's real password")
		requireError(t, r, http.StatusTooManyRequests)
		e.now.Advance(15*time.Minute + time.Second)
		r = e.do(http.MethodPost, "/user/password/change", tok, map[string]any{"current_password": "pc's real password", "new_password": "a new password 1"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	})
}

// Defect 11: an expired session JWT in the cookie was exchanged for a
// fresh one, so a stolen token lived as long as the session. Defect 14:
// the refreshed cookie had no Max-Age and the CSRF cookie was not renewed.
func TestExpiredTokenAloneIsNotExchanged(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("ex", rbac.RoleInternalUser)
		e.setPassword("ex", "ex's password!!")
		r, cookies := e.login("ex@example.com", "ex's password!!")
		require.Equal(t, http.StatusOK, r.Code)
		e.now.Advance(20 * time.Minute)
		stolen := "keygate_session=" + cookies["keygate_session"]
		r = e.doHeaders(http.MethodGet, "/user/info", map[string]string{"Cookie": stolen}, "")
		requireError(t, r, http.StatusUnauthorized)
		require.NotContains(t, strings.Join(r.Hdr.Values("Set-Cookie"), ";"), "keygate_session=ey")

		// the browser that logged in holds the refresh cookie too
		r = e.doHeaders(http.MethodGet, "/user/info", map[string]string{"Cookie": cookieHeader(cookies)}, "")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		set := map[string]*http.Cookie{}
		for _, c := range (&http.Response{Header: r.Hdr}).Cookies() {
			set[c.Name] = c
		}
		require.Contains(t, set, "keygate_session")
		require.Greater(t, set["keygate_session"].MaxAge, 0, "the refreshed cookie keeps the session's lifetime")
		require.True(t, set["keygate_session"].HttpOnly)
		require.Contains(t, set, "keygate_csrf", "the CSRF cookie is renewed with the session cookie")
		require.Equal(t, cookies["keygate_csrf"], set["keygate_csrf"].Value)
		require.Greater(t, set["keygate_csrf"].MaxAge, 0)
	})
}

func assertBadRequest(t *testing.T, r response, name string) bool {
	t.Helper()
	if r.Code != http.StatusBadRequest {
		t.Errorf("%s: got %d: %.200s", name, r.Code, r.Body.String())
		return false
	}
	requireError(t, r, http.StatusBadRequest)
	return true
}

// Defect 12: NUL bytes, invalid UTF-8 and overlong text reached the
// database and came back as 500s.
func TestTextValidatedAtEdge(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("tx", rbac.RoleInternalUser)
		long := strings.Repeat("a", 50000)
		type req struct {
			method, path, ct, body string
			auth                   bool
		}
		cases := []req{
			{http.MethodPost, "/v2/login", "application/json", `{"username":"a\u0000b@example.com","password":"whatever123"}`, false},
			{http.MethodPost, "/v2/login", "application/json", "{\"username\":\"a\xffb@example.com\",\"password\":\"whatever123\"}", false},
			{http.MethodPost, "/v2/login", "application/json", `{"username":"tx@example.com","password":"pass\u0000word"}`, false},
			{http.MethodPost, "/login", "application/x-www-form-urlencoded", "username=a%00b&password=whatever123", false},
			{http.MethodPost, "/login", "application/x-www-form-urlencoded", "username=a%FFb&password=whatever123", false},
			{http.MethodPost, "/user/forgot_password", "application/json", `{"user_email":"a\u0000b@example.com"}`, false},
			{http.MethodPost, "/user/forgot_password", "application/json", "{\"user_email\":\"\xc3\x28@example.com\"}", false},
			{http.MethodPost, "/user/reset_password", "application/json", `{"token":"a\u0000","new_password":"whatever123"}`, false},
			{http.MethodPost, "/onboarding/claim_token", "application/json", `{"invitation_link":"\u0000","password":"whatever123"}`, false},
			{http.MethodGet, "/onboarding/get_token?invite_link=%00", "", "", false},
			{http.MethodGet, "/onboarding/get_token?invite_link=%FF", "", "", false},
			{http.MethodGet, "/user/info?user_id=%00", "", "", true},
			{http.MethodGet, "/user/info?user_id=%FF%FE", "", "", true},
			{http.MethodGet, "/user/list?user_email=" + long, "", "", true},
			{http.MethodGet, "/user/list?user_ids=" + long, "", "", true},
			{http.MethodGet, "/key/list?key_alias=%00", "", "", true},
			{http.MethodGet, "/team/info?team_id=%C0%80", "", "", true},
			{http.MethodPost, "/user/new", "application/json", `{"user_id":"n\u0000ul"}`, true},
			{http.MethodPost, "/user/new", "application/json", `{"user_email":"x@example.com","metadata":{"k\u0000":"v"}}`, true},
			{http.MethodPost, "/team/new", "application/json", `{"team_alias":"a\u0000b"}`, true},
			{http.MethodPost, "/key/generate", "application/json", `{"key_alias":"` + long + `"}`, true},
			{http.MethodGet, "/ui/login?next=%00", "", "", false},
			{http.MethodGet, "/ui/reset-password?token=%FF", "", "", false},
		}
		before := snapshot(t, e)
		for _, c := range cases {
			hdr := map[string]string{}
			if c.ct != "" {
				hdr["Content-Type"] = c.ct
			}
			if c.auth {
				hdr["Authorization"] = "Bearer " + masterKey
			}
			r := e.doHeaders(c.method, c.path, hdr, c.body)
			name := c.method + " " + c.path[:min(len(c.path), 60)] + " " + c.body[:min(len(c.body), 60)]
			if !assertBadRequest(t, r, name) {
				continue
			}
		}
		require.Equal(t, before, snapshot(t, e))
	})
}
