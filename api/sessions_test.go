package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/rbac"
)

// login posts /v2/login and returns the JSON answer and the cookies set.
func (e *testEnv) login(user, pass string) (response, map[string]string) {
	e.t.Helper()
	r := e.doHeaders(http.MethodPost, "/v2/login", map[string]string{"Content-Type": "application/json"},
		`{"username":`+jsonStr(user)+`,"password":`+jsonStr(pass)+`}`)
	cookies := map[string]string{}
	for _, c := range (&http.Response{Header: r.Hdr}).Cookies() {
		cookies[c.Name] = c.Value
	}
	return r, cookies
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// setPassword gives a user a password through the admin API.
func (e *testEnv) setPassword(id, pw string) {
	e.t.Helper()
	r := e.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": id, "password": pw})
	require.Equal(e.t, http.StatusOK, r.Code, r.Body.String())
}

func TestPasswordLogin(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("lena", rbac.RoleInternalUser)
		e.setPassword("lena", "correct horse battery")

		// JSON login: token in the body, HttpOnly cookie, CSRF token
		r, cookies := e.login("LENA@example.com", "correct horse battery")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		body := r.JSON(t)
		tok := body["token"].(string)
		require.Equal(t, tok, cookies["keygate_session"])
		require.Equal(t, "internal_user", body["user_role"])
		setCookie := strings.Join(r.Hdr.Values("Set-Cookie"), "\n")
		require.Contains(t, setCookie, "HttpOnly")
		require.Contains(t, setCookie, "SameSite=Lax")
		require.Contains(t, setCookie, "Path=/")

		// the token works as a bearer on management routes and /auth/verify
		r = e.do(http.MethodGet, "/user/info", tok, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "lena", r.JSON(t)["user_id"])
		r = e.do(http.MethodGet, "/auth/verify", tok, nil)
		require.Equal(t, http.StatusOK, r.Code)
		require.Equal(t, "lena", r.Hdr.Get("X-Keygate-User-Id"))
		require.Equal(t, "internal_user", r.Hdr.Get("X-Keygate-User-Role"))
		r = e.do(http.MethodPost, "/key/generate", tok, map[string]any{"key_alias": "from-session"})
		require.Equal(t, http.StatusOK, r.Code, "bearer-authenticated writes need no CSRF token: %s", r.Body.String())

		// form login: 303 to /ui/ with the cookie
		r = e.doHeaders(http.MethodPost, "/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			url.Values{"username": {"lena@example.com"}, "password": {"correct horse battery"}}.Encode())
		require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String())
		require.Equal(t, "/ui/?login=success", r.Hdr.Get("Location"))
		require.Contains(t, r.Hdr.Get("Set-Cookie"), "keygate_session=")

		// failures: same status, same message, whether or not the user exists
		dummies := e.app.DummyVerifications()
		bad1, _ := e.login("lena@example.com", "wrong password!")
		bad2, _ := e.login("nobody@example.com", "wrong password!")
		m1 := requireError(t, bad1, http.StatusUnauthorized)
		m2 := requireError(t, bad2, http.StatusUnauthorized)
		require.Equal(t, m1["message"], m2["message"])
		require.Equal(t, dummies+1, e.app.DummyVerifications(), "an unknown user must cost one full (dummy) hash")

		// the master key is never a password; the bootstrap admin logs in
		bad3, _ := e.login("admin", masterKey)
		requireError(t, bad3, http.StatusUnauthorized)
		r, _ = e.login("admin@example.com", adminPassword)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "proxy_admin", r.JSON(t)["user_role"])
		claims := decodeClaims(t, r.JSON(t)["token"].(string))
		require.Contains(t, claims["scope"], "litellm_proxy_admin")
		require.NotContains(t, decodeClaims(t, tok)["scope"], "litellm_proxy_admin")
		for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "email", "role", "login_method"} {
			require.Contains(t, claims, c)
		}

		// bad input
		requireError(t, e.doHeaders(http.MethodPost, "/v2/login", map[string]string{"Content-Type": "application/json"}, `{"username":1}`), 400)
		requireError(t, e.doHeaders(http.MethodPost, "/v2/login", map[string]string{"Content-Type": "application/json"}, `{}`), 400)
	})
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("max", rbac.RoleInternalUser)
		e.setPassword("max", "the right password")
		for i := 0; i < 4; i++ {
			r, _ := e.login("max@example.com", "wrong-"+itoa(i)+"-password")
			requireError(t, r, http.StatusUnauthorized)
		}
		r, _ := e.login("max@example.com", "wrong-5-password")
		requireError(t, r, http.StatusTooManyRequests)
		require.NotEmpty(t, r.Hdr.Get("Retry-After"))
		// locked even with the right password, until the window passes
		r, _ = e.login("max@example.com", "the right password")
		requireError(t, r, http.StatusTooManyRequests)
		e.now.Advance(15*time.Minute + time.Second)
		r, _ = e.login("max@example.com", "the right password")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	})
}

