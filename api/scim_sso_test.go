package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/oidctest"
)

// provision creates a user through SCIM with the master key.
func (e *ssoEnv) provision(t *testing.T, body map[string]any) string {
	t.Helper()
	body["schemas"] = []string{"urn:ietf:params:scim:schemas:core:2.0:User"}
	r := e.do(http.MethodPost, "/scim/v2/Users", masterKey, body)
	require.Equal(t, http.StatusCreated, r.Code, r.Body.String())
	return r.JSON(t)["id"].(string)
}

// TestSSOLinksSCIMProvisionedUsers: a user the identity provider
// provisioned signs in by SSO into that same account, without an
// invitation — by the IdP-verified e-mail, or by a subject equal to the
// SCIM externalId (Okta sends its user id as both). A deactivated user
// cannot sign in, and an unverified e-mail still never links.
func TestSSOLinksSCIMProvisionedUsers(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t, service.SSOPolicy{})
	byEmail := e.provision(t, map[string]any{"userName": "pat@corp.example"})
	e.op.SetUser(oidctest.User{Subject: "sub-pat", Email: "PAT@corp.example", EmailVerified: true})
	b := browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	require.Equal(t, byEmail, e.do(http.MethodGet, "/user/info", sessionOf(t, b, e.base), nil).JSON(t)["user_id"])

	byExternalID := e.provision(t, map[string]any{"userName": "quinn@corp.example", "externalId": "00u-quinn"})
	e.op.SetUser(oidctest.User{Subject: "00u-quinn"})
	b = browser(t)
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, b, nil).StatusCode)
	require.Equal(t, byExternalID, e.do(http.MethodGet, "/user/info", sessionOf(t, b, e.base), nil).JSON(t)["user_id"])

	// A verified e-mail that names someone else vetoes the externalId match.
	other := e.provision(t, map[string]any{"userName": "rae@corp.example", "externalId": "00u-rae"})
	e.op.SetUser(oidctest.User{Subject: "00u-rae", Email: "mallory@corp.example", EmailVerified: true})
	require.Equal(t, http.StatusSeeOther, e.ssoLogin(t, browser(t), nil).StatusCode, "provisioned as a new user")
	u, err := e.store.GetUser(t.Context(), other)
	require.NoError(t, err)
	require.Empty(t, u.SSOSubject, "rae's account was not taken over")

	// An unverified e-mail never links.
	sam := e.provision(t, map[string]any{"userName": "sam@corp.example"})
	e.op.SetUser(oidctest.User{Subject: "sub-sam", Email: "sam@corp.example", EmailVerified: false})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	u, err = e.store.GetUser(t.Context(), sam)
	require.NoError(t, err)
	require.Empty(t, u.SSOSubject)

	// A deactivated user cannot sign in, and is not linked.
	tia := e.provision(t, map[string]any{"userName": "tia@corp.example", "active": false})
	e.op.SetUser(oidctest.User{Subject: "sub-tia", Email: "tia@corp.example", EmailVerified: true})
	require.Equal(t, http.StatusForbidden, e.ssoLogin(t, browser(t), nil).StatusCode)
	u, err = e.store.GetUser(t.Context(), tia)
	require.NoError(t, err)
	require.Empty(t, u.SSOSubject)
}
