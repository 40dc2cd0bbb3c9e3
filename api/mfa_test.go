package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/mfa"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/smtptest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// code is the TOTP code of secret at the test clock's time.
func (e *testEnv) code(secret string) string {
	e.t.Helper()
	c, err := mfa.TOTPCode(secret, mfa.TOTPStep(e.now.Now()))
	require.NoError(e.t, err)
	return c
}

// nextCode moves the clock to the next TOTP step and returns its code:
// each step's code is accepted once.
func (e *testEnv) nextCode(secret string) string {
	e.t.Helper()
	e.now.Advance(mfa.TOTPPeriod * time.Second)
	return e.code(secret)
}

// enableTOTP sets up and confirms TOTP from a session and returns the
// secret and the recovery codes.
func (e *testEnv) enableTOTP(session, password string) (string, []string) {
	e.t.Helper()
	r := e.do(http.MethodPost, "/user/mfa/totp/setup", session, nil)
	require.Equal(e.t, http.StatusOK, r.Code, r.Body.String())
	secret := r.JSON(e.t)["secret"].(string)
	r = e.do(http.MethodPost, "/user/mfa/totp/confirm", session, map[string]any{"code": e.code(secret), "password": password})
	require.Equal(e.t, http.StatusOK, r.Code, r.Body.String())
	var codes []string
	for _, c := range r.JSON(e.t)["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return secret, codes
}

// mfaRequired asserts the second-step answer and returns its token.
func mfaRequired(t *testing.T, r response, typ string) string {
	t.Helper()
	inner := requireError(t, r, http.StatusUnauthorized)
	require.Equal(t, typ, inner["type"], r.Body.String())
	tok, _ := r.JSON(t)["mfa_token"].(string)
	require.NotEmpty(t, tok)
	require.NotContains(t, strings.Join(r.Hdr.Values("Set-Cookie"), "\n"), "keygate_session=e", "no session before the second factor")
	return tok
}

func amrOf(t *testing.T, jwt string) []string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct {
		AMR []string `json:"amr"`
	}
	require.NoError(t, json.Unmarshal(raw, &claims))
	return claims.AMR
}

