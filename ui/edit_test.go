package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// limitedUser creates an internal user limited to two models and $50.
func (e *env) limitedUser(email string) store.User {
	e.t.Helper()
	r, pw, budget := string(rbac.RoleInternalUser), "password-of-"+email, 50.0
	cu, err := e.app.Service().CreateUser(context.Background(), master(), service.NewUser{UserEmail: &email, UserRole: &r, Password: &pw,
		AutoCreateKey: new(bool), Models: []string{"gpt-4o", "claude"}, MaxBudget: &budget})
	require.NoError(e.t, err)
	return cu.User
}

func (e *env) userID(email string) string {
	e.t.Helper()
	u, err := e.app.Service().GetUserByEmail(context.Background(), master(), email)
	require.NoError(e.t, err)
	return u.ID
}

// leadAndDevTeam makes "team-a" with lead@example.com as its admin and
// dev@example.com as a member (both internal users), and returns the
// team's id and dev's user id.
func (e *env) leadAndDevTeam() (teamID, dev string) {
	e.t.Helper()
	e.user("lead@example.com", rbac.RoleInternalUser)
	e.user("dev@example.com", rbac.RoleInternalUser)
	teamID, lead, dev := "team-a", e.userID("lead@example.com"), e.userID("dev@example.com")
	_, err := e.app.Service().CreateTeam(context.Background(), master(), service.NewTeam{TeamID: &teamID,
		MembersWithRoles: service.Members{{UserID: lead, Role: "admin"}, {UserID: dev, Role: "user"}}})
	require.NoError(e.t, err)
	return teamID, dev
}

func (e *env) key(hash string) store.Key {
	e.t.Helper()
	k, err := e.store.GetKey(context.Background(), hash)
	require.NoError(e.t, err)
	return k
}

func (e *env) keyFor(userID, alias string) (hash, raw string) {
	e.t.Helper()
	ik, err := e.app.Service().GenerateKey(context.Background(), master(), service.KeyRequest{UserID: &userID, KeyAlias: &alias})
	require.NoError(e.t, err)
	return ik.Key.Hash, ik.Raw
}

// Issue 16 item 2: a key form that asks for more than the user may have
// is re-shown with what was typed and a message in plain words, not a
// full-page 403; an empty Models field means the user's own models.
func TestUIKeyFormMistakesKeepTheForm(t *testing.T) {
	e := newEnv(t)
	e.limitedUser("dev@example.com")
	b := e.browser()
	home := b.login("dev@example.com", "password-of-dev@example.com")
	require.Contains(t, home.Body, "All you may use: gpt-4o, claude", "the empty Models field says what it means")
	require.Contains(t, home.Body, "your budget ($50.00) still applies")
	csrf := b.cookie("keygate_csrf")

	tooMuch := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"big"}, "duration": {"30d"}, "max_budget": {"100"}})
	require.Equal(t, http.StatusForbidden, tooMuch.Status)
	require.Contains(t, tooMuch.Body, `id="form-error"`)
	require.Contains(t, tooMuch.Body, "The budget can be at most $50.00, your own budget.")
	require.NotContains(t, tooMuch.Body, "max_budget 100")
	require.NotContains(t, tooMuch.Body, "Not allowed")
	require.Contains(t, tooMuch.Body, `value="big"`)
	require.Contains(t, tooMuch.Body, `value="100"`)
	require.Contains(t, tooMuch.Body, `<option value="30d" selected>`)

	model := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"m"}, "models": {"gpt-4o, gpt-5"}})
	require.Equal(t, http.StatusForbidden, model.Status)
	require.Contains(t, model.Body, "“gpt-5” is not one of your models (gpt-4o, claude). Leave Models empty to allow all of them.")
	require.Contains(t, model.Body, `value="gpt-4o, gpt-5"`)

	every := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"all"}, "models": {"*"}})
	require.Equal(t, http.StatusForbidden, every.Status)
	require.Contains(t, every.Body, "A key cannot allow every model here: your models are gpt-4o, claude.")

	keys, _, err := e.store.ListKeys(context.Background(), store.KeyFilter{UserID: e.userID("dev@example.com")})
	require.NoError(t, err)
	require.Empty(t, keys, "nothing was created")

	empty := b.post("/ui/keys/new", url.Values{"csrf_token": {csrf}, "alias": {"ok"}, "models": {""}, "max_budget": {"20"}})
	require.Equal(t, http.StatusOK, empty.Status, empty.Body)
	require.Contains(t, empty.Body, "All you may use: gpt-4o, claude")
}

