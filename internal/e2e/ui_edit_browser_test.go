package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// editShot names the screenshots of this file kept in docs/screenshots.
func editShot(name string) bool {
	switch name {
	case "confirm-dialog", "confirm-dialog-mobile", "user-edit", "key-edit", "key-edit-mobile", "key-limits":
		return true
	}
	return false
}

var masterP = auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}

// sizes are the two screens every page is tried on: a laptop and a phone.
var sizes = []struct {
	name string
	set  chromedp.Action[chromedp.Void]
}{
	{"desktop", chromedp.EmulateViewport(1366, 860)},
	{"mobile", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)},
}

// clickDrawn clicks the element sel with the mouse at the centre of where
// it is drawn, after checking that a hit test there lands on it (and not
// on a card, the footer or the page body that covers or clips it).
func (s *uiStack) clickDrawn(ctx context.Context, sel string) {
	s.t.Helper()
	expr := fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e) return [-1,-1,0];
		var r=e.getBoundingClientRect(); var x=r.left+r.width/2, y=r.top+r.height/2;
		var hit=document.elementFromPoint(x,y); return [x,y,(hit===e||e.contains(hit))?1:0];})()`, sel)
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](expr))
	require.NoError(s.t, err)
	require.Len(s.t, v, 3)
	if v[2] != 1 {
		s.shot(ctx, "failed-hit-test")
	}
	require.Equal(s.t, 1.0, v[2], "a click at the centre of %s (%.0f,%.0f) does not land on it", sel, v[0], v[1])
	s.do(ctx, "click "+sel, chromedp.MouseClickXY(v[0], v[1]))
}

func (s *uiStack) count(ctx context.Context, sel string) int {
	s.t.Helper()
	// A loaded machine can hand the page to the parser in pieces: the
	// flash a test waits for may be in before the table's last rows.
	s.do(ctx, "page loaded before counting "+sel, waitJS("document.readyState === 'complete'"))
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	require.NoError(s.t, err)
	return n
}

// Issue 16 item 1: "Yes, delete" on a table's last row is clickable with
// a mouse or a finger on a laptop and on a phone, on My keys, All keys and
// Users: the confirmation is a modal dialog that no card clips.
func TestBrowserDeleteLastRowConfirms(t *testing.T) {
	s := startUIStack(t)
	ctx := context.Background()
	svc := s.app.Service()
	admin := s.root
	owner := uiAdminEmail
	for i := range 6 {
		alias := fmt.Sprintf("key-%d", i)
		_, err := svc.GenerateKey(ctx, masterP, service.KeyRequest{UserID: &owner, KeyAlias: &alias})
		require.NoError(t, err)
	}
	for i := range 4 {
		email, role := fmt.Sprintf("user%d@example.com", i), string(rbac.RoleInternalUser)
		_, err := svc.CreateUser(ctx, masterP, service.NewUser{UserEmail: &email, UserRole: &role, AutoCreateKey: new(bool)})
		require.NoError(t, err)
	}
	s.signIn(admin, uiAdminEmail, uiAdminPassword, "")

	pages := []struct{ path, table string }{{"/ui/", "#keys-table"}, {"/ui/keys", "#keys-table"}, {"/ui/users", "#users-table"}}
	for _, size := range sizes {
		for _, pg := range pages {
			what := size.name + " " + pg.path
			s.do(admin, "open "+what, size.set, chromedp.Navigate(s.url(pg.path)), chromedp.WaitVisible(chromedp.CSS(pg.table)))
			rows := s.count(admin, pg.table+" tbody tr")
			last := pg.table + " tbody tr:last-child"
			name := s.text(admin, last+" td:first-child strong")
			trigger := last + " form[data-confirm] button.danger-ghost"
			s.do(admin, "scroll "+what, chromedp.ScrollIntoView(chromedp.CSS(trigger)))
			s.clickDrawn(admin, trigger)
			s.do(admin, "dialog "+what, chromedp.WaitVisible(chromedp.CSS("dialog[open] button[type=submit]")))
			if pg.path == "/ui/" {
				s.shot(admin, map[string]string{"desktop": "confirm-dialog", "mobile": "confirm-dialog-mobile"}[size.name])
			}
			require.Contains(t, s.text(admin, "dialog[open]"), name)
			s.clickDrawn(admin, "dialog[open] button[type=submit]")
			s.do(admin, "deleted "+what, waitText("#flash", name))
			require.Equal(t, rows-1, s.count(admin, pg.table+" tbody tr"), what)
			require.NotContains(t, s.text(admin, pg.table), name, what)
		}
	}
	// Cancel closes the dialog and deletes nothing.
	s.do(admin, "cancel", chromedp.EmulateReset(), chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("keys-table")))
	rows := s.count(admin, "#keys-table tbody tr")
	s.do(admin, "scroll", chromedp.ScrollIntoView(chromedp.CSS("#keys-table tbody tr:last-child form[data-confirm] button")))
	s.clickDrawn(admin, "#keys-table tbody tr:last-child form[data-confirm] button")
	s.do(admin, "dialog open", chromedp.WaitVisible(chromedp.CSS("dialog[open]")))
	s.clickDrawn(admin, "dialog[open] button[data-close]")
	require.Zero(t, s.count(admin, "dialog[open]"))
	require.Equal(t, rows, s.count(admin, "#keys-table tbody tr"))
}

// Issue 16 items 2, 3 and 6 in a browser, on a laptop and on a phone: an
// admin edits a user; the user sees why their key is refused, edits it
// (a budget above their own is an inline message, the form kept) and
// makes a key with too big a budget without losing the form.
func TestBrowserEditUserAndKey(t *testing.T) {
	s := startUIStack(t)
	ctx := context.Background()
	svc := s.app.Service()
	email, role, pw, budget := "dev@example.com", string(rbac.RoleInternalUser), "dev-password-123", 50.0
	cu, err := svc.CreateUser(ctx, masterP, service.NewUser{UserEmail: &email, UserRole: &role, Password: &pw, AutoCreateKey: new(bool),
		Models: []string{"gpt-4o", "claude-sonnet-4"}, MaxBudget: &budget})
	require.NoError(t, err)
	dev := cu.User.ID
	alias := "laptop"
	ik, err := svc.GenerateKey(ctx, masterP, service.KeyRequest{UserID: &dev, KeyAlias: &alias})
	require.NoError(t, err)

	// The admin changes the user's role, models and budget, on both sizes.
	admin := s.root
	s.signIn(admin, uiAdminEmail, uiAdminPassword, "")
	for i, size := range sizes {
		models, budget := []string{"gpt-4o, claude-sonnet-4, gpt-4o-mini", "gpt-4o, claude-sonnet-4"}[i], []string{"60", "50"}[i]
		s.do(admin, size.name+" users", size.set, chromedp.Navigate(s.url("/ui/users")), chromedp.WaitVisible(chromedp.ID("users-table")))
		edit := fmt.Sprintf(`a[href="/ui/users/edit?id=%s"]`, dev)
		s.do(admin, size.name+" scroll", chromedp.ScrollIntoView(chromedp.CSS(edit)))
		s.clickDrawn(admin, edit)
		s.do(admin, size.name+" edit user", chromedp.WaitVisible(chromedp.ID("save-user")),
			chromedp.SetValue(chromedp.ID("models"), models), chromedp.SetValue(chromedp.ID("max_budget"), budget),
			chromedp.SetValue(chromedp.ID("role"), []string{string(rbac.RoleInternalUserViewer), string(rbac.RoleInternalUser)}[i]))
		if i == 0 {
			s.shot(admin, "user-edit")
		}
		s.do(admin, size.name+" scroll save", chromedp.ScrollIntoView(chromedp.ID("save-user")))
		s.clickDrawn(admin, "#save-user")
		s.do(admin, size.name+" saved", waitText("#flash", "Saved the changes to dev@example.com"))
		u, err := s.store.GetUser(ctx, dev)
		require.NoError(t, err)
		require.Equal(t, strings.Split(strings.ReplaceAll(models, " ", ""), ","), u.Models)
		require.Equal(t, []string{string(rbac.RoleInternalUserViewer), string(rbac.RoleInternalUser)}[i], u.Role)
	}
	s.do(admin, "reset", chromedp.EmulateReset())

	// The user is over their budget: My keys says so.
	_, err = s.store.UpdateUser(ctx, dev, func(u *store.User) error { u.Spend = 51.25; return nil })
	require.NoError(t, err)
	user := s.tab()
	s.signIn(user, email, pw, "")
	s.do(user, "keys", chromedp.EmulateViewport(1366, 860), chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("keys-table")))
	require.Contains(t, s.text(user, "#keys-table .refusal"), "your budget of $50.00 is used up ($51.25 spent)")
	require.Contains(t, s.text(user, "#keys-table .key-models"), "You may use: gpt-4o, claude-sonnet-4")
	s.shot(user, "key-limits")
	_, err = s.store.UpdateUser(ctx, dev, func(u *store.User) error { u.Spend = 0; return nil })
	require.NoError(t, err)

	// Item 2: a budget above the user's own keeps the form.
	s.do(user, "create too big", chromedp.SendKeys(chromedp.ID("alias"), "big-one"), chromedp.SendKeys(chromedp.ID("max_budget"), "100"))
	s.clickDrawn(user, "#create-key")
	s.do(user, "inline error", waitText("#form-error", "at most $50.00"))
	require.Equal(t, "big-one", s.value(user, "#alias"))
	require.Equal(t, "100", s.value(user, "#max_budget"))
	require.NotContains(t, s.text(user, "main"), "max_budget")

	for i, size := range sizes {
		s.do(user, size.name+" keys", size.set, chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.ID("keys-table")))
		edit := fmt.Sprintf(`a[href="/ui/keys/edit?key=%s"]`, ik.Key.Hash)
		s.do(user, size.name+" scroll", chromedp.ScrollIntoView(chromedp.CSS(edit)))
		s.clickDrawn(user, edit)
		s.do(user, size.name+" too much", chromedp.WaitVisible(chromedp.ID("save-key")), chromedp.SetValue(chromedp.ID("max_budget"), "80"),
			chromedp.ScrollIntoView(chromedp.ID("save-key")))
		s.clickDrawn(user, "#save-key")
		s.do(user, size.name+" inline", waitText("#form-error", "The budget can be at most $50.00, your own budget."))
		require.Equal(t, "80", s.value(user, "#max_budget"))
		if i == 1 {
			s.shot(user, "key-edit-mobile")
		}
		newAlias := []string{"laptop-2", "laptop-3"}[i]
		s.do(user, size.name+" fix", chromedp.SetValue(chromedp.ID("max_budget"), "20"), chromedp.SetValue(chromedp.ID("alias"), newAlias),
			chromedp.SetValue(chromedp.ID("models"), "gpt-4o"), chromedp.ScrollIntoView(chromedp.ID("save-key")))
		if i == 0 {
			s.shot(user, "key-edit")
		}
		s.clickDrawn(user, "#save-key")
		s.do(user, size.name+" saved", waitText("#flash", "Saved the changes to “"+newAlias+"”"))
		k, err := s.store.GetKey(ctx, ik.Key.Hash)
		require.NoError(t, err)
		require.Equal(t, newAlias, k.Alias)
		require.Equal(t, 20.0, *k.MaxBudget)
		require.Equal(t, []string{"gpt-4o"}, k.Models)
	}
}