func (e *testEnv) auditActions(userID string) []string {
	e.t.Helper()
	evs, _, err := e.store.ListAudit(e.t.Context(), store.AuditFilter{TargetID: userID, Page: store.Page{Limit: 1000}})
	require.NoError(e.t, err)
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

// TestMFATOTPLifecycle is the whole life of a second factor over HTTP, on
// both databases: setup → confirm → a password alone is refused with
// mfa_required → a code completes the sign-in → the same code replayed is
// refused → wrong codes lock out like passwords → a recovery code works
// once → an admin resets the user's factors.
func TestMFATOTPLifecycle(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		apiKey := e.userWithRole("mia", rbac.RoleInternalUser)
		viewerKey := e.userWithRole("vic", rbac.RoleProxyAdminViewer)
		e.setPassword("mia", "mia-password-1")
		r, _ := e.login("mia@example.com", "mia-password-1")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		sess := r.JSON(t)["token"].(string)
		require.Equal(t, []string{"pwd"}, amrOf(t, sess), "a password session says so")
		require.Equal(t, []any{"pwd"}, r.JSON(t)["amr"])

		// Only a login session manages second factors, never an API key.
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/setup", apiKey, nil), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/setup", masterKey, nil), http.StatusForbidden)
		st := e.do(http.MethodGet, "/user/mfa", sess, nil)
		require.Equal(t, http.StatusOK, st.Code, st.Body.String())
		require.Equal(t, false, st.JSON(t)["enabled"])

		// setup: the secret, its otpauth URI and a QR code
		r = e.do(http.MethodPost, "/user/mfa/totp/setup", sess, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, "no-store", r.Hdr.Get("Cache-Control"))
		body := r.JSON(t)
		secret := body["secret"].(string)
		require.Regexp(t, `^[A-Z2-7]{32}$`, secret)
		require.Contains(t, body["otpauth_uri"], "otpauth://totp/Keygate:mia@example.com?")
		png, err := base64.StdEncoding.DecodeString(body["qr_png_base64"].(string))
		require.NoError(t, err)
		require.Equal(t, "\x89PNG", string(png[:4]))
		// not a factor before it is confirmed
		lr, _ := e.login("mia", "mia-password-1")
		require.Equal(t, http.StatusOK, lr.Code, "an unconfirmed secret asks for nothing")
		// the secret is sealed at rest
		row, err := e.store.GetTOTP(t.Context(), "mia")
		require.NoError(t, err)
		require.NotContains(t, string(row.SecretSealed), secret)

		// confirm: a wrong code is refused, the right one answers ten recovery codes
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/confirm", sess, map[string]any{"code": "000000", "password": "mia-password-1"}), http.StatusBadRequest)
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/confirm", sess, map[string]any{"code": 123456}), http.StatusBadRequest)
		// The session alone cannot turn the app on: the password proves it is
		// the user (an outside test turned on its own app, then added a
		// passkey under it, with nothing but a leaked session token).
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/confirm", sess, map[string]any{"code": e.code(secret)}), http.StatusBadRequest)
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/confirm", sess, map[string]any{"code": e.code(secret), "password": "wrong-password-1"}), http.StatusBadRequest)
		r = e.do(http.MethodPost, "/user/mfa/totp/confirm", sess, map[string]any{"code": e.code(secret), "password": "mia-password-1"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		codes := r.JSON(t)["recovery_codes"].([]any)
		require.Len(t, codes, 10)
		for _, c := range codes {
			require.Regexp(t, `^[a-z2-7]{4}(-[a-z2-7]{4}){3}$`, c)
		}
		st = e.do(http.MethodGet, "/user/mfa", sess, nil)
		require.Equal(t, true, st.JSON(t)["enabled"])
		require.Equal(t, true, st.JSON(t)["totp"])
		require.EqualValues(t, 10, st.JSON(t)["recovery_codes_left"])
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/setup", sess, nil), http.StatusConflict)

		// a password alone is no longer enough, on /v2/login and /login
		r, cookies := e.login("mia@example.com", "mia-password-1")
		tok := mfaRequired(t, r, "mfa_required")
		require.Equal(t, []any{"totp", "recovery_code", "webauthn"}[:2], r.JSON(t)["mfa_methods"].([]any)[:2])
		require.Equal(t, tok, cookies["keygate_mfa"], "the browser keeps the pending sign-in, HttpOnly")
		require.Empty(t, cookies["keygate_session"])
		form := e.doHeaders(http.MethodPost, "/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			"username=mia%40example.com&password=mia-password-1")
		mfaRequired(t, form, "mfa_required")
		// the token is no credential anywhere
		requireError(t, e.do(http.MethodGet, "/user/info", tok, nil), http.StatusUnauthorized)
		require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/auth/verify", tok, nil).Code)

		// the code completes the sign-in
		code := e.nextCode(secret)
		r = e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "code": code})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		mfaSess := r.JSON(t)["token"].(string)
		require.Equal(t, []string{"pwd", "otp", "mfa"}, amrOf(t, mfaSess))
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", mfaSess, nil).Code)
		// the refreshed token keeps the methods
		rf := e.do(http.MethodPost, "/session/refresh", mfaSess, nil)
		require.Equal(t, http.StatusOK, rf.Code, rf.Body.String())
		require.Equal(t, []string{"pwd", "otp", "mfa"}, amrOf(t, rf.JSON(t)["token"].(string)))

		// the spent token is spent; the same code replayed is refused
		requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "code": e.nextCode(secret)}), http.StatusUnauthorized)
		r, _ = e.login("mia@example.com", "mia-password-1")
		tok2 := mfaRequired(t, r, "mfa_required")
		requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok2, "code": code}), http.StatusUnauthorized)
		// one call with the password and the code (scripts)
		r = e.do(http.MethodPost, "/v2/login", "", map[string]any{"username": "mia", "password": "mia-password-1", "otp": e.nextCode(secret)})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.Equal(t, []string{"pwd", "otp", "mfa"}, amrOf(t, r.JSON(t)["token"].(string)))

		// wrong codes lock out like passwords: the password took one
		// attempt of the five, the fourth wrong code fills the window
		r, _ = e.login("mia@example.com", "mia-password-1")
		tok3 := mfaRequired(t, r, "mfa_required")
		for i := range 3 {
			inner := requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok3, "code": "11111" + itoa(i)}),
				http.StatusUnauthorized)
			require.Equal(t, "Invalid code.", inner["message"])
		}
		locked := e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok3, "code": "999999"})
		requireError(t, locked, http.StatusTooManyRequests)
		require.NotEmpty(t, locked.Hdr.Get("Retry-After"))
		requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok3, "code": e.nextCode(secret)}),
			http.StatusTooManyRequests)
		r, _ = e.login("mia@example.com", "mia-password-1")
		requireError(t, r, http.StatusTooManyRequests)

		// after the window: a recovery code works, once
		e.now.Advance(16 * time.Minute)
		r, _ = e.login("mia@example.com", "mia-password-1")
		tok4 := mfaRequired(t, r, "mfa_required")
		rc := strings.ToUpper(codes[0].(string))
		r = e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok4, "code": rc})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		recSess := r.JSON(t)["token"].(string)
		require.Equal(t, []string{"pwd", "otp", "mfa"}, amrOf(t, recSess))
		r, _ = e.login("mia@example.com", "mia-password-1")
		tok5 := mfaRequired(t, r, "mfa_required")
		requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok5, "code": codes[0]}), http.StatusUnauthorized)
		st = e.do(http.MethodGet, "/user/mfa", recSess, nil)
		require.EqualValues(t, 9, st.JSON(t)["recovery_codes_left"])

		// an admin resets: viewers may not, the user's sessions end, the
		// password alone signs in again
		requireError(t, e.do(http.MethodPost, "/user/mfa/reset", viewerKey, map[string]any{"user_id": "mia"}), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/user/mfa/reset", masterKey, map[string]any{"user_id": "nobody"}), http.StatusNotFound)
		r = e.do(http.MethodPost, "/user/mfa/reset", masterKey, map[string]any{"user_id": "mia"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		requireError(t, e.do(http.MethodGet, "/user/info", recSess, nil), http.StatusUnauthorized)
		requireError(t, e.do(http.MethodGet, "/user/info", mfaSess, nil), http.StatusUnauthorized)
		requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok5, "code": e.nextCode(secret)}),
			http.StatusUnauthorized)
		r, _ = e.login("mia@example.com", "mia-password-1")
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())

		actions := e.auditActions("mia")
		for _, a := range []string{"mfa.totp_enabled", "login.mfa_required", "login.mfa_failed", "login.lockout", "mfa.recovery_code_used", "mfa.reset"} {
			require.Contains(t, actions, a)
		}
	})
}