// Issue 16 item 3: My keys shows the limits a key inherits and why its
// requests are refused, from the decision that refuses them.
func TestUIKeyShowsEffectiveLimitsAndRefusal(t *testing.T) {
	e := newEnv(t)
	u := e.limitedUser("dev@example.com")
	_, err := e.store.UpdateUser(context.Background(), u.ID, func(x *store.User) error { x.Spend = 51; return nil })
	require.NoError(t, err)
	hash, raw := e.keyFor(u.ID, "laptop")
	require.Equal(t, http.StatusTooManyRequests, e.verify(raw), "the proxy refuses it")

	b := e.browser()
	home := b.login("dev@example.com", "password-of-dev@example.com")
	require.Contains(t, home.Body, "Requests are refused now: your budget of $50.00 is used up ($51.00 spent).")
	require.Contains(t, home.Body, "Your budget: $51.00 of $50.00 · used up")
	require.Contains(t, home.Body, "Models — You may use: gpt-4o, claude")
	require.NotContains(t, home.Body, `key-models">All models`)

	_, err = e.app.Service().SetKeyBlocked(context.Background(), master(), hash, true)
	require.NoError(t, err)
	require.Contains(t, b.get("/ui/").Body, "Requests are refused now: the key is blocked.")

	// An admin's All keys names the owner's budget, not "yours".
	admin := e.browser()
	admin.login(adminEmail, adminPassword)
	_, err = e.app.Service().SetKeyBlocked(context.Background(), master(), hash, false)
	require.NoError(t, err)
	require.Contains(t, admin.get("/ui/keys").Body, "Requests are refused now: its owner&#39;s budget of $50.00 is used up")
}

var formErrorRE = regexp.MustCompile(`id="form-error">([^<]*)<`)

