package ui

import (
	"bytes"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// fixturePage is the layout data a signed-in page of role gets; full adds
// a flash message.
func fixturePage(role rbac.Role, current string, full bool) page {
	p := auth.Principal{Method: auth.MethodSession, UserID: "u-1", Email: "dana@example.com", Role: role, SessionID: "s-1"}
	pg := page{Title: "Fixture", Nav: navFor(p, current), Can: permsOf(p), CSRF: "csrf-token",
		Viewer: &viewer{Email: p.Email, UserID: p.UserID, RoleLabel: roleLabel(string(role))}}
	if full {
		pg.Flash = &flash{Kind: "ok", Message: "Saved <b>really</b>"}
	}
	return pg
}

func signedOutPage(full bool) page {
	pg := page{Title: "Sign in", CSRF: "form-token"}
	if full {
		pg.Flash = &flash{Kind: "error", Message: "Nope"}
	}
	return pg
}

func fixtureKeys(role rbac.Role, full bool) []keyRow {
	if !full {
		return nil
	}
	var del *confirmStep
	if rbac.Can(role, rbac.PermKeyWriteOwn) {
		step := keyDeleteStep(store.Key{Hash: strings.Repeat("a", 64), Alias: "laptop <script>"}, "/ui/")
		step.CSRF = "csrf-token"
		del = &step
	}
	return []keyRow{
		{Hash: strings.Repeat("a", 64), Alias: "laptop <script>", Name: "sk-...abcd", Owner: "dana@example.com", Models: "gpt-4o",
			Created: "2026-11-01", Expires: "2026-12-01", LastUsed: "3 h ago", Spend: "$1.00", Budget: budgetOf(1, ptr(10.0)), Delete: del,
			CanEdit: del != nil, Limits: []limitLine{{Text: "Your budget: $50.10 of $50.00", Over: true}},
			Refusal: "Requests are refused now: your budget of $50.00 is used up ($50.10 spent)."},
		{Hash: strings.Repeat("b", 64), Name: "sk-...wxyz", Owner: "— (service key)", Models: "All models", Created: "2026-11-02",
			Expires: "Expired 2026-11-03", Expired: true, LastUsed: "Never", Spend: "$12.00", Budget: budgetOf(12, ptr(10.0)), Blocked: true},
	}
}

func ptr[T any](v T) *T { return &v }

// renderAll renders every page for role with empty or full data.
func renderAll(t *testing.T, tm *templates, role rbac.Role, full bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	pg := func(current string) page { return fixturePage(role, current, full) }
	pager3 := pager{}
	if full {
		pager3 = pager{Page: 2, Pages: 3, Total: 120, Prev: "/ui/list", Next: "/ui/list?page=3"}
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	since := sinceDays(now, spendDays)
	var spendRows []store.SpendEntry
	if full {
		for i := range 40 {
			spendRows = append(spendRows, store.SpendEntry{RequestID: "r", KeyHash: strings.Repeat("c", 64), UserID: "u-1",
				Model: []string{"gpt-4o", ""}[i%2], PromptTokens: 100, CompletionTokens: 50, Spend: float64(i) / 10, CreatedAt: since.AddDate(0, 0, i%30)})
		}
	}
	sp := spendView(spendRows, since)
	sp.page, sp.Scope, sp.CanAll, sp.Truncated = pg("/ui/spend"), "all", full, full
	var users []userRow
	var invites []invitationRow
	var teams []teamRow
	var events []auditRow
	if full {
		users = []userRow{{ID: "u-1", Email: "dana@example.com", Alias: "Dana", Role: "Admin", Teams: "t-1", Keys: 2, Spend: "$3.00",
			Created: "2026-11-01", Self: true, Status: "active"}, {ID: "u-2", Role: "Internal User", Teams: "—", Disabled: true, Status: "blocked"},
			{ID: "u-3", Email: "new@example.com", Status: "invited"}, {ID: "u-4", Email: "old@example.com", Status: "active"}}
		invites = []invitationRow{{UserID: "u-2", Status: "pending"}, {UserID: "u-3", Email: "x@example.com", Status: "accepted"},
			{UserID: "u-4", Status: "expired"}}
		teams = []teamRow{{ID: "t-1", Alias: "Platform", Models: "gpt-4o", Spend: "$5.00", Budget: budgetOf(5, ptr(100.0)), CanManage: true,
			Members: []memberRow{{UserID: "u-1", Email: "dana@example.com", Role: "admin"}, {UserID: "u-2", Email: "u-2", Role: "user"}}},
			{ID: "t-2", Alias: "Empty", Blocked: true}}
		events = []auditRow{{When: "2026-11-27 10:00", Action: "key.created", Actor: "dana@example.com", Role: "proxy_admin", Target: "key abc…", IP: "127.0.0.1"}}
	}
	cases := map[string]func(w io.Writer) error{
		pageKeys: func(w io.Writer) error {
			return tm.keys(w, keysPage{page: pg("/ui/"), Heading: "My keys", Keys: fixtureKeys(role, full), Pager: pager3,
				Form: keyForm{Alias: "a", Duration: "30d"}, Expiries: expiryOptions("30d"), FormError: map[bool]string{true: "Bad budget"}[full],
				Sort: keySorts().columns("/ui/", nil, keySorts().def), GettingStarted: map[bool]*gettingStarted{true: {}}[full && rbac.Can(role, rbac.PermUserWrite)]})
		},
		pageKeys + "-all": func(w io.Writer) error {
			return tm.keys(w, keysPage{page: pg("/ui/keys"), Heading: "All keys", All: true, Keys: fixtureKeys(role, full), Pager: pager3, Filter: "u-1",
				Sort: keySorts().columns("/ui/keys", nil, keySorts().def)})
		},
		pageKeyCreated: func(w io.Writer) error {
			d := keyCreatedPage{page: pg("/ui/"), Key: "sk-kg-secret", Name: "sk-...cret", Expires: "Never", Models: "All models"}
			if full {
				d.Alias, d.Budget = "laptop", "$10.00"
				d.Usage = usageFor("https://llm.example.com/v1", d.Key, []string{"gpt-4o"})
			}
			return tm.keyCreated(w, d)
		},
		pageSpend: func(w io.Writer) error { return tm.spend(w, sp) },
		pageUsers: func(w io.Writer) error {
			return tm.users(w, usersPage{page: pg("/ui/users"), Users: users, Pager: pager3, Roles: roleOptions("internal_user"),
				Sort: userSorts().columns("/ui/users", nil, userSorts().def), Mail: full,
				Query: map[bool]string{true: "dana"}[full], FormError: map[bool]string{true: "Exists"}[full]})
		},
		pageResetLink: func(w io.Writer) error {
			d := resetLinkPage{page: pg("/ui/users"), Email: "old@example.com", Expires: "2026-12-04"}
			if full {
				d.MailSent = true
			} else {
				d.Link, d.MailError = "http://k/ui/reset-password?token=x", "smtp down"
			}
			return tm.resetLink(w, d)
		},
		pageInviteLink: func(w io.Writer) error {
			d := inviteLinkPage{page: pg("/ui/users"), Email: "new@example.com"}
			if full {
				d.Created, d.Link, d.Expires, d.MailSent, d.MailError = true, "http://k/ui/onboarding?id=x", "2026-12-04", true, "smtp down"
			}
			return tm.inviteLink(w, d)
		},
		pageInvitations: func(w io.Writer) error {
			return tm.invitations(w, invitationsPage{page: pg("/ui/invitations"), Rows: invites, Pager: pager3})
		},
		pageTeams: func(w io.Writer) error {
			return tm.teams(w, teamsPage{page: pg("/ui/teams"), Teams: teams, Pager: pager3, FormError: map[bool]string{true: "x"}[full]})
		},
		pagePassword: func(w io.Writer) error {
			return tm.password(w, passwordPage{page: pg(""), Error: map[bool]string{true: "Wrong"}[full]})
		},
		pageAudit: func(w io.Writer) error {
			return tm.audit(w, auditPage{page: pg("/ui/audit"), Rows: events, Pager: pager3})
		},
		pageError: func(w io.Writer) error {
			return tm.errorPage(w, messagePage{page: pg(""), Status: 403, Heading: "Not allowed", Message: "No."})
		},
		pageConfirm: func(w io.Writer) error {
			step := keyDeleteStep(store.Key{Hash: strings.Repeat("a", 64), Alias: "<b>really</b>"}, "/ui/")
			step.CSRF = "csrf-token"
			return tm.confirm(w, confirmPage{page: pg(""), Step: step, Cancel: "/ui/"})
		},
		pageKeyEdit: func(w io.Writer) error {
			d := keyEditPage{page: pg(""), Hash: strings.Repeat("a", 64), Label: "laptop", Name: "sk-...abcd", Owner: "You", Expires: "Never",
				Expiries: keepExpiry("Never", ""), Blocked: full, CanBlock: full, FormError: map[bool]string{true: "Too much"}[full]}
			if full {
				d.Regenerate = &confirmStep{ID: "regenerate-a", Action: "/ui/keys/regenerate", CSRF: "csrf-token", Button: "Regenerate", Yes: "Yes"}
			}
			return tm.keyEdit(w, d)
		},
		pageUserEdit: func(w io.Writer) error {
			return tm.userEdit(w, userEditPage{page: pg("/ui/users"), ID: "u-2", Email: "x@example.com", Self: full, Roles: roleOptions("internal_user"),
				Form: editForm{Blocked: full}, FormError: map[bool]string{true: "Bad"}[full]})
		},
		pageTeamEdit: func(w io.Writer) error {
			return tm.teamEdit(w, teamEditPage{page: pg("/ui/teams"), ID: "t-1", Name: "Platform", FormError: map[bool]string{true: "Bad"}[full]})
		},
		// The signed-out pages look the same for every role.
		pageLogin: func(w io.Writer) error {
			d := loginPage{page: signedOutPage(full), PasswordEnabled: true, Next: "/ui/"}
			if full {
				d.Error, d.Email = "Invalid credentials.", "dana@example.com"
				d.Providers = []SSOProvider{{Name: "generic", DisplayName: "Okta", URL: "/sso/login/generic"}}
			}
			return tm.login(w, d)
		},
		pageLogin + "-sso-only": func(w io.Writer) error {
			return tm.login(w, loginPage{page: signedOutPage(full), Providers: []SSOProvider{{Name: "google", DisplayName: "Google", URL: "/sso/login/google"}}})
		},
		pageSetPassword: func(w io.Writer) error {
			return tm.setPassword(w, setPasswordPage{page: signedOutPage(full), Heading: "Set", Action: "/ui/onboarding", SecretField: "id",
				Secret: "s", Email: "dana@example.com", Error: map[bool]string{true: "Mismatch"}[full]})
		},
		pageLinkGone: func(w io.Writer) error {
			return tm.linkGone(w, messagePage{page: signedOutPage(full), Status: 410, Heading: "Gone", Message: "Unusable."})
		},
		pageForgot: func(w io.Writer) error {
			return tm.forgot(w, forgotPage{page: signedOutPage(full), Sent: full, Email: "x@example.com"})
		},
		pageLogout: func(w io.Writer) error {
			return tm.logout(w, logoutPage{page: pg(""), Redirect: "https://app.example.com/<b>really</b>"})
		},
		pageError + "-signed-out": func(w io.Writer) error {
			return tm.errorPage(w, messagePage{page: signedOutPage(full), Status: 500, Heading: "Oops", Message: "Internal server error."})
		},
	}
	for name, render := range cases {
		var buf bytes.Buffer
		require.NoError(t, render(&buf), "%s as %s (full=%v)", name, role, full)
		out[name] = buf.String()
	}
	return out
}

func TestEveryPageRendersForEveryRole(t *testing.T) {
	tm, err := parseTemplates()
	require.NoError(t, err)
	for _, role := range rbac.Roles() {
		for _, full := range []bool{false, true} {
			pages := renderAll(t, tm, role, full)
			for name, html := range pages {
				require.True(t, strings.HasPrefix(html, "<!doctype html>"), name)
				require.Contains(t, html, "</html>", name)
				require.Contains(t, html, `<main id="main"`, name)
				require.NotContains(t, html, "<script>", "%s: user data is escaped", name)
				require.NotContains(t, html, " style=", "%s: the CSP forbids inline styles", name)
				require.NotContains(t, html, "<b>really</b>", name)
				if strings.Contains(html, "<form method=\"post\"") {
					require.Contains(t, html, `name="csrf_token"`, "%s: every form carries the token", name)
				}
			}
			keys := pages[pageKeys]
			require.Equal(t, rbac.Can(role, rbac.PermKeyWriteOwn), strings.Contains(keys, `id="create-key"`), "%s create button", role)
			require.Equal(t, rbac.Can(role, rbac.PermReadAll), strings.Contains(keys, `href="/ui/users"`), "%s users nav", role)
			users := pages[pageUsers]
			require.Equal(t, rbac.Can(role, rbac.PermUserWrite), strings.Contains(users, "+ New User"), "%s new user", role)
			if full {
				require.Equal(t, rbac.Can(role, rbac.PermInvitationWrite), strings.Contains(users, "Create invitation link"), role)
				require.Equal(t, rbac.Can(role, rbac.PermUserWrite), strings.Contains(users, "Send password reset"), role)
				require.Equal(t, rbac.Can(role, rbac.PermKeyWriteOwn), strings.Contains(keys, "Yes, delete this key"), "%s delete", role)
				require.Contains(t, pages[pageSpend], "<rect class=\"bar\"")
				require.Contains(t, pages[pageLogin], "Sign in with Okta")
			}
		}
	}
}

// A missing page fails start; a broken one fails its first render and
// this test (pages are parsed on first use).
func TestMissingOrBrokenTemplateFails(t *testing.T) {
	full := fstest.MapFS{}
	require.NoError(t, fs.WalkDir(assets, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		full[path] = &fstest.MapFile{Data: b}
		return err
	}))
	tm, err := parseTemplatesFS(full)
	require.NoError(t, err)
	require.NoError(t, tm.parseAll())

	missing := fstest.MapFS{}
	for k, v := range full {
		if k != "templates/spend.html" {
			missing[k] = v
		}
	}
	_, err = parseTemplatesFS(missing)
	require.ErrorContains(t, err, "spend")

	broken := fstest.MapFS{}
	for k, v := range full {
		broken[k] = v
	}
	broken["templates/teams.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{.Nope`)}
	tm, err = parseTemplatesFS(broken)
	require.NoError(t, err)
	require.ErrorContains(t, tm.parseAll(), "teams")
	require.ErrorContains(t, tm.exec(io.Discard, pageTeams, nil), "teams")
	_, err = tm.page(pageLogout)
	require.NoError(t, err, "the other pages still parse")

	nocontent := fstest.MapFS{}
	for k, v := range full {
		nocontent[k] = v
	}
	nocontent["templates/audit.html"] = &fstest.MapFile{Data: []byte(`hello`)}
	tm, err = parseTemplatesFS(nocontent)
	require.NoError(t, err)
	require.ErrorContains(t, tm.parseAll(), "content")
}

// A page whose data does not fit its template fails before anything is
// written.
func TestRenderFailureWritesNothing(t *testing.T) {
	tm, err := parseTemplates()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.Error(t, tm.exec(&buf, pageKeys, struct{ Title string }{"x"}))
	require.Zero(t, buf.Len())
	require.Error(t, tm.exec(&buf, "nope", nil))
}
