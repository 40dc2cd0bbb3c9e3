package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// TestBrowserSelfServeStory is the story a new engineer lives through: an
// admin invites them, they set a password, create a key, use it, delete
// it and sign out to the company's logout page.
func TestBrowserSelfServeStory(t *testing.T) {
	t.Parallel()
	s := startUIStack(t)
	admin := s.root
	s.signIn(admin, uiAdminEmail, uiAdminPassword, "login")

	// The admin creates an internal user and copies the invitation link.
	s.do(admin, "open users", chromedp.Navigate(s.url("/ui/users")), chromedp.WaitVisible(chromedp.ID("new-user-button")),
		chromedp.Click(chromedp.ID("new-user-button")), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "dev@example.com"), chromedp.SendKeys(chromedp.ID("alias"), "Dana Developer"),
		chromedp.SetValue(chromedp.ID("role"), string(rbac.RoleInternalUser)))
	s.shot(admin, "users-new")
	s.do(admin, "create user", chromedp.Click(chromedp.ID("create-user")), chromedp.WaitVisible(chromedp.ID("invite-link")))
	link := s.value(admin, "#invite-link")
	require.True(t, strings.HasPrefix(link, s.url("/ui/onboarding?id=")), link)
	s.shot(admin, "invitation-link")

	// The user opens the link in their own browser and sets a password.
	user := s.tab()
	s.do(user, "open invitation", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("set-password")))
	require.Equal(t, "dev@example.com", s.value(user, "#account"))
	s.shot(user, "onboarding")
	s.do(user, "set password", chromedp.SendKeys(chromedp.ID("password"), "dana-s3cret-pass"),
		chromedp.SendKeys(chromedp.ID("confirm"), "dana-s3cret-pass"), chromedp.Click(chromedp.ID("set-password")),
		chromedp.WaitVisible(chromedp.ID("create-key")))
	require.Equal(t, s.url("/ui/"), s.location(user), "lands on My keys")
	require.Contains(t, s.text(user, "#flash"), "Welcome")

	// ... creates a key, sees it once and copies it.
	s.grantClipboard(user)
	s.do(user, "create key", chromedp.SendKeys(chromedp.ID("alias"), "laptop"), chromedp.SetValue(chromedp.ID("duration"), "30d"),
		chromedp.SendKeys(chromedp.ID("models"), "gpt-4o, claude-sonnet-4"), chromedp.SendKeys(chromedp.ID("max_budget"), "25"),
		chromedp.Click(chromedp.ID("create-key")), chromedp.WaitVisible(chromedp.ID("new-key")),
		chromedp.WaitVisible(chromedp.ID("copy-key")), chromedp.Click(chromedp.ID("copy-key")),
		chromedp.WaitVisible(chromedp.CSS(`#copy-key[data-copied]`)))
	key := s.value(user, "#new-key")
	require.True(t, strings.HasPrefix(key, "sk-"), key)
	require.Equal(t, "Copied", s.text(user, "#copy-key"))
	if clip, err := chromedp.Run(user, chromedp.Evaluate[string]("navigator.clipboard.readText()", chromedp.EvalAwaitPromise)); err == nil {
		require.Equal(t, key, clip, "the clipboard holds the key")
	} else {
		t.Logf("clipboard not readable in this browser (%v); the copy button reported success", err)
	}
	s.shot(user, "key-created")

	// The key works at forward auth, from a plain client.
	require.Equal(t, http.StatusOK, verifyStatus(t, s.kg.URL, key))

	// Back on My keys the key is listed but never shown again.
	s.do(user, "back to keys", chromedp.Click(chromedp.ID("done")), chromedp.WaitVisible(chromedp.ID("keys-table")))
	body := s.text(user, "main")
	require.NotContains(t, body, key)
	require.Contains(t, body, "laptop")
	s.shot(user, "my-keys")
	s.do(user, "mobile", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("keys-table")))
	s.shot(user, "my-keys-mobile")
	s.do(user, "desktop", chromedp.EmulateReset(), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("keys-table")))

	// ... deletes it, with a confirmation step.
	s.do(user, "delete key", chromedp.Click(chromedp.CSS("#keys-table form[data-confirm] button")),
		chromedp.WaitVisible(chromedp.CSS("dialog[open] button[type=submit]")),
		chromedp.Click(chromedp.CSS("dialog[open] button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("no-keys")))
	require.Contains(t, s.text(user, "#flash"), "was deleted")
	require.Equal(t, http.StatusUnauthorized, verifyStatus(t, s.kg.URL, key))

	// ... and signs out, landing on PROXY_LOGOUT_URL.
	s.do(user, "sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("bye")))
	require.Equal(t, s.bye.URL+"/bye", s.location(user))
	s.do(user, "signed out", chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("sign-in")))

	s.adminPages(admin)
}

// adminPages walks the admin pages with some data in them, for the
// screenshots and to prove they render in a real browser.
func (s *uiStack) adminPages(admin context.Context) {
	s.t.Helper()
	s.seedSpend()
	s.do(admin, "teams", chromedp.Navigate(s.url("/ui/teams")), chromedp.Click(chromedp.CSS("#new-team summary")),
		chromedp.WaitVisible(chromedp.ID("team-alias")), chromedp.SendKeys(chromedp.ID("team-alias"), "Platform"),
		chromedp.SendKeys(chromedp.ID("team-models"), "gpt-4o"), chromedp.SendKeys(chromedp.ID("team-budget"), "500"),
		chromedp.Submit(chromedp.ID("team-alias")), chromedp.WaitVisible(chromedp.ID("flash")))
	require.Contains(s.t, s.text(admin, "#flash"), "Platform")
	s.do(admin, "add member", chromedp.SendKeys(chromedp.CSS(".inline-form input[name=email]"), "dev@example.com"),
		chromedp.Submit(chromedp.CSS(".inline-form input[name=email]")), waitText("#flash", "Added dev@example.com"))
	require.Contains(s.t, s.text(admin, ".members"), "dev@example.com")
	s.shot(admin, "teams")
	for _, p := range []struct{ path, sel, name string }{
		{"/ui/users", "#users-table", "users"},
		{"/ui/invitations", "#invitations-table", "invitations"},
		{"/ui/spend?scope=all", "#total-spend", "spend"},
		{"/ui/keys", "#keys-table", "all-keys"},
		{"/ui/audit", "#audit-table", "audit"},
		{"/ui/", "#keys-table", "admin-keys"},
	} {
		s.do(admin, p.name, chromedp.Navigate(s.url(p.path)), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		if p.name == "invitations" {
			require.Contains(s.t, s.text(admin, p.sel), "accepted")
		}
		s.shot(admin, p.name)
	}
	// SCIM: a token for the identity provider, shown once.
	s.do(admin, "scim", chromedp.Navigate(s.url("/ui/scim")), chromedp.WaitVisible(chromedp.ID("no-tokens")),
		chromedp.SendKeys(chromedp.ID("name"), "okta"), chromedp.Submit(chromedp.ID("name")), chromedp.WaitVisible(chromedp.ID("new-token")))
	require.True(s.t, strings.HasPrefix(s.value(admin, "#new-token"), "sk-kg-"))
	require.Contains(s.t, s.text(admin, "#scim-base"), "/scim/v2")
	s.shot(admin, "scim")
}

// seedSpend records a month of usage for two keys through the store (the
// proxy would report it through /spend/report).
func (s *uiStack) seedSpend() {
	s.t.Helper()
	ctx := context.Background()
	svc := s.app.Service()
	adminP := auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}
	owner := uiAdminEmail
	var hashes []string
	for i, alias := range []string{"ci-pipeline", "notebook"} {
		a, b := alias, 50.0*float64(i+1)
		k, err := svc.GenerateKey(ctx, adminP, service.KeyRequest{UserID: &owner, KeyAlias: &a, MaxBudget: &b})
		require.NoError(s.t, err)
		hashes = append(hashes, k.Key.Hash)
	}
	models := []string{"gpt-4o", "claude-sonnet-4", "gpt-4o-mini"}
	now := time.Now().UTC()
	for d := 0; d < 30; d++ {
		for j := 0; j < 1+(d*7)%4; j++ {
			h := hashes[(d+j)%2]
			spend := 0.15 + float64((d*13+j*5)%20)/4
			err := s.store.RecordSpend(ctx, store.SpendEntry{RequestID: fmt.Sprintf("seed-%d-%d", d, j), KeyHash: h, UserID: owner,
				Model: models[(d+j)%3], PromptTokens: int64(800 + d*40), CompletionTokens: int64(300 + j*90), Spend: spend,
				CreatedAt: now.AddDate(0, 0, -d).Add(-time.Duration(j) * time.Hour)})
			require.NoError(s.t, err)
		}
	}
}

// TestBrowserViewerCannotCreate: a read-only user sees no create button,
// and a form post forged outside the page (no or a wrong CSRF token) is
// refused and changes nothing.
func TestBrowserViewerCannotCreate(t *testing.T) {
	t.Parallel()
	s := startUIStack(t)
	ctx := context.Background()
	email, role, pw := "viewer@example.com", string(rbac.RoleInternalUserViewer), "viewer-password"
	_, err := s.app.Service().CreateUser(ctx, auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin},
		service.NewUser{UserEmail: &email, UserRole: &role, Password: &pw, AutoCreateKey: new(bool)})
	require.NoError(t, err)

	viewer := s.tab()
	s.signIn(viewer, email, pw, "")
	require.Contains(t, s.text(viewer, "h1"), "My keys")
	require.False(t, s.exists(viewer, "#create-key"), "no create button")
	require.False(t, s.exists(viewer, `form[action="/ui/keys/new"]`), "no create form")
	require.False(t, s.exists(viewer, `a[href="/ui/users"]`), "no users page")
	s.shot(viewer, "viewer-keys")

	cookies := s.cookies(viewer)
	post := func(csrf string) int {
		form := url.Values{"alias": {"forged"}, "duration": {"never"}}
		if csrf != "" {
			form.Set("csrf_token", csrf)
		}
		req, err := http.NewRequest(http.MethodPost, s.url("/ui/keys/new"), strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, post(""))
	require.Equal(t, http.StatusForbidden, post("forged-token"))
	keys, _, err := s.store.ListKeys(ctx, store.KeyFilter{KeyAlias: "forged"})
	require.NoError(t, err)
	require.Empty(t, keys, "nothing was created")
}