// Issue 16 item 6: users are edited through the service's UpdateUser;
// the role just below (admin viewer) is refused and changes nothing.
func TestUIEditUser(t *testing.T) {
	e := newEnv(t)
	u := e.limitedUser("dev@example.com")
	e.user("auditor@example.com", rbac.RoleProxyAdminViewer)

	auditor := e.browser()
	auditor.login("auditor@example.com", "password-of-auditor@example.com")
	require.NotContains(t, auditor.get("/ui/users").Body, "/ui/users/edit", "no Edit offered")
	require.Equal(t, http.StatusForbidden, auditor.get("/ui/users/edit?id="+u.ID).Status)
	forged := auditor.post("/ui/users/edit", url.Values{"csrf_token": {auditor.cookie("keygate_csrf")}, "user_id": {u.ID},
		"role": {"proxy_admin"}, "models": {""}, "blocked": {"on"}})
	require.Equal(t, http.StatusForbidden, forged.Status)
	got, err := e.store.GetUser(context.Background(), u.ID)
	require.NoError(t, err)
	require.Equal(t, string(rbac.RoleInternalUser), got.Role)
	require.False(t, got.Disabled)

	admin := e.browser()
	admin.login(adminEmail, adminPassword)
	require.Contains(t, admin.get("/ui/users").Body, `href="/ui/users/edit?id=`+u.ID+`"`)
	form := admin.get("/ui/users/edit?id=" + u.ID)
	require.Equal(t, http.StatusOK, form.Status)
	require.Contains(t, form.Body, `value="gpt-4o, claude"`)
	require.Contains(t, form.Body, `value="50.00"`)
	csrf := admin.cookie("keygate_csrf")

	bad := admin.post("/ui/users/edit", url.Values{"csrf_token": {csrf}, "user_id": {u.ID}, "role": {"internal_user_viewer"},
		"models": {"gpt-4o"}, "max_budget": {"lots"}})
	require.Equal(t, http.StatusBadRequest, bad.Status)
	require.Equal(t, "The budget must be a number of dollars, for example 25 or 12.50.", formErrorRE.FindStringSubmatch(bad.Body)[1])
	require.Contains(t, bad.Body, `value="lots"`)
	require.Contains(t, bad.Body, `<option value="internal_user_viewer" selected>`)

	ok := admin.post("/ui/users/edit", url.Values{"csrf_token": {csrf}, "user_id": {u.ID}, "alias": {"Dana"}, "role": {"internal_user_viewer"},
		"models": {"gpt-4o, gpt-4o-mini"}, "max_budget": {"75"}, "blocked": {"on"}})
	require.Equal(t, http.StatusSeeOther, ok.Status, ok.Body)
	got, err = e.store.GetUser(context.Background(), u.ID)
	require.NoError(t, err)
	require.Equal(t, string(rbac.RoleInternalUserViewer), got.Role)
	require.Equal(t, []string{"gpt-4o", "gpt-4o-mini"}, got.Models)
	require.Equal(t, 75.0, *got.MaxBudget)
	require.True(t, got.Disabled)
	require.Equal(t, "Dana", got.Alias)

	// Unblock again, every model.
	ok = admin.post("/ui/users/edit", url.Values{"csrf_token": {csrf}, "user_id": {u.ID}, "role": {"internal_user"}, "models": {""},
		"max_budget": {"75"}})
	require.Equal(t, http.StatusSeeOther, ok.Status, ok.Body)
	got, err = e.store.GetUser(context.Background(), u.ID)
	require.NoError(t, err)
	require.False(t, got.Disabled)
	require.Empty(t, got.Models)

	// An admin cannot block their own account from here.
	self := admin.post("/ui/users/edit", url.Values{"csrf_token": {csrf}, "user_id": {e.userID(adminEmail)}, "role": {"proxy_admin"},
		"blocked": {"on"}})
	require.Equal(t, http.StatusBadRequest, self.Status)
	require.Contains(t, self.Body, "You cannot block your own account")
}