// TestLockoutSharedAcrossReplicas: failures counted by one instance lock
// the account on another instance using the same PostgreSQL.
func TestLockoutSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := dbtestPostgres(t)
	a := newEnv(t, openStore(t, pgOptions(url)))
	b := newEnv(t, openStore(t, pgOptions(url)))
	a.userWithRole("rio", rbac.RoleInternalUser)
	a.setPassword("rio", "rio's real password")
	for i := 0; i < 5; i++ {
		env := a
		if i%2 == 1 {
			env = b
		}
		env.login("rio@example.com", "nope-nope-"+itoa(i))
	}
	r, _ := b.login("rio@example.com", "rio's real password")
	requireError(t, r, http.StatusTooManyRequests)
	r, _ = a.login("rio@example.com", "rio's real password")
	requireError(t, r, http.StatusTooManyRequests)
}

func TestCSRFAndCookies(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("cora", rbac.RoleInternalUser)
		e.setPassword("cora", "cora's password")
		r, cookies := e.login("cora@example.com", "cora's password")
		require.Equal(t, http.StatusOK, r.Code)
		csrf := r.JSON(t)["csrf_token"].(string)
		require.Equal(t, csrf, cookies["keygate_csrf"])
		cookie := "keygate_session=" + cookies["keygate_session"]

		before := snapshot(t, e)
		for _, hdr := range []map[string]string{
			{"Cookie": cookie, "Content-Type": "application/json"},
			{"Cookie": cookie, "Content-Type": "application/json", "X-CSRF-Token": "forged"},
			{"Cookie": cookie, "Content-Type": "application/json", "X-CSRF-Token": csrf + "x"},
		} {
			r := e.doHeaders(http.MethodPost, "/key/generate", hdr, `{"key_alias":"csrf"}`)
			requireError(t, r, http.StatusForbidden)
		}
		require.Equal(t, before, snapshot(t, e), "a cookie POST without a valid CSRF token changed something")
		// reads need no token; writes with the token work
		require.Equal(t, http.StatusOK, e.doHeaders(http.MethodGet, "/key/list", map[string]string{"Cookie": cookie}, "").Code)
		r = e.doHeaders(http.MethodPost, "/key/generate", map[string]string{"Cookie": cookie, "Content-Type": "application/json", "X-CSRF-Token": csrf}, `{"key_alias":"csrf"}`)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		// a form field works too
		r = e.doHeaders(http.MethodPost, "/session/logout", map[string]string{"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}, "csrf_token="+url.QueryEscape(csrf))
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Contains(t, strings.Join(r.Hdr.Values("Set-Cookie"), ";"), "Max-Age=0")
	})
}