// TestMFADisableNeedsCurrentFactor: turning the authenticator off needs a
// current code, and wrong codes there count toward the sign-in lockout.
func TestMFADisableNeedsCurrentFactor(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("dan", rbac.RoleInternalUser)
		e.setPassword("dan", "dan-password-1")
		r, _ := e.login("dan", "dan-password-1")
		sess := r.JSON(t)["token"].(string)
		secret, codes := e.enableTOTP(sess, "dan-password-1")

		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/disable", sess, map[string]any{}), http.StatusBadRequest)
		for range 4 {
			requireError(t, e.do(http.MethodPost, "/user/mfa/totp/disable", sess, map[string]any{"code": "123123"}), http.StatusBadRequest)
		}
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/disable", sess, map[string]any{"code": "123123"}), http.StatusTooManyRequests)
		r, _ = e.login("dan", "dan-password-1")
		requireError(t, r, http.StatusTooManyRequests)
		e.now.Advance(16 * time.Minute)
		r = e.do(http.MethodPost, "/v2/login", "", map[string]any{"username": "dan", "password": "dan-password-1", "otp": codes[0]})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		sess = r.JSON(t)["token"].(string)

		// new recovery codes need a current factor too; the old ones stop
		r = e.do(http.MethodPost, "/user/mfa/recovery_codes", sess, map[string]any{"code": codes[1]})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		fresh := r.JSON(t)["recovery_codes"].([]any)
		require.Len(t, fresh, 10)
		requireError(t, e.do(http.MethodPost, "/user/mfa/totp/disable", sess, map[string]any{"code": codes[2]}), http.StatusBadRequest)

		r = e.do(http.MethodPost, "/user/mfa/totp/disable", sess, map[string]any{"code": e.nextCode(secret)})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		st := e.do(http.MethodGet, "/user/mfa", sess, nil).JSON(t)
		require.Equal(t, false, st["enabled"])
		require.EqualValues(t, 0, st["recovery_codes_left"])
		r, _ = e.login("dan", "dan-password-1")
		require.Equal(t, http.StatusOK, r.Code)
		require.Contains(t, e.auditActions("dan"), "mfa.totp_disabled")
		require.Contains(t, e.auditActions("dan"), "mfa.recovery_codes_regenerated")
	})
}