// Issue 16 item 6: a key is changed and regenerated by its owner or a
// proxy admin only, and blocked by a proxy admin; others are refused and
// nothing changes.
func TestUIEditKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev := e.limitedUser("dev@example.com")
	e.user("other@example.com", rbac.RoleInternalUser)
	e.user("viewer@example.com", rbac.RoleInternalUserViewer)
	hash, raw := e.keyFor(dev.ID, "laptop")

	// Another internal user, and a viewer, get nothing.
	other := e.browser()
	other.login("other@example.com", "password-of-other@example.com")
	require.Equal(t, http.StatusForbidden, other.get("/ui/keys/edit?key="+hash).Status)
	oc := other.cookie("keygate_csrf")
	require.Equal(t, http.StatusForbidden, other.post("/ui/keys/edit", url.Values{"csrf_token": {oc}, "key": {hash}, "alias": {"pwned"}}).Status)
	require.Equal(t, http.StatusForbidden, other.post("/ui/keys/regenerate", url.Values{"csrf_token": {oc}, "key": {hash}, "confirm": {"yes"}}).Status)
	viewer := e.browser()
	viewer.login("viewer@example.com", "password-of-viewer@example.com")
	require.Equal(t, http.StatusForbidden, viewer.post("/ui/keys/edit", url.Values{"csrf_token": {viewer.cookie("keygate_csrf")}, "key": {hash},
		"alias": {"pwned"}}).Status)
	require.Equal(t, "laptop", e.key(hash).Alias)
	require.Equal(t, http.StatusOK, e.verify(raw))

	// The owner edits it; a mistake keeps the form.
	b := e.browser()
	home := b.login("dev@example.com", "password-of-dev@example.com")
	require.Contains(t, home.Body, `href="/ui/keys/edit?key=`+hash+`"`)
	page := b.get("/ui/keys/edit?key=" + hash)
	require.Equal(t, http.StatusOK, page.Status)
	require.Contains(t, page.Body, "Regenerate")
	require.NotContains(t, page.Body, `id="block-key"`, "only admins are offered Block")
	csrf := b.cookie("keygate_csrf")
	bad := b.post("/ui/keys/edit", url.Values{"csrf_token": {csrf}, "key": {hash}, "alias": {"laptop-2"}, "max_budget": {"80"}})
	require.Equal(t, http.StatusForbidden, bad.Status)
	require.Contains(t, bad.Body, "The budget can be at most $50.00, your own budget.")
	require.Contains(t, bad.Body, `value="laptop-2"`)
	saved := b.post("/ui/keys/edit", url.Values{"csrf_token": {csrf}, "key": {hash}, "alias": {"laptop-2"}, "models": {"gpt-4o"},
		"max_budget": {"20"}, "duration": {"7d"}})
	require.Equal(t, http.StatusSeeOther, saved.Status, saved.Body)
	k := e.key(hash)
	require.Equal(t, "laptop-2", k.Alias)
	require.Equal(t, []string{"gpt-4o"}, k.Models)
	require.Equal(t, 20.0, *k.MaxBudget)
	require.NotNil(t, k.ExpiresAt)

	// The owner may not block their own key (a proxy admin's call).
	blk := b.post("/ui/keys/block", url.Values{"csrf_token": {csrf}, "key": {hash}, "blocked": {"true"}})
	require.Equal(t, http.StatusSeeOther, blk.Status)
	require.False(t, e.key(hash).Blocked)
	require.Contains(t, b.get(blk.Header.Get("Location")).Body, "Only a proxy admin")

	// Regenerate: asked first, then the new value is shown once.
	ask := b.post("/ui/keys/regenerate", url.Values{"csrf_token": {csrf}, "key": {hash}})
	require.Equal(t, http.StatusOK, ask.Status)
	require.Contains(t, ask.Body, `id="confirm-yes"`)
	require.Equal(t, http.StatusOK, e.verify(raw))
	regen := b.post("/ui/keys/regenerate", url.Values{"csrf_token": {csrf}, "key": {hash}, "confirm": {"yes"}})
	require.Equal(t, http.StatusOK, regen.Status, regen.Body)
	require.Equal(t, "no-store", regen.Header.Get("Cache-Control"))
	m := newKeyRE.FindStringSubmatch(regen.Body)
	require.NotNil(t, m)
	require.Equal(t, http.StatusUnauthorized, e.verify(raw), "the old value stops working")
	require.Equal(t, http.StatusOK, e.verify(m[1]))

	// A proxy admin blocks and unblocks it.
	keys, _, err := e.store.ListKeys(ctx, store.KeyFilter{UserID: dev.ID})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	admin := e.browser()
	admin.login(adminEmail, adminPassword)
	require.Contains(t, admin.get("/ui/keys/edit?key="+keys[0].Hash).Body, `id="block-key"`)
	res := admin.post("/ui/keys/block", url.Values{"csrf_token": {admin.cookie("keygate_csrf")}, "key": {keys[0].Hash}, "blocked": {"true"}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	require.True(t, e.key(keys[0].Hash).Blocked)
	require.Equal(t, http.StatusUnauthorized, e.verify(m[1]))
	require.Contains(t, admin.get("/ui/keys/edit?key="+keys[0].Hash).Body, `id="unblock-key"`)
}

// Issue 16 item 6: a team admin may not regenerate or edit a member's
// team key (a new value acts as its owner), even though they may see it.
func TestUITeamAdminCannotRegenerateMembersKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	teamID, dev := e.leadAndDevTeam()
	alias := "team-key"
	ik, err := e.app.Service().GenerateKey(ctx, master(), service.KeyRequest{UserID: &dev, TeamID: &teamID, KeyAlias: &alias})
	require.NoError(t, err)

	b := e.browser()
	b.login("lead@example.com", "password-of-lead@example.com")
	require.Equal(t, http.StatusForbidden, b.get("/ui/keys/edit?key="+ik.Key.Hash).Status)
	res := b.post("/ui/keys/regenerate", url.Values{"csrf_token": {b.cookie("keygate_csrf")}, "key": {ik.Key.Hash}, "confirm": {"yes"}})
	require.Equal(t, http.StatusForbidden, res.Status)
	require.Equal(t, http.StatusOK, e.verify(ik.Raw))
}

