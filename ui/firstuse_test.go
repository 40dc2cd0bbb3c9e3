package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/testutil/smtptest"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// The tests in this file follow issue 16: the UI as users meet it.

// invited creates a user who has not signed in yet (no password, no SSO
// identity) and returns their id.
func (e *env) invited(email string) string {
	e.t.Helper()
	role := string(rbac.RoleInternalUser)
	d, err := e.app.Service().CreateUser(context.Background(), master(), service.NewUser{UserEmail: &email, UserRole: &role, AutoCreateKey: new(bool)})
	require.NoError(e.t, err)
	return d.User.ID
}

// withMail runs a real SMTP sink and sets the application up to send
// to it.
func withMail(t *testing.T) (*smtptest.Server, func(*app.Options)) {
	t.Helper()
	sink := smtptest.Start(t)
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: sink.Port(), TLS: mail.TLSNone, From: "keygate@example.com"})
	require.NoError(t, err)
	return sink, func(o *app.Options) { o.Mailer = app.Mailer(m) }
}

func (e *env) invitations(userID string) int64 {
	e.t.Helper()
	_, n, err := e.store.ListInvitations(context.Background(), store.InvitationFilter{UserID: userID, Purpose: store.PurposeAll})
	require.NoError(e.t, err)
	return n
}

// rowOf is the users table's row of one user.
func rowOf(t *testing.T, body, userID string) string {
	t.Helper()
	i := strings.Index(body, `id="user-`+userID+`"`)
	require.GreaterOrEqual(t, i, 0, "no row for %s", userID)
	j := strings.Index(body[i:], "</tr>")
	require.Greater(t, j, 0)
	return body[i : i+j]
}

// Item 10: an unknown page under /ui/ is an HTML page, like every other
// page; API clients that ask for JSON still get LiteLLM's JSON.
func TestUIUnknownPathIsAnHTMLPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/ui/nope", "/ui/keys/nope/deeper", "/ui/static-not"} {
		p := b.get(path)
		require.Equal(t, http.StatusNotFound, p.Status, path)
		requireSecure(t, path, p)
		require.Contains(t, p.Body, "Not found", path)
		require.NotContains(t, p.Body, `"error"`, path)
	}
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ui/nope", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	p := b.do(req)
	require.Equal(t, http.StatusNotFound, p.Status)
	require.Contains(t, p.Header.Get("Content-Type"), "application/json")
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(p.Body), &body), p.Body)
	require.Equal(t, "404", body.Error.Code)
	// Outside /ui/ nothing changes: the API answers JSON.
	api := b.get("/nope")
	require.Equal(t, http.StatusNotFound, api.Status)
	require.Contains(t, api.Header.Get("Content-Type"), "application/json")

	// Signed in, the page keeps the navigation.
	b.login(adminEmail, adminPassword)
	p = b.get("/ui/nope")
	require.Equal(t, http.StatusNotFound, p.Status)
	require.Contains(t, p.Body, `id="sign-out"`)
}

