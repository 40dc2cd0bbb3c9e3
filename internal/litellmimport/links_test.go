package litellmimport_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/litellmimport"
	lt "github.com/keygate/keygate/internal/litellmimport/litellmtest"
	"github.com/keygate/keygate/internal/testutil/oidctest"
	"github.com/keygate/keygate/store"
)

// serve runs a real Keygate over st on loopback, with one SSO provider
// (the in-process OpenID provider op) when op is not nil.
func serve(t *testing.T, st store.Store, op *oidctest.Provider, srv *httptest.Server) {
	t.Helper()
	o := app.Options{Store: st, Logger: quiet(), MasterKeyHash: sha256.Sum256([]byte("sk-master-links")),
		Secret: "0123456789abcdef0123456789abcdef", Issuer: srv.URL}
	if op != nil {
		p, err := sso.NewGeneric(context.Background(), sso.GenericOptions{Name: "idp", DisplayName: "IdP", ClientID: op.ClientID(),
			ClientSecret: op.ClientSecret(), Issuer: op.Issuer(), RedirectURL: srv.URL + "/sso/callback"})
		require.NoError(t, err)
		o.SSOProviders = []sso.Provider{p}
	}
	a, err := app.New(t.Context(), o)
	require.NoError(t, err)
	srv.Config.Handler = a.Handler()
}

func browserClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ssoSignIn runs the browser flow as subject and returns the callback's
// status and, on success, who /v2/user/info says is signed in.
func ssoSignIn(t *testing.T, base string, op *oidctest.Provider, u oidctest.User) (int, string) {
	t.Helper()
	op.SetUser(u)
	b := browserClient(t)
	resp, err := b.Get(base + "/sso/login/idp")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	q := op.Login(t, resp.Header.Get("Location"))
	resp, err = b.Get(base + "/sso/callback?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, ""
	}
	resp, err = b.Get(base + "/v2/user/info")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var me struct {
		UserID string `json:"user_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&me))
	return http.StatusSeeOther, me.UserID
}

// TestImportedSSOUsersSignIn (item 6): with --sso-issuer, an imported SSO
// user signing in at that IdP lands on the imported account — an admin
// (never auto-linked by e-mail) and a user without e-mail (who would get a
// duplicate account) included. Without it the admin is refused.
func TestImportedSSOUsersSignIn(t *testing.T) {
	from := lt.NewSource(t)
	for _, carry := range []bool{false, true} {
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		op := oidctest.New(t, oidctest.Options{RedirectURIs: []string{srv.URL + "/sso/callback"}})
		st := target(t)
		o := litellmimport.Options{}
		if carry {
			o.SSOIssuer = op.Issuer()
		}
		_, err := litellmimport.Import(t.Context(), from, st, o)
		require.NoError(t, err)
		serve(t, st, op, srv)

		status, who := ssoSignIn(t, srv.URL, op, oidctest.User{Subject: lt.SSOAdminSubject, Email: "sso-admin@example.com", EmailVerified: true})
		if !carry {
			require.NotEqual(t, http.StatusSeeOther, status, "without the link an existing admin is never linked by e-mail")
			continue
		}
		require.Equal(t, http.StatusSeeOther, status)
		require.Equal(t, "sso-admin", who)
		u, err := st.GetUser(t.Context(), "sso-admin")
		require.NoError(t, err)
		require.Equal(t, "proxy_admin", u.Role, "the imported role is kept")

		_, n0, err := st.ListUsers(t.Context(), store.UserFilter{})
		require.NoError(t, err)
		status, who = ssoSignIn(t, srv.URL, op, oidctest.User{Subject: lt.SSONoEmailSubject})
		require.Equal(t, http.StatusSeeOther, status)
		require.Equal(t, "sso-noemail", who)
		_, n1, err := st.ListUsers(t.Context(), store.UserFilter{})
		require.NoError(t, err)
		require.Equal(t, n0, n1, "no duplicate account")
	}
}

// TestImportedInvitationLinksWork: a pending LiteLLM invitation, imported,
// opens Keygate's onboarding by both of LiteLLM's links and LiteLLM's API
// flow; used and expired ones do not.
func TestImportedInvitationLinksWork(t *testing.T) {
	from := lt.NewSource(t)
	st := target(t)
	_, err := litellmimport.Import(t.Context(), from, st, litellmimport.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	serve(t, st, nil, srv)
	b := browserClient(t)
	get := func(path string) *http.Response {
		resp, err := b.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := get("/ui?invitation_id=" + lt.InvitationPending)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/onboarding?id="+url.QueryEscape(lt.InvitationPending), resp.Header.Get("Location"))
	require.Equal(t, http.StatusOK, get(resp.Header.Get("Location")).StatusCode, "the onboarding page opens")
	require.Equal(t, http.StatusOK, get("/onboarding/get_token?invite_link="+lt.InvitationPending).StatusCode)
	for _, id := range []string{lt.InvitationExpired, lt.InvitationAccepted} {
		require.NotEqual(t, http.StatusOK, get("/onboarding/get_token?invite_link="+id).StatusCode, id)
	}
	body, _ := json.Marshal(map[string]string{"invitation_link": lt.InvitationPending, "user_id": "invitee", "password": "a-long-password"})
	r, err := b.Post(srv.URL+"/onboarding/claim_token", "application/json", bytesReader(body))
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