func TestTokenRefreshWhileSessionLives(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("tia", rbac.RoleInternalUser)
		e.setPassword("tia", "tia's password!")
		r, cookies := e.login("tia@example.com", "tia's password!")
		require.Equal(t, http.StatusOK, r.Code)
		tok := cookies["keygate_session"]
		e.now.Advance(20 * time.Minute) // past the 15-minute token, inside the 24-hour session
		requireError(t, e.do(http.MethodGet, "/user/info", tok, nil), http.StatusUnauthorized)
		// the browser's refresh cookie renews it (the expired token alone does not: abuse_test.go)
		r = e.doHeaders(http.MethodGet, "/user/info", map[string]string{"Cookie": cookieHeader(cookies)}, "")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		fresh := ""
		for _, c := range (&http.Response{Header: r.Hdr}).Cookies() {
			if c.Name == "keygate_session" {
				fresh = c.Value
			}
		}
		require.NotEmpty(t, fresh, "a new token is issued")
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", fresh, nil).Code)
		// the API refresh route does the same for bearer clients
		r = e.do(http.MethodPost, "/session/refresh", fresh, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		// past the session's life nothing refreshes
		e.now.Advance(25 * time.Hour)
		requireError(t, e.doHeaders(http.MethodGet, "/user/info", map[string]string{"Cookie": cookieHeader(cookies)}, ""), http.StatusUnauthorized)
		// a refresh cookie of another session does not renew this one
		e.now.Advance(-25 * time.Hour)
		_, other := e.login("tia@example.com", "tia's password!")
		mixed := "keygate_session=" + tok + "; keygate_refresh=" + other["keygate_refresh"]
		requireError(t, e.doHeaders(http.MethodGet, "/user/info", map[string]string{"Cookie": mixed}, ""), http.StatusUnauthorized)
	})
}

func TestJWTAttacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("eve", rbac.RoleInternalUser)
	e.setPassword("eve", "eve's password!")
	r, _ := e.login("eve@example.com", "eve's password!")
	tok := r.JSON(t)["token"].(string)
	parts := strings.Split(tok, ".")
	enc := func(m map[string]any) string {
		b, _ := json.Marshal(m)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	claims := decodeClaims(t, tok)
	header := map[string]any{}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, json.Unmarshal(hb, &header))

	admin := map[string]any{}
	for k, v := range claims {
		admin[k] = v
	}
	admin["role"] = "proxy_admin"
	admin["scope"] = "openid litellm_proxy_admin"
	none := map[string]any{"alg": "none", "typ": "JWT", "kid": header["kid"]}
	hs := map[string]any{"alg": "HS256", "typ": "JWT", "kid": header["kid"]}
	wrongKid := map[string]any{"alg": header["alg"], "typ": "JWT", "kid": "not-a-kid"}
	other := newEnv(t, databases()[0].open(t)) // another deployment: other keys
	other.userWithRole("eve", rbac.RoleInternalUser)
	other.setPassword("eve", "eve's password!")
	r, _ = other.login("eve@example.com", "eve's password!")
	foreign := r.JSON(t)["token"].(string)

	attacks := map[string]string{
		"alg none":           enc(none) + "." + enc(admin) + ".",
		"HS256 forged":       enc(hs) + "." + enc(admin) + "." + parts[2],
		"tampered role":      parts[0] + "." + enc(admin) + "." + parts[2],
		"wrong kid":          enc(wrongKid) + "." + parts[1] + "." + parts[2],
		"foreign deployment": foreign,
		"truncated":          parts[0] + "." + parts[1],
	}
	for name, bad := range attacks {
		r := e.do(http.MethodGet, "/user/info", bad, nil)
		require.Equal(t, http.StatusUnauthorized, r.Code, "%s: %s", name, r.Body.String())
		r = e.do(http.MethodGet, "/auth/verify", bad, nil)
		require.Equal(t, http.StatusUnauthorized, r.Code, name)
	}
	e.now.Advance(16 * time.Minute)
	r = e.do(http.MethodGet, "/auth/verify", tok, nil)
	require.Equal(t, "expired_key", requireError(t, r, http.StatusUnauthorized)["type"])
}