// Item 4: the users page says who has signed in, offers an invitation
// only to those who have not, and a password reset to the others; the
// server refuses a forged invitation for an active user.
func TestUIUserStatusInviteAndReset(t *testing.T) {
	e := newEnv(t)
	newID := e.invited("new@example.com")
	e.user("active@example.com", rbac.RoleInternalUser)
	activeID := e.userID("active@example.com")
	e.user("gone@example.com", rbac.RoleInternalUser)
	goneID := e.userID("gone@example.com")
	_, err := e.store.UpdateUser(context.Background(), goneID, func(u *store.User) error { u.Disabled = true; return nil })
	require.NoError(t, err)

	b := e.browser()
	csrf := token(t, b.login(adminEmail, adminPassword))
	users := b.get("/ui/users")
	require.Equal(t, http.StatusOK, users.Status)
	require.Contains(t, users.Body, `<th scope="col">Status</th>`)
	row := rowOf(t, users.Body, newID)
	require.Contains(t, row, `data-status="invited"`)
	require.Contains(t, row, `action="/ui/users/invite"`)
	require.NotContains(t, row, `action="/ui/users/reset-link"`)
	row = rowOf(t, users.Body, activeID)
	require.Contains(t, row, `data-status="active"`)
	require.NotContains(t, row, `action="/ui/users/invite"`)
	require.Contains(t, row, `action="/ui/users/reset-link"`)
	require.Contains(t, row, "Create reset link", "without e-mail the admin gets a link to pass on")
	row = rowOf(t, users.Body, goneID)
	require.Contains(t, row, `data-status="blocked"`)
	require.NotContains(t, row, `action="/ui/users/invite"`)
	require.NotContains(t, row, `action="/ui/users/reset-link"`)
	require.NotContains(t, users.Body, "Copy invitation link")

	// A forged invitation for the active user is refused and changes
	// nothing: no link, the password still works.
	before := e.invitations(activeID)
	forged := b.post("/ui/users/invite", url.Values{"csrf_token": {csrf}, "user_id": {activeID}})
	require.Equal(t, http.StatusSeeOther, forged.Status, forged.Body)
	require.NotContains(t, forged.Body, "/ui/onboarding?id=")
	require.Equal(t, before, e.invitations(activeID))
	flash := b.get("/ui/users")
	require.Contains(t, flash.Body, "has already signed in")
	e.browser().login("active@example.com", "password-of-active@example.com")

	// The invitation for the new user is made and shown once.
	inv := b.post("/ui/users/invite", url.Values{"csrf_token": {csrf}, "user_id": {newID}})
	require.Equal(t, http.StatusOK, inv.Status, inv.Body)
	require.Contains(t, inv.Body, "/ui/onboarding?id=")
	require.Contains(t, inv.Body, "new@example.com")

	// The API keeps LiteLLM's behaviour: /invitation/new works for anyone.
	_, err = e.app.Service().CreateInvitation(context.Background(), master(), service.NewInvitation{UserID: activeID})
	require.NoError(t, err)
}

var resetLinkRE = regexp.MustCompile(`id="reset-link"[^>]*value="([^"]+)"`)