// Issue 16 item 6: teams, members' team roles and budgets, invitations.
func TestUIEditTeamMembersAndInvitations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("auditor@example.com", rbac.RoleProxyAdminViewer)
	teamID, dev := e.leadAndDevTeam()

	auditor := e.browser()
	auditor.login("auditor@example.com", "password-of-auditor@example.com")
	ac := auditor.cookie("keygate_csrf")
	require.Equal(t, http.StatusForbidden, auditor.get("/ui/teams/edit?id="+teamID).Status)
	require.Equal(t, http.StatusForbidden, auditor.post("/ui/teams/edit", url.Values{"csrf_token": {ac}, "team_id": {teamID},
		"alias": {"pwned"}, "blocked": {"on"}}).Status)
	require.Equal(t, http.StatusForbidden, auditor.post("/ui/teams/members/update", url.Values{"csrf_token": {ac}, "team_id": {teamID},
		"user_id": {dev}, "role": {"admin"}}).Status)

	// A plain member may not change roles in their team.
	member := e.browser()
	member.login("dev@example.com", "password-of-dev@example.com")
	res := member.post("/ui/teams/members/update", url.Values{"csrf_token": {member.cookie("keygate_csrf")}, "team_id": {teamID},
		"user_id": {dev}, "role": {"admin"}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	m, err := e.store.GetMembership(ctx, teamID, dev)
	require.NoError(t, err)
	require.Equal(t, "user", m.Role)

	// The team's admin sets the member's budget in the team.
	lb := e.browser()
	lb.login("lead@example.com", "password-of-lead@example.com")
	teams := lb.get("/ui/teams")
	require.Contains(t, teams.Body, `action="/ui/teams/members/update"`)
	require.NotContains(t, teams.Body, "/ui/teams/edit", "a team admin does not edit the team itself")
	res = lb.post("/ui/teams/members/update", url.Values{"csrf_token": {lb.cookie("keygate_csrf")}, "team_id": {teamID},
		"user_id": {dev}, "role": {"user"}, "max_budget_in_team": {"15"}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	m, err = e.store.GetMembership(ctx, teamID, dev)
	require.NoError(t, err)
	require.Equal(t, 15.0, *m.MaxBudgetInTeam)

	// A proxy admin edits the team and promotes the member.
	admin := e.browser()
	admin.login(adminEmail, adminPassword)
	csrf := admin.cookie("keygate_csrf")
	require.Contains(t, admin.get("/ui/teams").Body, `href="/ui/teams/edit?id=team-a"`)
	bad := admin.post("/ui/teams/edit", url.Values{"csrf_token": {csrf}, "team_id": {teamID}, "alias": {""}, "models": {"gpt-4o"}})
	require.Equal(t, http.StatusBadRequest, bad.Status)
	require.Contains(t, bad.Body, "Enter a name for the team.")
	require.Contains(t, bad.Body, `value="gpt-4o"`)
	res = admin.post("/ui/teams/edit", url.Values{"csrf_token": {csrf}, "team_id": {teamID}, "alias": {"Platform"}, "models": {"gpt-4o"},
		"max_budget": {"500"}, "blocked": {"on"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	tm, err := e.store.GetTeam(ctx, teamID)
	require.NoError(t, err)
	require.Equal(t, "Platform", tm.Alias)
	require.True(t, tm.Blocked)
	require.Equal(t, 500.0, *tm.MaxBudget)
	res = admin.post("/ui/teams/members/update", url.Values{"csrf_token": {csrf}, "team_id": {teamID}, "user_id": {dev}, "role": {"admin"}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	m, err = e.store.GetMembership(ctx, teamID, dev)
	require.NoError(t, err)
	require.Equal(t, "admin", m.Role)

	// Invitations: revoked by an admin, after a confirmation; not by a viewer.
	email, role := "new@example.com", string(rbac.RoleInternalUser)
	cu, err := e.app.Service().CreateUser(ctx, master(), service.NewUser{UserEmail: &email, UserRole: &role, Invite: true})
	require.NoError(t, err)
	require.NotNil(t, cu.Invitation)
	invs := admin.get("/ui/invitations")
	hashRE := regexp.MustCompile(`action="/ui/invitations/revoke"[^>]*>.*?name="id" value="([^"]+)"`)
	hm := hashRE.FindStringSubmatch(invs.Body)
	require.NotNil(t, hm, invs.Body)
	require.Equal(t, http.StatusForbidden, auditor.post("/ui/invitations/revoke", url.Values{"csrf_token": {ac}, "id": {hm[1]}, "confirm": {"yes"}}).Status)
	_, n, err := e.store.ListInvitations(ctx, store.InvitationFilter{UserID: cu.User.ID, Page: store.Page{Limit: 10}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	res = admin.post("/ui/invitations/revoke", url.Values{"csrf_token": {csrf}, "id": {hm[1]}, "confirm": {"yes"}})
	require.Equal(t, http.StatusSeeOther, res.Status)
	_, n, err = e.store.ListInvitations(ctx, store.InvitationFilter{UserID: cu.User.ID, Page: store.Page{Limit: 10}})
	require.NoError(t, err)
	require.Zero(t, n)
	link, err := url.Parse(cu.Invitation.Link)
	require.NoError(t, err)
	require.Equal(t, http.StatusGone, e.browser().get("/ui/onboarding?"+link.RawQuery).Status, "the link no longer works")
}

// Issue 16 item 3: each reason a key is refused is named, at the level
// that refuses it (team, member budget in the team, expiry, membership).
func TestUIKeyRefusalReasons(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.app.Service()
	e.user("dev@example.com", rbac.RoleInternalUser)
	dev := e.userID("dev@example.com")
	teamID, ten, teamAlias := "team-a", 10.0, "team-key"
	_, err := svc.CreateTeam(ctx, master(), service.NewTeam{TeamID: &teamID, Models: []string{"gpt-4o"},
		MembersWithRoles: service.Members{{UserID: dev, Role: "user"}}})
	require.NoError(t, err)
	_, err = svc.UpdateMember(ctx, master(), service.MemberChange{TeamID: teamID, UserID: dev, MaxBudgetInTeam: &ten})
	require.NoError(t, err)
	teamKey, err := svc.GenerateKey(ctx, master(), service.KeyRequest{UserID: &dev, TeamID: &teamID, KeyAlias: &teamAlias})
	require.NoError(t, err)
	day, shortAlias := "1h", "short"
	short, err := svc.GenerateKey(ctx, master(), service.KeyRequest{UserID: &dev, KeyAlias: &shortAlias, Duration: &day})
	require.NoError(t, err)

	b := e.browser()
	home := b.login("dev@example.com", "password-of-dev@example.com")
	require.Contains(t, home.Body, "Models — Team: gpt-4o")
	require.Contains(t, home.Body, "Your budget in the team: $0.00 of $10.00")
	require.NotContains(t, home.Body, "Requests are refused now")

	require.NoError(t, e.store.RecordSpend(ctx, store.SpendEntry{RequestID: "r-1", KeyHash: teamKey.Key.Hash, UserID: dev, TeamID: teamID,
		Model: "gpt-4o", Spend: 10, CreatedAt: e.clock.Now()}))
	require.Contains(t, b.get("/ui/").Body, "Requests are refused now: your budget in the team of $10.00 is used up ($10.00 spent).")

	blocked := true
	_, err = svc.UpdateTeam(ctx, master(), service.TeamUpdate{TeamID: teamID, Blocked: &blocked})
	require.NoError(t, err)
	require.Contains(t, b.get("/ui/").Body, "Requests are refused now: its team is blocked.")
	require.Equal(t, http.StatusUnauthorized, e.verify(teamKey.Raw))

	e.clock.Advance(2 * time.Hour)
	require.Contains(t, b.get("/ui/").Body, "Requests are refused now: the key has expired.")
	require.Equal(t, http.StatusUnauthorized, e.verify(short.Raw))
}
