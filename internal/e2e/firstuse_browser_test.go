package e2e

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

// Issue 16: the web UI as users first meet it, driven in Chromium at a
// laptop's width and a phone's.

// screen is one window size the pages are checked at.
type screen struct {
	name   string // "desktop" or "mobile"
	suffix string // screenshot name suffix
	emu    chromedp.Action[chromedp.Void]
}

func screens() []screen {
	return []screen{
		{"desktop", "", chromedp.EmulateViewport(1366, 860)},
		{"mobile", "-mobile", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)},
	}
}

func masterPrincipal() auth.Principal {
	return auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}
}

// seedUser creates a user: with a password (active) or without (invited).
func (s *uiStack) seedUser(email, pw string) string {
	s.t.Helper()
	role := string(rbac.RoleInternalUser)
	in := service.NewUser{UserEmail: &email, UserRole: &role, AutoCreateKey: new(bool)}
	if pw != "" {
		in.Password = &pw
	}
	d, err := s.app.Service().CreateUser(context.Background(), masterPrincipal(), in)
	require.NoError(s.t, err)
	return d.User.ID
}

// clickWhere clicks the centre of the element sel as a user would (a hit
// test at its drawn position, not a synthetic click on the node), after
// scrolling it into view.
func clickWhere(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, a := range []chromedp.Action[chromedp.Void]{chromedp.ScrollIntoView(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel))} {
			if _, err := a(ctx, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestBrowserFirstUse walks items 4, 5 (no e-mail), 7, 9, 10 and 12 of
// issue 16 at both sizes.
func TestBrowserFirstUse(t *testing.T) {
	s := startUIStackAt(t, "", func(o *app.Options) { o.LLMBaseURL = "https://llm.example.com/v1" })
	admin := s.root
	s.signIn(admin, uiAdminEmail, uiAdminPassword, "")
	// Item 12: the first-run admin gets a getting-started panel until
	// dismissed.
	s.do(admin, "getting started", chromedp.WaitVisible(chromedp.ID("getting-started")))
	require.Contains(t, s.text(admin, "#getting-started"), "Invite your team")
	s.shot(admin, "getting-started")
	s.do(admin, "dismiss", clickWhere("#dismiss-getting-started"),
		waitJS(`document.readyState === "complete" && !document.querySelector("#getting-started") && !!document.querySelector("#create-key")`))
	s.do(admin, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("create-key")))
	require.False(t, s.exists(admin, "#getting-started"), "dismissed for good")

	ctx := context.Background()
	svc := s.app.Service()
	for i, sc := range screens() {
		t.Run(sc.name, func(t *testing.T) {
			s.t = t
			s.do(admin, "resize", sc.emu)
			active := fmt.Sprintf("active%d@example.com", i)
			activeID := s.seedUser(active, "active-password")
			invitedID := s.seedUser(fmt.Sprintf("invited%d@example.com", i), "")

			// Item 10: an unknown page is a page.
			s.do(admin, "unknown page", chromedp.Navigate(s.url("/ui/no-such-page")), chromedp.WaitVisible(chromedp.CSS("h1")))
			require.Equal(t, "Not found", strings.TrimSpace(s.text(admin, "h1")))
			require.True(t, s.exists(admin, "#sign-out"), "the navigation stays")
			s.shot(admin, "not-found"+sc.suffix)

			// Item 9: a new key says where to use it, with snippets to copy.
			s.grantClipboard(admin)
			alias := "laptop-" + sc.name
			s.do(admin, "create key", chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("alias")),
				chromedp.SendKeys(chromedp.ID("alias"), alias), clickWhere("#create-key"), chromedp.WaitVisible(chromedp.ID("new-key")),
				chromedp.WaitVisible(chromedp.ID("llm-base-url")))
			key := s.value(admin, "#new-key")
			require.Equal(t, "https://llm.example.com/v1", s.value(admin, "#llm-base-url"))
			curl := s.value(admin, "#snippet-curl")
			require.Contains(t, curl, "curl https://llm.example.com/v1/chat/completions")
			require.Contains(t, curl, "Bearer "+key)
			require.Contains(t, s.value(admin, "#snippet-python"), `base_url="https://llm.example.com/v1"`)
			s.do(admin, "copy curl", clickWhere("#copy-curl"), chromedp.WaitVisible(chromedp.CSS(`#copy-curl[data-copied]`)))
			if clip, err := chromedp.Run(admin, chromedp.Evaluate[string]("navigator.clipboard.readText()", chromedp.EvalAwaitPromise)); err == nil {
				require.Equal(t, curl, clip)
			}
			s.shot(admin, "key-usage"+sc.suffix)

			// Item 11: the same name again is refused in plain words.
			s.do(admin, "duplicate", chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("alias")),
				chromedp.SendKeys(chromedp.ID("alias"), alias), clickWhere("#create-key"), chromedp.WaitVisible(chromedp.ID("form-error")))
			require.Contains(t, s.text(admin, "#form-error"), "You already have a key named “"+alias+"”")

			// Item 4: status column; invite only the invited, reset the active.
			// Newest first, by the Created column (earlier runs added users).
			s.do(admin, "users", chromedp.Navigate(s.url("/ui/users?sort=created&dir=desc")), chromedp.WaitVisible(chromedp.ID("users-table")))
			require.Contains(t, s.text(admin, "#user-"+invitedID), "Invited")
			require.Contains(t, s.text(admin, "#user-"+activeID), "Active")
			require.True(t, s.exists(admin, "#user-"+invitedID+` form[action="/ui/users/invite"]`))
			require.False(t, s.exists(admin, "#user-"+activeID+` form[action="/ui/users/invite"]`))
			s.shot(admin, "users-status"+sc.suffix)
			// Item 5 without e-mail: the admin makes a reset link to pass on.
			s.do(admin, "reset link", clickWhere("#user-"+activeID+` form[action="/ui/users/reset-link"] button`),
				chromedp.WaitVisible(chromedp.ID("reset-link")))
			link := s.value(admin, "#reset-link")
			require.True(t, strings.HasPrefix(link, s.url("/ui/reset-password?token=")), link)
			s.shot(admin, "reset-link"+sc.suffix)
			user := s.tab()
			s.do(user, "signed out", sc.emu, chromedp.Navigate(s.url("/ui/login")), chromedp.WaitVisible(chromedp.ID("forgot-ask")))
			require.False(t, s.exists(user, `a[href="/ui/forgot-password"]`), "no mail, no self-service link")
			require.Contains(t, s.text(user, "label[for=email]"), "E-mail or user name")
			s.do(user, "use reset link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password")),
				chromedp.SendKeys(chromedp.ID("password"), "a-new-password-1"), chromedp.SendKeys(chromedp.ID("confirm"), "a-new-password-1"),
				chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("sign-out")))

			// Item 7: All keys newest first, filtered by e-mail, sorted.
			owner := activeID
			for j, a := range []string{"old-" + sc.name, "new-" + sc.name} {
				b := float64(j + 1)
				_, err := svc.GenerateKey(ctx, masterPrincipal(), service.KeyRequest{UserID: &owner, KeyAlias: &a, MaxBudget: &b})
				require.NoError(t, err)
				time.Sleep(5 * time.Millisecond)
			}
			s.do(admin, "all keys", chromedp.Navigate(s.url("/ui/keys")), chromedp.WaitVisible(chromedp.ID("keys-table")),
				chromedp.SendKeys(chromedp.ID("user"), strings.ToUpper(active[:7])), chromedp.Submit(chromedp.ID("user")),
				waitJS(`location.search.includes("user=") && document.readyState === "complete"`), chromedp.WaitVisible(chromedp.ID("keys-table")))
			rows := s.text(admin, "#keys-table tbody")
			require.NotContains(t, rows, alias, "only the filtered owner's keys")
			require.Less(t, strings.Index(rows, "new-"+sc.name), strings.Index(rows, "old-"+sc.name), "newest first")
			// The table head sorts on a laptop; on a phone, where the head
			// is hidden, the sort links stand above the list.
			sortLink, sorted := `#keys-table th a.sort[href*="sort=name"]`, `#keys-table th[aria-sort="ascending"]`
			if sc.name == "mobile" {
				sortLink, sorted = `.sort-bar a[href*="sort=name"]`, `.sort-bar a[aria-current]`
			}
			s.do(admin, "sort by name", clickWhere(sortLink),
				waitJS(`location.search.includes("sort=name") && document.readyState === "complete"`), chromedp.WaitVisible(chromedp.CSS(sorted)))
			rows = s.text(admin, "#keys-table tbody")
			require.Less(t, strings.Index(rows, "new-"+sc.name), strings.Index(rows, "old-"+sc.name))
			loc, err := url.Parse(s.location(admin))
			require.NoError(t, err)
			require.Equal(t, "name", loc.Query().Get("sort"))
			require.Equal(t, strings.ToUpper(active[:7]), loc.Query().Get("user"), "sorting keeps the filter")
			s.shot(admin, "all-keys-sorted"+sc.suffix)

			// The audit log pages full, newest first, filterable by e-mail.
			for k := range 55 {
				e := fmt.Sprintf("bulk-%s-%02d@example.com", sc.name, k)
				s.seedUser(e, "")
			}
			s.do(admin, "audit", chromedp.Navigate(s.url("/ui/audit")), chromedp.WaitVisible(chromedp.ID("audit-table")))
			n, err := chromedp.Run(admin, chromedp.Evaluate[int](`document.querySelectorAll("#audit-table tbody tr").length`))
			require.NoError(t, err)
			require.Equal(t, 50, n, "page 1 is full")
			require.Contains(t, s.text(admin, "#audit-table tbody tr"), fmt.Sprintf("bulk-%s-54@example.com", sc.name), "newest first")
			s.do(admin, "audit by e-mail", chromedp.SendKeys(chromedp.ID("actor"), "admin@"), chromedp.Submit(chromedp.ID("actor")),
				waitJS(`location.search.includes("actor=") && document.readyState === "complete"`), chromedp.WaitVisible(chromedp.ID("audit-table")))
			require.NotContains(t, s.text(admin, "#audit-table tbody"), "master key")
			s.shot(admin, "audit-log"+sc.suffix)
		})
	}
}