// Item 5, without e-mail: no "we have sent you a link"; the sign-in page
// says to ask an administrator, who creates a reset link on Users.
func TestUIPasswordResetWithoutMail(t *testing.T) {
	e := newEnv(t)
	e.user("dev@example.com", rbac.RoleInternalUser)
	devID := e.userID("dev@example.com")
	anon := e.browser()
	login := anon.get("/ui/login")
	require.NotContains(t, login.Body, `href="/ui/forgot-password"`)
	require.Contains(t, login.Body, "ask an administrator")
	forgot := anon.get("/ui/forgot-password")
	require.Equal(t, http.StatusOK, forgot.Status)
	require.Contains(t, forgot.Body, "ask an administrator")
	require.NotContains(t, forgot.Body, `action="/ui/forgot-password"`)
	sent := anon.post("/ui/forgot-password", url.Values{"csrf_token": {token(t, login)}, "email": {"dev@example.com"}})
	require.NotContains(t, sent.Body, "we have sent")
	require.Contains(t, sent.Body, "ask an administrator")

	admin := e.browser()
	csrf := token(t, admin.login(adminEmail, adminPassword))
	// Only admins who may change users create reset links; a forged post
	// for an unknown user changes nothing.
	bad := admin.post("/ui/users/reset-link", url.Values{"csrf_token": {csrf}, "user_id": {"no-such-user"}})
	require.Equal(t, http.StatusSeeOther, bad.Status)
	p := admin.post("/ui/users/reset-link", url.Values{"csrf_token": {csrf}, "user_id": {devID}})
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Equal(t, "no-store", p.Header.Get("Cache-Control"))
	m := resetLinkRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, p.Body)
	require.True(t, strings.HasPrefix(m[1], "http://keygate.test/ui/reset-password?token="), m[1])
	require.Contains(t, p.Body, "dev@example.com")

	// The link resets the password once.
	link, err := url.Parse(m[1])
	require.NoError(t, err)
	user := e.browser()
	form := user.get(link.RequestURI())
	require.Equal(t, http.StatusOK, form.Status, form.Body)
	done := user.post("/ui/reset-password", url.Values{"csrf_token": {token(t, form)}, "token": {link.Query().Get("token")},
		"password": {"a-brand-new-password"}, "confirm": {"a-brand-new-password"}})
	require.Equal(t, http.StatusSeeOther, done.Status, done.Body)
	e.browser().login("dev@example.com", "a-brand-new-password")
	require.Equal(t, http.StatusGone, e.browser().get(link.RequestURI()).Status)

	// Not for users who never signed in (they get an invitation) nor for
	// an admin viewer.
	newID := e.invited("new@example.com")
	p = admin.post("/ui/users/reset-link", url.Values{"csrf_token": {csrf}, "user_id": {newID}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Zero(t, e.invitations(newID))
	e.user("auditor@example.com", rbac.RoleProxyAdminViewer)
	aud := e.browser()
	acsrf := token(t, aud.login("auditor@example.com", "password-of-auditor@example.com"))
	p = aud.post("/ui/users/reset-link", url.Values{"csrf_token": {acsrf}, "user_id": {devID}})
	require.Equal(t, http.StatusForbidden, p.Status)
}

// Item 5, with e-mail: the link is offered and mailed; the admin's button
// sends a reset mail instead of showing a link.
func TestUIPasswordResetWithMail(t *testing.T) {
	sink, mailer := withMail(t)
	e := newEnv(t, mailer)
	e.user("dev@example.com", rbac.RoleInternalUser)
	devID := e.userID("dev@example.com")
	anon := e.browser()
	login := anon.get("/ui/login")
	require.Contains(t, login.Body, `href="/ui/forgot-password"`)
	sent := anon.post("/ui/forgot-password", url.Values{"csrf_token": {token(t, login)}, "email": {"dev@example.com"}})
	require.Contains(t, sent.Body, `id="forgot-sent"`)
	msgs := sink.Wait(t, 1)
	require.Equal(t, []string{"dev@example.com"}, msgs[0].Rcpt)
	require.Contains(t, msgs[0].Text(), "http://keygate.test/ui/reset-password?token=")

	admin := e.browser()
	csrf := token(t, admin.login(adminEmail, adminPassword))
	row := rowOf(t, admin.get("/ui/users").Body, devID)
	require.Contains(t, row, "Send password reset")
	p := admin.post("/ui/users/reset-link", url.Values{"csrf_token": {csrf}, "user_id": {devID}})
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Contains(t, p.Body, "was e-mailed to dev@example.com")
	require.Nil(t, resetLinkRE.FindStringSubmatch(p.Body), "a mailed link is not shown")
	msgs = sink.Wait(t, 2)
	require.Equal(t, []string{"dev@example.com"}, msgs[1].Rcpt)
	require.Contains(t, msgs[1].Text(), "http://keygate.test/ui/reset-password?token=")
}

var keyHashRE = regexp.MustCompile(`name="key" value="([0-9a-f]{64})"`)

// Item 7: filters take what the tables show (e-mail), lists are newest
// first, pages are full, and columns sort through a whitelist.
func TestUIListsFilterSortAndPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.app.Service()
	e.user("alice@example.com", rbac.RoleInternalUser)
	e.user("bob@example.com", rbac.RoleInternalUser)
	aliceID, bobID := e.userID("alice@example.com"), e.userID("bob@example.com")
	mk := func(owner, alias string) string {
		e.clock.Advance(time.Minute)
		k, err := svc.GenerateKey(ctx, master(), service.KeyRequest{UserID: &owner, KeyAlias: &alias})
		require.NoError(t, err)
		return k.Key.Hash
	}
	a1, b1, a2 := mk(aliceID, "a-first"), mk(bobID, "b-only"), mk(aliceID, "c-second")
	_ = b1

	b := e.browser()
	b.login(adminEmail, adminPassword)
	order := func(body string) []string {
		var out []string
		for _, m := range keyHashRE.FindAllStringSubmatch(body, -1) {
			// A row names its key twice: its delete button's form and
			// the confirmation dialog's.
			if len(out) == 0 || out[len(out)-1] != m[1] {
				out = append(out, m[1])
			}
		}
		return out
	}
	all := b.get("/ui/keys")
	require.Equal(t, http.StatusOK, all.Status)
	require.Equal(t, []string{a2, b1, a1}, order(all.Body), "newest first")
	for _, q := range []string{"alice@example.com", "ALICE", aliceID} {
		p := b.get("/ui/keys?user=" + url.QueryEscape(q))
		require.Equal(t, http.StatusOK, p.Status, q)
		require.Equal(t, []string{a2, a1}, order(p.Body), q)
	}
	require.Empty(t, order(b.get("/ui/keys?user=nobody").Body))
	require.Equal(t, []string{a1, b1, a2}, order(b.get("/ui/keys?sort=created&dir=asc").Body))
	require.Equal(t, []string{a1, b1, a2}, order(b.get("/ui/keys?sort=name").Body))
	require.Equal(t, []string{a2, b1, a1}, order(b.get("/ui/keys?sort=name&dir=desc").Body))
	for _, evil := range []string{"alias;DROP TABLE api_keys", "spend) --", "created_at", "1"} {
		p := b.get("/ui/keys?sort=" + url.QueryEscape(evil) + "&dir=" + url.QueryEscape(evil))
		require.Equal(t, http.StatusOK, p.Status, evil)
		require.Equal(t, []string{a2, b1, a1}, order(p.Body), "an unknown sort is ignored: %s", evil)
	}
	// Spend and last used sort too (highest and most recent first).
	require.NoError(t, e.store.RecordSpend(ctx, store.SpendEntry{RequestID: "r1", KeyHash: a1, UserID: aliceID, Model: "m", Spend: 3,
		CreatedAt: e.clock.Now()}))
	require.NoError(t, e.store.TouchKeys(ctx, map[string]time.Time{a1: e.clock.Now()}))
	require.Equal(t, a1, order(b.get("/ui/keys?sort=spend&dir=desc").Body)[0])
	require.Equal(t, a1, order(b.get("/ui/keys?sort=last_used&dir=desc").Body)[0])
	// A sortable header links to its sort and says which one is active.
	p := b.get("/ui/keys?sort=spend&dir=desc&user=alice")
	require.Contains(t, p.Body, `aria-sort="descending"`)
	require.Contains(t, p.Body, `href="/ui/keys?dir=asc&amp;sort=spend&amp;user=alice"`)

	// Users sort by e-mail.
	users := b.get("/ui/users?sort=email&dir=desc")
	require.Equal(t, http.StatusOK, users.Status)
	ia, ib := strings.Index(users.Body, `id="user-`+aliceID), strings.Index(users.Body, `id="user-`+bobID)
	require.Greater(t, ia, ib, "bob before alice")
	users = b.get("/ui/users?sort=email")
	ia, ib = strings.Index(users.Body, `id="user-`+aliceID), strings.Index(users.Body, `id="user-`+bobID)
	require.Less(t, ia, ib)
	require.Equal(t, http.StatusOK, b.get("/ui/users?sort=email_lower;--").Status)

	// The audit log: newest first, full pages, filter by e-mail.
	for i := range 60 {
		e.clock.Advance(time.Second)
		email := fmt.Sprintf("u%02d@example.com", i)
		e.invited(email)
	}
	_, total, err := e.store.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Greater(t, total, int64(60))
	rowsRE := regexp.MustCompile(`<tr data-event="`)
	page1 := b.get("/ui/audit")
	require.Equal(t, http.StatusOK, page1.Status)
	require.Len(t, rowsRE.FindAllString(page1.Body, -1), 50, "a full first page")
	require.Contains(t, page1.Body, fmt.Sprintf("%d in total", total))
	first := strings.Index(page1.Body, "u59@example.com")
	require.GreaterOrEqual(t, first, 0, "the newest event is on page 1")
	require.Contains(t, page1.Body, `href="/ui/audit?page=2"`)
	page2 := b.get("/ui/audit?page=2")
	require.Len(t, rowsRE.FindAllString(page2.Body, -1), int(total-50))
	require.Contains(t, page2.Body, `href="/ui/audit"`, "a link back to page 1")
	byMail := b.get("/ui/audit?actor=" + url.QueryEscape(adminEmail))
	require.Equal(t, http.StatusOK, byMail.Status)
	require.GreaterOrEqual(t, len(rowsRE.FindAllString(byMail.Body, -1)), 1)
	require.NotContains(t, byMail.Body, "master key")
}

