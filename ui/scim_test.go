package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
)

var newTokenRE = regexp.MustCompile(`id="new-token"[^>]*value="(sk-[^"]+)"`)

// scimStatus calls the SCIM API with token.
func (e *env) scimStatus(token string) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/scim/v2/Users", nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestUISCIMPage: a proxy admin sees the base URL, creates a SCIM token
// (shown once, never cached), rotates it (the old value stops working)
// and revokes it; SCIM changes appear in the page's list.
func TestUISCIMPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminEmail, adminPassword)
	p := b.get("/ui/scim")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Contains(t, p.Body, "http://keygate.test/scim/v2", "the base URL an IdP is given: from configuration, not the request")
	require.Contains(t, p.Body, `id="no-tokens"`)
	require.Contains(t, p.Body, `id="last-request">Never`)
	csrf := token(t, p)

	created := b.post("/ui/scim/tokens/new", url.Values{"csrf_token": {csrf}, "name": {"okta"}})
	require.Equal(t, http.StatusOK, created.Status, created.Body)
	require.Equal(t, "no-store", created.Header.Get("Cache-Control"))
	m := newTokenRE.FindStringSubmatch(created.Body)
	require.NotNil(t, m, created.Body)
	tok := m[1]
	require.Contains(t, created.Body, "scim-okta")
	require.Equal(t, http.StatusOK, e.scimStatus(tok))
	require.Equal(t, http.StatusForbidden, e.verify(tok), "a SCIM token is no LLM key")

	list := b.get("/ui/scim")
	require.NotContains(t, list.Body, tok, "the token is shown once")
	require.Contains(t, list.Body, `id="scim-tokens"`)

	// A SCIM change shows up with the token's name.
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/scim/v2/Users",
		strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"joiner@example.com"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	list = b.get("/ui/scim")
	require.Contains(t, list.Body, "scim.user.created")
	require.Contains(t, list.Body, "joiner@example.com")
	require.NotContains(t, list.Body, `id="last-change">Never`)

	hash := regexp.MustCompile(`name="key" value="([0-9a-f]{64})"`).FindStringSubmatch(list.Body)
	require.NotNil(t, hash, list.Body)
	rotated := b.post("/ui/scim/tokens/rotate", url.Values{"csrf_token": {csrf}, "key": {hash[1]}, "confirm": {"yes"}})
	require.Equal(t, http.StatusOK, rotated.Status, rotated.Body)
	m = newTokenRE.FindStringSubmatch(rotated.Body)
	require.NotNil(t, m, rotated.Body)
	require.NotEqual(t, tok, m[1])
	require.Equal(t, http.StatusUnauthorized, e.scimStatus(tok), "the old token stops at once")
	require.Equal(t, http.StatusOK, e.scimStatus(m[1]))

	list = b.get("/ui/scim")
	hash = regexp.MustCompile(`name="key" value="([0-9a-f]{64})"`).FindStringSubmatch(list.Body)
	require.NotNil(t, hash)
	revoked := b.post("/ui/scim/tokens/revoke", url.Values{"csrf_token": {csrf}, "key": {hash[1]}, "confirm": {"yes"}})
	require.Equal(t, http.StatusSeeOther, revoked.Status, revoked.Body)
	require.Equal(t, http.StatusUnauthorized, e.scimStatus(m[1]))
}

// TestUISCIMPageRoles: a viewer sees the page without the buttons and
// cannot create a token; an internal user cannot open it.
func TestUISCIMPageRoles(t *testing.T) {
	e := newEnv(t)
	e.user("auditor@example.com", rbac.RoleProxyAdminViewer)
	e.user("dev@example.com", rbac.RoleInternalUser)
	v := e.browser()
	v.login("auditor@example.com", "password-of-auditor@example.com")
	p := v.get("/ui/scim")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.NotContains(t, p.Body, `id="create-token"`)
	res := v.post("/ui/scim/tokens/new", url.Values{"csrf_token": {token(t, v.get("/ui/password"))}, "name": {"sneaky"}})
	require.Equal(t, http.StatusForbidden, res.Status, res.Body)
	require.Contains(t, v.get("/ui/scim").Body, `id="no-tokens"`, "nothing was created")

	d := e.browser()
	home := d.login("dev@example.com", "password-of-dev@example.com")
	require.NotContains(t, home.Body, `href="/ui/scim"`)
	require.Equal(t, http.StatusForbidden, d.get("/ui/scim").Status)
}