// TestJWKSIndependentVerifier: a proxy can validate Keygate sessions from
// the published discovery document and JWKS alone (go-oidc, as a LiteLLM
// or Envoy JWT filter would), across a signing-key rotation.
func TestJWKSIndependentVerifier(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	srvURL := srv.URL
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.Issuer = srvURL })
	srv.Config.Handler = e.h
	a := e.app
	e.userWithRole("jo", rbac.RoleInternalUser)
	e.setPassword("jo", "jo's password!!")
	r, _ := e.login("jo@example.com", "jo's password!!")
	tok := r.JSON(t)["token"].(string)

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srvURL)
	require.NoError(t, err, "discovery document")
	verifier := provider.Verifier(&oidc.Config{ClientID: "keygate", SupportedSigningAlgs: []string{"ES256"}})
	idt, err := verifier.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, "jo", idt.Subject)

	require.NoError(t, a.RotateSigningKey(ctx))
	r, _ = e.login("jo@example.com", "jo's password!!")
	tok2 := r.JSON(t)["token"].(string)
	require.NotEqual(t, decodeHeader(t, tok)["kid"], decodeHeader(t, tok2)["kid"])
	fresh := oidc.NewVerifier(srvURL, oidc.NewRemoteKeySet(ctx, srvURL+"/.well-known/jwks.json"),
		&oidc.Config{ClientID: "keygate", SupportedSigningAlgs: []string{"ES256"}})
	_, err = fresh.Verify(ctx, tok)
	require.NoError(t, err, "a token signed before rotation stays valid until it expires")
	_, err = fresh.Verify(ctx, tok2)
	require.NoError(t, err)
	_, err = fresh.Verify(ctx, tok[:len(tok)-2]+"AA")
	require.Error(t, err)
}

func decodeHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestLogoutRedirects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("lou", rbac.RoleInternalUser)
	e.setPassword("lou", "lou's password!")
	r, cookies := e.login("lou@example.com", "lou's password!")
	tok := r.JSON(t)["token"].(string)
	form := map[string]string{"Cookie": cookieHeader(cookies), "Content-Type": "application/x-www-form-urlencoded"}

	r = e.doHeaders(http.MethodPost, "/ui/logout?redirect=https://evil.example/phish", form, "csrf_token="+url.QueryEscape(cookies["keygate_csrf"]))
	require.Equal(t, http.StatusSeeOther, r.Code, r.Body.String())
	require.Equal(t, "https://intranet.example/bye", r.Hdr.Get("Location"), "attacker redirect ignored, PROXY_LOGOUT_URL used")
	requireError(t, e.do(http.MethodGet, "/user/info", tok, nil), http.StatusUnauthorized)
	r = e.doHeaders(http.MethodPost, "/ui/logout?redirect=https://allowed.example/after", nil, "")
	require.Equal(t, "https://allowed.example/after", r.Hdr.Get("Location"))
	r = e.doHeaders(http.MethodGet, "/ui/logout?redirect=//evil.example", nil, "")
	require.Equal(t, "https://intranet.example/bye", r.Hdr.Get("Location"))
	// API logout with a key is refused; with a session it revokes
	key := e.userWithRole("kai", rbac.RoleInternalUser)
	requireError(t, e.do(http.MethodPost, "/session/logout", key, nil), http.StatusForbidden)
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("pam", rbac.RoleInternalUser)
		e.setPassword("pam", "old password 1")
		r1, _ := e.login("pam@example.com", "old password 1")
		r2, _ := e.login("pam@example.com", "old password 1")
		t1, t2 := r1.JSON(t)["token"].(string), r2.JSON(t)["token"].(string)
		requireError(t, e.do(http.MethodPost, "/user/password/change", t1, map[string]any{"current_password": "wrong", "new_password": "new password 2"}), 400)
		requireError(t, e.do(http.MethodPost, "/user/password/change", t1, map[string]any{"current_password": "old password 1", "new_password": "short"}), 400)
		requireError(t, e.do(http.MethodPost, "/user/password/change", masterKey, map[string]any{"current_password": "x", "new_password": "new password 2"}), 403)
		r := e.do(http.MethodPost, "/user/password/change", t1, map[string]any{"current_password": "old password 1", "new_password": "new password 2"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", t1, nil).Code, "the calling session stays")
		requireError(t, e.do(http.MethodGet, "/user/info", t2, nil), http.StatusUnauthorized)
		bad, _ := e.login("pam@example.com", "old password 1")
		requireError(t, bad, http.StatusUnauthorized)
		good, _ := e.login("pam@example.com", "new password 2")
		require.Equal(t, http.StatusOK, good.Code)
	})
}