// Item 9: a new key comes with where to use it.
func TestUIKeyCreatedSaysWhereToUseIt(t *testing.T) {
	create := func(t *testing.T, e *env) page {
		b := e.browser()
		csrf := token(t, b.login(adminEmail, adminPassword))
		p := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"laptop"}, "duration": {"30d"}})
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		return p
	}
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t, func(o *app.Options) { o.LLMBaseURL = "https://llm.example.com/v1" })
		p := create(t, e)
		key := newKeyRE.FindStringSubmatch(p.Body)[1]
		require.Contains(t, p.Body, `id="llm-base-url"`)
		require.Contains(t, p.Body, "https://llm.example.com/v1")
		require.Contains(t, p.Body, "curl https://llm.example.com/v1/chat/completions")
		require.Contains(t, p.Body, "Authorization: Bearer "+key)
		require.Contains(t, p.Body, `base_url=&#34;https://llm.example.com/v1&#34;`)
		require.Contains(t, p.Body, `api_key=&#34;`+key+`&#34;`)
	})
	t.Run("forwarding default", func(t *testing.T) {
		up, err := url.Parse("http://127.0.0.1:4649")
		require.NoError(t, err)
		e := newEnv(t, func(o *app.Options) { o.Forwarding.URL = up })
		p := create(t, e)
		require.Contains(t, p.Body, "curl http://keygate.test/v1/chat/completions")
	})
	t.Run("not configured", func(t *testing.T) {
		e := newEnv(t)
		p := create(t, e)
		require.NotContains(t, p.Body, `id="llm-base-url"`)
		require.Contains(t, p.Body, "KEYGATE_LLM_BASE_URL")
	})
}