// TestMFAPolicyRequiredRole: with KEYGATE_MFA_REQUIRED_ROLES, a user of
// such a role without a second factor who signs in with a password gets
// no session, only a token that sets one up; other roles sign in as
// before; the last factor cannot be removed.
func TestMFAPolicyRequiredRole(t *testing.T) {
	t.Parallel()
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			e := newEnvWith(t, db.open(t), func(o *app.Options) {
				o.MaxBodyBytes = 1 << 20
				o.MFARequiredRoles = []string{string(rbac.RoleProxyAdmin), string(rbac.RoleProxyAdminViewer)}
			})
			adaKey := e.userWithRole("ada", rbac.RoleProxyAdmin)
			e.setPassword("ada", "ada-password-1")
			e.userWithRole("ivan", rbac.RoleInternalUser)
			e.setPassword("ivan", "ivan-password-1")

			r, _ := e.login("ivan", "ivan-password-1")
			require.Equal(t, http.StatusOK, r.Code, "a role the policy does not name signs in with a password")

			r, cookies := e.login("ada", "ada-password-1")
			tok := mfaRequired(t, r, "mfa_setup_required")
			require.Equal(t, tok, cookies["keygate_mfa"])
			// the held-back sign-in reaches nothing
			requireError(t, e.do(http.MethodGet, "/user/info", tok, nil), http.StatusUnauthorized)
			requireError(t, e.do(http.MethodPost, "/key/generate", tok, map[string]any{}), http.StatusUnauthorized)
			require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/auth/verify", tok, nil).Code)
			requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "code": "123456"}), http.StatusUnauthorized)
			requireError(t, e.do(http.MethodPost, "/user/mfa/totp/setup", tok, nil), http.StatusUnauthorized)
			// her API key is a credential of its own, not a password sign-in
			require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", adaKey, nil).Code)
			// a token of another kind does not set anything up
			r, _ = e.login("ivan", "ivan-password-1")
			requireError(t, e.do(http.MethodPost, "/v2/login/mfa/totp/setup", "", map[string]any{"mfa_token": "made-up"}), http.StatusUnauthorized)

			r = e.do(http.MethodPost, "/v2/login/mfa/totp/setup", "", map[string]any{"mfa_token": tok})
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
			secret := r.JSON(t)["secret"].(string)
			requireError(t, e.do(http.MethodPost, "/v2/login/mfa/totp/confirm", "", map[string]any{"mfa_token": tok, "code": "000000"}),
				http.StatusBadRequest)
			r = e.do(http.MethodPost, "/v2/login/mfa/totp/confirm", "", map[string]any{"mfa_token": tok, "code": e.code(secret)})
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
			body := r.JSON(t)
			require.Len(t, body["recovery_codes"], 10)
			sess := body["token"].(string)
			require.Equal(t, []string{"pwd", "otp", "mfa"}, amrOf(t, sess))
			require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/user/info", sess, nil).Code)
			requireError(t, e.do(http.MethodPost, "/v2/login/mfa/totp/confirm", "", map[string]any{"mfa_token": tok, "code": e.nextCode(secret)}),
				http.StatusUnauthorized)

			// her only factor cannot go while the role requires one
			inner := requireError(t, e.do(http.MethodPost, "/user/mfa/totp/disable", sess, map[string]any{"code": e.nextCode(secret)}),
				http.StatusForbidden)
			require.Contains(t, inner["message"], "requires")
			// next time: the second step, as for anyone with a factor
			r, _ = e.login("ada", "ada-password-1")
			mfaRequired(t, r, "mfa_required")
			require.Contains(t, e.auditActions("ada"), "login.mfa_setup_required")
		})
	}
}