// TestRevocationAcrossReplicas: logout, password change, role change and
// user deletion each invalidate existing tokens in both of two instances on
// one PostgreSQL within one second (LISTEN/NOTIFY).
func TestRevocationAcrossReplicas(t *testing.T) {
	// Not parallel: it asserts a cross-replica deadline, which the
	// parallel tests' CPU load on a small machine would stretch.
	url := dbtestPostgres(t)
	a := newEnvWithNotifier(t, url)
	b := newEnvWithNotifier(t, url)
	a.userWithRole("rex", rbac.RoleInternalUser)
	a.setPassword("rex", "rex's password!")
	newToken := func() string {
		r, _ := a.login("rex@example.com", "rex's password!")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		tok := r.JSON(t)["token"].(string)
		// warm both caches so the test proves invalidation, not a miss
		require.Equal(t, http.StatusOK, a.do(http.MethodGet, "/auth/verify", tok, nil).Code)
		require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/auth/verify", tok, nil).Code)
		return tok
	}
	gone := func(tok, what string) {
		require.Eventually(t, func() bool {
			return a.do(http.MethodGet, "/auth/verify", tok, nil).Code == 401 && b.do(http.MethodGet, "/auth/verify", tok, nil).Code == 401
		}, time.Second, 20*time.Millisecond, "%s must invalidate the token on both replicas within 1 s", what)
	}
	tok := newToken()
	require.Equal(t, http.StatusOK, a.do(http.MethodPost, "/session/logout", tok, nil).Code)
	gone(tok, "logout")

	tok = newToken()
	other := newToken()
	r := a.do(http.MethodPost, "/user/password/change", other, map[string]any{"current_password": "rex's password!", "new_password": "rex's new password"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	gone(tok, "password change")
	a.setPassword("rex", "rex's password!")

	tok = newToken()
	require.Equal(t, http.StatusOK, a.do(http.MethodPost, "/user/update", masterKey, map[string]any{"user_id": "rex", "user_role": "internal_user_viewer"}).Code)
	gone(tok, "role change")

	tok = newToken()
	key := b.do(http.MethodPost, "/key/generate", masterKey, map[string]any{"user_id": "rex"}).JSON(t)["key"].(string)
	require.Equal(t, http.StatusOK, a.do(http.MethodGet, "/auth/verify", key, nil).Code)
	require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/auth/verify", key, nil).Code)
	require.Equal(t, http.StatusOK, b.do(http.MethodPost, "/user/delete", masterKey, map[string]any{"user_ids": []string{"rex"}}).Code)
	gone(tok, "user delete")
	gone(key, "user delete (API key)")
}

// TestKeyDeleteAcrossReplicas: a key deleted through one instance is
// rejected by the other's /auth/verify within one second.
func TestKeyDeleteAcrossReplicas(t *testing.T) {
	// Not parallel: it asserts a cross-replica deadline, which the
	// parallel tests' CPU load on a small machine would stretch.
	url := dbtestPostgres(t)
	a := newEnvWithNotifier(t, url)
	b := newEnvWithNotifier(t, url)
	key := a.userWithRole("kit", rbac.RoleInternalUser)
	require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/auth/verify", key, nil).Code)
	require.Equal(t, http.StatusOK, a.do(http.MethodPost, "/key/delete", masterKey, map[string]any{"keys": []string{key}}).Code)
	require.Eventually(t, func() bool { return b.do(http.MethodGet, "/auth/verify", key, nil).Code == 401 },
		time.Second, 10*time.Millisecond)
}