// Item 11: key names are unique per owner, and the UI says so plainly.
func TestUIKeyNamesArePerOwner(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", rbac.RoleInternalUser)
	e.user("bob@example.com", rbac.RoleInternalUser)
	mk := func(b *browser, csrf string) page {
		return b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"laptop"}, "duration": {"30d"}})
	}
	alice := e.browser()
	acsrf := token(t, alice.login("alice@example.com", "password-of-alice@example.com"))
	require.Equal(t, http.StatusOK, mk(alice, acsrf).Status)
	bob := e.browser()
	bcsrf := token(t, bob.login("bob@example.com", "password-of-bob@example.com"))
	p := mk(bob, bcsrf)
	require.Equal(t, http.StatusOK, p.Status, "another user's key name does not matter: %s", p.Body)
	again := mk(bob, bcsrf)
	require.Equal(t, http.StatusConflict, again.Status)
	require.Contains(t, again.Body, "You already have a key named “laptop”")
	require.NotContains(t, again.Body, "key_alias")
}

// Item 12: the sign-in label fits the bootstrap account, and a first-run
// admin gets a getting-started panel until they dismiss it.
func TestUIFirstRunAdmin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	require.Contains(t, b.get("/ui/login").Body, `<label for="email">E-mail or user name</label>`)
	home := b.login(adminEmail, adminPassword)
	require.Contains(t, home.Body, `id="getting-started"`)
	require.Contains(t, home.Body, `href="/ui/users"`)
	require.Contains(t, home.Body, "KEYGATE_UPSTREAM_URL")
	require.Contains(t, home.Body, "price")
	// Dismissing needs the CSRF token.
	require.Equal(t, http.StatusForbidden, b.post("/ui/getting-started/dismiss", url.Values{}).Status)
	p := b.post("/ui/getting-started/dismiss", url.Values{"csrf_token": {token(t, home)}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.NotContains(t, b.get("/ui/").Body, `id="getting-started"`)
	// Remembered per user: another admin on the same browser still sees it.
	e.user("admin2@example.com", rbac.RoleProxyAdmin)
	b.post("/ui/logout", url.Values{"csrf_token": {b.cookie("keygate_csrf")}})
	require.Contains(t, b.login("admin2@example.com", "password-of-admin2@example.com").Body, `id="getting-started"`)
	// Engineers never see it.
	e.user("dev@example.com", rbac.RoleInternalUser)
	require.NotContains(t, e.browser().login("dev@example.com", "password-of-dev@example.com").Body, `id="getting-started"`)
}