// TestMFALinksDoNotBypass: an invitation or reset link proves the
// mailbox, not the second factor: claiming one for a user with a factor,
// or of a role that requires one, still ends at the second step.
func TestMFALinksDoNotBypass(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.MaxBodyBytes = 1 << 20
		o.MFARequiredRoles = []string{string(rbac.RoleProxyAdmin)}
	})
	// an invited admin sets a password: the sign-in waits for a factor
	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_id": "root2", "user_email": "root2@example.com",
		"user_role": "proxy_admin", "auto_create_key": false})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	r = e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "root2"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	link := r.JSON(t)["invitation_link"].(string)
	r = e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": invitationID(t, link), "password": "root2-password"})
	mfaRequired(t, r, "mfa_setup_required")

	// a user with TOTP resets the password: the second step still comes
	e.userWithRole("lou", rbac.RoleInternalUser)
	e.setPassword("lou", "lou-password-1")
	lr, _ := e.login("lou", "lou-password-1")
	e.enableTOTP(lr.JSON(t)["token"].(string), "lou-password-1")
	tok := resetToken(t, e, "lou")
	r = e.do(http.MethodPost, "/user/reset_password", "", map[string]any{"token": tok, "new_password": "lou-password-2"})
	mfaRequired(t, r, "mfa_required")
	requireError(t, e.do(http.MethodGet, "/user/info", lr.JSON(t)["token"].(string), nil), http.StatusUnauthorized)
}

// resetToken makes a reset token for userID the way the mailed link
// does, through the service (no mail configured here).
func resetToken(t *testing.T, e *testEnv, userID string) string {
	t.Helper()
	tok := "reset-token-" + userID + "-0123456789abcdefghijklmnop"
	now := e.now.Now()
	require.NoError(t, e.store.CreateInvitation(t.Context(), &store.Invitation{IDHash: service.HashSecret(tok), UserID: userID,
		Purpose: store.PurposePasswordReset, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}))
	return tok
}

// TestMFANoticesMailed: every change to a user's second factors is
// mailed to them, after the change commits.
func TestMFANoticesMailed(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: sink.Port(), TLS: mail.TLSNone, From: "keygate@example.com"})
	require.NoError(t, err)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) { o.Mailer = app.Mailer(m) })
	e.userWithRole("nia", rbac.RoleInternalUser)
	e.setPassword("nia", "nia-password-1")
	r, _ := e.login("nia", "nia-password-1")
	_, codes := e.enableTOTP(r.JSON(t)["token"].(string), "nia-password-1")
	r, _ = e.login("nia", "nia-password-1")
	tok := mfaRequired(t, r, "mfa_required")
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "code": codes[0]}).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/user/mfa/reset", masterKey, map[string]any{"user_id": "nia"}).Code)
	msgs := sink.Wait(t, 3)
	want := []*regexp.Regexp{regexp.MustCompile(`authenticator app was turned on`), regexp.MustCompile(`recovery code was used on your account`),
		regexp.MustCompile(`administrator removed every second factor`)}
	var all []string
	for _, msg := range msgs {
		require.Equal(t, []string{"nia@example.com"}, msg.Rcpt)
		text := strings.ReplaceAll(msg.Text(), "=\r\n", "")
		require.Regexp(t, `(?m)^Subject: Security notice`, text)
		require.NotContains(t, text, codes[0], "no secret in the mail")
		all = append(all, text)
	}
	// the mails leave in the background, in any order
	for _, re := range want {
		require.Regexp(t, re, strings.Join(all, "\n"))
	}
}

