package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

// TestBrowserPasskeys registers a passkey in a real Chromium with the
// DevTools virtual authenticator (no fake on Keygate's side: the browser
// makes and signs the WebAuthn messages), signs out, signs in with the
// password and the passkey, and once with the passkey alone. The session
// JWT says how each sign-in happened (amr).
func TestBrowserPasskeys(t *testing.T) {
	t.Parallel()
	s := startUIStackAt(t, "localhost")
	email, role, pw := "pat@example.com", string(rbac.RoleInternalUser), "pat-password-123"
	_, err := s.app.Service().CreateUser(context.Background(), auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin},
		service.NewUser{UserEmail: &email, UserRole: &role, Password: &pw})
	require.NoError(t, err)

	tab := s.tab()
	_, err = chromedp.Call(tab, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err)
	va, err := chromedp.Call(tab, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportUsb,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
	require.NoError(t, err)

	// Register a passkey on the account page; as the first factor it comes
	// with recovery codes, shown once.
	s.signIn(tab, email, pw, "")
	s.do(tab, "account page", chromedp.Navigate(s.url("/ui/account/security")), chromedp.WaitVisible(chromedp.ID("add-passkey")),
		chromedp.SetValue(chromedp.ID("passkey-name"), "Virtual key"), chromedp.SetValue(chromedp.ID("passkey-proof"), pw),
		chromedp.Click(chromedp.ID("add-passkey")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	codes := strings.Fields(s.text(tab, "#recovery-codes"))
	require.Len(t, codes, 10)
	s.shot(tab, "passkey-recovery-codes")
	s.do(tab, "back to the account page", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("passkeys-table")))
	require.Contains(t, s.text(tab, "#passkeys-table"), "Virtual key")
	s.shot(tab, "account-security")
	creds, err := chromedp.Call(tab, webauthn.GetCredentials, webauthn.GetCredentialsParams(va))
	require.NoError(t, err)
	require.Len(t, creds.Credentials, 1, "the authenticator holds the passkey")
	require.Equal(t, "localhost", creds.Credentials[0].RpID)
	require.True(t, creds.Credentials[0].IsResidentCredential, "discoverable, so it can sign in alone")

	// Sign out; the password alone now leads to the second step.
	s.do(tab, "sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("bye")))
	s.do(tab, "password", chromedp.Navigate(s.url("/ui/login")), chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("use-passkey")))
	require.True(t, strings.HasPrefix(s.location(tab), s.url("/ui/login/mfa")), s.location(tab))
	s.shot(tab, "mfa-second-step")
	s.do(tab, "second factor", chromedp.Click(chromedp.ID("use-passkey")), chromedp.WaitVisible(chromedp.ID("sign-out")))
	require.Equal(t, s.url("/ui/"), s.location(tab))
	claims := s.sessionClaims(tab)
	require.Equal(t, []any{"pwd", "hwk", "mfa"}, claims["amr"])
	require.Equal(t, "password", claims["login_method"])

	// Sign out; sign in with the passkey alone.
	s.do(tab, "sign out again", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("bye")))
	s.do(tab, "passwordless", chromedp.Navigate(s.url("/ui/login")), chromedp.WaitVisible(chromedp.ID("passkey-sign-in")),
		chromedp.Click(chromedp.ID("passkey-sign-in")), chromedp.WaitVisible(chromedp.ID("sign-out")))
	claims = s.sessionClaims(tab)
	require.Equal(t, []any{"hwk", "mfa"}, claims["amr"])
	require.Equal(t, "passkey", claims["login_method"])
	require.Equal(t, email, claims["email"])
	s.shot(tab, "passkey-signed-in")
}

// sessionClaims decodes the payload of the tab's session JWT (Keygate
// verified it; the test only reads it).
func (s *uiStack) sessionClaims(ctx context.Context) map[string]any {
	s.t.Helper()
	for _, c := range s.cookies(ctx) {
		if c.Name != "keygate_session" {
			continue
		}
		parts := strings.Split(c.Value, ".")
		require.Len(s.t, parts, 3)
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		require.NoError(s.t, err)
		var m map[string]any
		require.NoError(s.t, json.Unmarshal(raw, &m))
		return m
	}
	s.t.Fatal("no session cookie")
	return nil
}