// TestBrowserPasswordResetWithMail is item 5 with e-mail (Mailpit): the
// sign-in page offers the self-service link, and the admin's button mails
// a reset link that the user follows.
func TestBrowserPasswordResetWithMail(t *testing.T) {
	mp := startMailpit(t, mailpitBinary(t), "--smtp-auth-allow-insecure")
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: mp.smtpPort, TLS: mail.TLSNone, From: mailpitSender, Logger: quietLogger()})
	require.NoError(t, err)
	s := startUIStackAt(t, "", func(o *app.Options) { o.Mailer = app.Mailer(m) })
	admin := s.root
	s.signIn(admin, uiAdminEmail, uiAdminPassword, "")
	tokenRE := regexp.MustCompile(`https?://[^\s"<>]+/ui/reset-password\?token=[A-Za-z0-9_-]{43}`)
	for i, sc := range screens() {
		t.Run(sc.name, func(t *testing.T) {
			s.t = t
			email := fmt.Sprintf("mailed%d@example.test", i)
			id := s.seedUser(email, "old-password-123")
			user := s.tab()
			s.do(user, "login page", sc.emu, chromedp.Navigate(s.url("/ui/login")), chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/forgot-password"]`)))
			require.False(t, s.exists(user, "#forgot-ask"))

			s.do(admin, "users", sc.emu, chromedp.Navigate(s.url("/ui/users")), chromedp.WaitVisible(chromedp.ID("users-table")))
			btn := "#user-" + id + ` form[action="/ui/users/reset-link"] button`
			require.Equal(t, "Send password reset", strings.TrimSpace(s.text(admin, btn)))
			s.do(admin, "send reset", clickWhere(btn), chromedp.WaitVisible(chromedp.ID("reset-sent")))
			require.False(t, s.exists(admin, "#reset-link"), "a mailed link is not shown")
			s.shot(admin, "reset-sent"+sc.suffix)

			got := mp.waitFor(t, email)
			link := tokenRE.FindString(got.Text)
			require.NotEmpty(t, link, got.Text)
			s.do(user, "use mailed link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password")),
				chromedp.SendKeys(chromedp.ID("password"), "mailed-new-password"), chromedp.SendKeys(chromedp.ID("confirm"), "mailed-new-password"),
				chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("sign-out")))
		})
	}
}