// TestMFAAMRVerifiableFromJWKS: a proxy that validates session tokens
// itself, holding nothing but the published JWKS, reads how the user
// signed in (amr) and can demand a second factor (README, "Demanding MFA
// in the proxy"). An admin cannot reset their own factors.
func TestMFAAMRVerifiableFromJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("kim", rbac.RoleInternalUser)
	e.setPassword("kim", "kim-password-1")
	r, _ := e.login("kim", "kim-password-1")
	pwdOnly := r.JSON(t)["token"].(string)
	secret, _ := e.enableTOTP(pwdOnly, "kim-password-1")
	r = e.do(http.MethodPost, "/v2/login", "", map[string]any{"username": "kim", "password": "kim-password-1", "otp": e.nextCode(secret)})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	withMFA := r.JSON(t)["token"].(string)

	jwks := e.do(http.MethodGet, "/.well-known/jwks.json", "", nil)
	require.Equal(t, http.StatusOK, jwks.Code)
	var set struct {
		Keys []struct{ Kid, Kty, Crv, X, Y string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(jwks.Body.Bytes(), &set))
	keyFor := func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] && k.Kty == "EC" && k.Crv == "P-256" {
				x, _ := base64.RawURLEncoding.DecodeString(k.X)
				y, _ := base64.RawURLEncoding.DecodeString(k.Y)
				return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
			}
		}
		return nil, errors.New("unknown kid")
	}
	demandsMFA := func(raw string) bool {
		var claims struct {
			jwt.RegisteredClaims
			AMR []string `json:"amr"`
		}
		_, err := jwt.ParseWithClaims(raw, &claims, keyFor, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(testIssuer),
			jwt.WithAudience("keygate"), jwt.WithTimeFunc(e.now.Now))
		require.NoError(t, err)
		return slices.Contains(claims.AMR, "mfa")
	}
	require.False(t, demandsMFA(pwdOnly), "a password session is not MFA")
	require.True(t, demandsMFA(withMFA))

	r, _ = e.login("admin@example.com", adminPassword)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	requireError(t, e.do(http.MethodPost, "/user/mfa/reset", r.JSON(t)["token"].(string), map[string]any{"user_id": "admin@example.com"}),
		http.StatusBadRequest)
}

// TestMFABadInput: malformed second steps and passkey answers are 4xx
// with LiteLLM's error body, never a 500, and count as failures.
func TestMFABadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("bo", rbac.RoleInternalUser)
	e.setPassword("bo", "bo-password-1")
	r, _ := e.login("bo", "bo-password-1")
	e.enableTOTP(r.JSON(t)["token"].(string), "bo-password-1")
	r, _ = e.login("bo", "bo-password-1")
	tok := mfaRequired(t, r, "mfa_required")

	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok}), http.StatusBadRequest)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "code": "123456", "webauthn": map[string]any{}}),
		http.StatusBadRequest)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": []string{"x"}, "code": "1"}), http.StatusBadRequest)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": strings.Repeat("a", 5000), "code": "123456"}),
		http.StatusUnauthorized)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", `{"mfa_token":"`+tok+`","code":"12\u0000456"}`), http.StatusBadRequest)
	// a passkey answer without a begun ceremony, or a garbled one
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "webauthn": map[string]any{"id": "x"}}),
		http.StatusUnauthorized)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa/webauthn", "", map[string]any{"mfa_token": tok}), http.StatusBadRequest) // no passkey

	// passwordless: options bound to the configured host, a garbled answer refused
	r = e.do(http.MethodPost, "/v2/login/mfa/webauthn?passwordless=true", "", nil)
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	var begin struct {
		Token   string `json:"mfa_token"`
		Options struct {
			PublicKey struct {
				Challenge        string `json:"challenge"`
				RPID             string `json:"rpId"`
				UserVerification string `json:"userVerification"`
			} `json:"publicKey"`
		} `json:"options"`
	}
	require.NoError(t, json.Unmarshal(r.Body.Bytes(), &begin))
	require.Equal(t, "keygate.test", begin.Options.PublicKey.RPID)
	require.Equal(t, "required", begin.Options.PublicKey.UserVerification)
	require.NotEmpty(t, begin.Options.PublicKey.Challenge)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": begin.Token, "webauthn": map[string]any{
		"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": map[string]any{"clientDataJSON": "e30", "authenticatorData": "AAAA",
			"signature": "AAAA", "userHandle": "AAAA"}}}), http.StatusUnauthorized)
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": begin.Token, "code": "123456"}), http.StatusBadRequest)
	// a cross-site browser cannot drive the second step
	cross := e.doHeaders(http.MethodPost, "/v2/login/mfa", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
		`{"mfa_token":"`+tok+`","code":"123456"}`)
	requireError(t, cross, http.StatusForbidden)
}

// TestPasswordlessBeginLimited: beginning a passwordless sign-in needs no
// credential, so one client address gets a bounded number per minute.
func TestPasswordlessBeginLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	for i := range 30 {
		r := e.do(http.MethodPost, "/v2/login/mfa/webauthn?passwordless=true", "", nil)
		require.Equal(t, http.StatusOK, r.Code, "begin %d: %s", i, r.Body.String())
	}
	requireError(t, e.do(http.MethodPost, "/v2/login/mfa/webauthn?passwordless=true", "", nil), http.StatusTooManyRequests)
	e.now.Advance(61 * time.Second)
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/v2/login/mfa/webauthn?passwordless=true", "", nil).Code)
}

// TestAddingAPasskeyNeedsProof: a passkey signs in on its own, so a
// session token alone must not add one. An outside test added a passkey
// with nothing but a victim's session JWT (no cookie, code or password)
// and signed in with it after the victim logged out and changed their
// password. Now the signed-in user proves it: their password while they
// have no second factor, a current code once they have one.
func TestAddingAPasskeyNeedsProof(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("vic", rbac.RoleInternalUser)
	e.setPassword("vic", "vic-password-1")
	r, _ := e.login("vic", "vic-password-1")
	jwt := r.JSON(t)["token"].(string)
	begin := func(body any) response { return e.do(http.MethodPost, "/user/mfa/webauthn/register", jwt, body) }

	requireError(t, begin(nil), http.StatusBadRequest)
	requireError(t, begin(map[string]any{"password": "wrong-password-1"}), http.StatusBadRequest)
	r = begin(map[string]any{"password": "vic-password-1"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.NotEmpty(t, r.JSON(t)["mfa_token"])

	// With a second factor, the password is not enough: a current code is.
	secret, _ := e.enableTOTP(jwt, "vic-password-1")
	r, _ = e.login("vic", "vic-password-1")
	tok := mfaRequired(t, r, "mfa_required")
	r = e.do(http.MethodPost, "/v2/login/mfa", "", map[string]any{"mfa_token": tok, "code": e.nextCode(secret)})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	jwt = r.JSON(t)["token"].(string)
	requireError(t, begin(nil), http.StatusBadRequest)
	requireError(t, begin(map[string]any{"password": "vic-password-1"}), http.StatusBadRequest)
	r = begin(map[string]any{"code": e.nextCode(secret)})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
}
