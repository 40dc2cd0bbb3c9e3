package litellmimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// role maps a LiteLLM user_role onto Keygate's four roles. LiteLLM treats
// every other value (org_admin, team, customer, the pre-2024
// app_owner/app_user, none) as internal_user (auth_checks._get_user_role
// and route_checks: org_admin powers need an organization, which Keygate
// has not), so they import as internal_user with a warning, or as the
// least privileged role with Options.StrictRoles.
func (im *importer) role(u SourceUser) string {
	r := strings.TrimSpace(deref(u.UserRole))
	switch rbac.Role(r) {
	case rbac.RoleProxyAdmin, rbac.RoleProxyAdminViewer, rbac.RoleInternalUser, rbac.RoleInternalUserViewer:
		return r
	}
	target, why := rbac.RoleInternalUser, "as LiteLLM treats it"
	if im.opts.StrictRoles {
		target, why = rbac.RoleInternalUserViewer, "--strict-roles"
	}
	shown := fmt.Sprintf("%q", r)
	if u.UserRole == nil {
		shown = "NULL"
	}
	im.warn("user %s: role %s is not one of Keygate's; imported as %s (%s)", u.UserID, shown, target, why)
	return string(target)
}

func (im *importer) user(ctx context.Context, su SourceUser) error {
	id := strings.TrimSpace(su.UserID)
	if id == "" {
		im.rep.Users.Skipped++
		im.warn("a user row without user_id was skipped")
		return nil
	}
	email, err := im.email(ctx, id, strings.TrimSpace(deref(su.UserEmail)))
	if err != nil {
		return err
	}
	meta := im.metadata("user "+id, su.Metadata)
	want := store.User{ID: id, Email: email, Alias: deref(su.UserAlias), Role: im.role(su), Models: su.Models,
		MaxBudget: su.MaxBudget, BudgetDuration: deref(su.BudgetDuration), BudgetResetAt: su.BudgetResetAt.ptr(),
		Spend: su.Spend, TPMLimit: su.TPMLimit, RPMLimit: su.RPMLimit, Metadata: meta}
	if err := im.ssoLink(ctx, &want, su); err != nil {
		return err
	}
	im.count(tableUsers, su.Columns, userCarried)
	im.users[id] = true
	if email != "" {
		im.userByEmail[strings.ToLower(email)] = id
	}
	cur, err := im.st.GetUser(ctx, id)
	found, err := exists(err, "user "+id)
	if err != nil {
		return err
	}
	if !found {
		want.CreatedAt, want.UpdatedAt = im.now, im.now
		if t := su.CreatedAt.ptr(); t != nil {
			want.CreatedAt = *t
		}
		im.change(&im.rep.Users, "create", "user", id, nil)
		if !im.write {
			return nil
		}
		if err := im.st.CreateUser(ctx, &want); err != nil {
			return fmt.Errorf("litellmimport: create user %s: %w", id, err)
		}
		return nil
	}
	var d differ
	d.str("user_email", cur.Email, want.Email)
	d.str("user_alias", cur.Alias, want.Alias)
	d.str("user_role", cur.Role, want.Role)
	d.strs("models", cur.Models, want.Models)
	d.f64p("max_budget", cur.MaxBudget, want.MaxBudget)
	d.str("budget_duration", cur.BudgetDuration, want.BudgetDuration)
	d.time("budget_reset_at", cur.BudgetResetAt, want.BudgetResetAt)
	d.f64("spend", cur.Spend, want.Spend)
	d.i64p("tpm_limit", cur.TPMLimit, want.TPMLimit)
	d.i64p("rpm_limit", cur.RPMLimit, want.RPMLimit)
	d.meta("metadata", cur.Metadata, want.Metadata)
	linkSSO := cur.SSOSubject == "" && want.SSOSubject != ""
	d.add("sso_user_id", linkSSO)
	if cur.SSOSubject != "" && want.SSOSubject != "" && (cur.SSOIssuer != want.SSOIssuer || cur.SSOSubject != want.SSOSubject) {
		im.warn("user %s: keeps the SSO link it has in Keygate; LiteLLM's sso_user_id is not carried", id)
	}
	if len(d.fields) == 0 {
		im.rep.Users.Unchanged++
		return nil
	}
	im.change(&im.rep.Users, "update", "user", id, d.fields)
	if !im.write {
		return nil
	}
	// The password hash, an existing SSO link and the disabled flag are
	// Keygate's own and are left as they are.
	_, err = im.st.UpdateUser(ctx, id, func(u *store.User) error {
		if linkSSO {
			u.SSOIssuer, u.SSOSubject = want.SSOIssuer, want.SSOSubject
		}
		u.Email, u.Alias, u.Role, u.Models = want.Email, want.Alias, want.Role, want.Models
		u.MaxBudget, u.BudgetDuration, u.BudgetResetAt, u.Spend = want.MaxBudget, want.BudgetDuration, want.BudgetResetAt, want.Spend
		u.TPMLimit, u.RPMLimit, u.Metadata, u.UpdatedAt = want.TPMLimit, want.RPMLimit, want.Metadata, im.now
		return nil
	})
	if err != nil {
		return fmt.Errorf("litellmimport: update user %s: %w", id, err)
	}
	return nil
}

// email returns the address to give user id: LiteLLM does not enforce
// unique e-mails, Keygate does (case-insensitively), so an address already
// taken by another user is dropped with a warning.
func (im *importer) email(ctx context.Context, id, email string) (string, error) {
	if email == "" {
		return "", nil
	}
	lower := strings.ToLower(email)
	if owner, ok := im.emailOwner[lower]; ok && owner != id {
		im.warn("user %s: e-mail is also user %s's; imported without an e-mail", id, owner)
		return "", nil
	}
	other, err := im.st.GetUserByEmail(ctx, email)
	found, err := exists(err, "user by e-mail")
	if err != nil {
		return "", err
	}
	if found && other.ID != id {
		im.warn("user %s: e-mail belongs to Keygate user %s; imported without an e-mail", id, other.ID)
		return "", nil
	}
	im.emailOwner[lower] = id
	return email, nil
}

func (im *importer) team(ctx context.Context, stm SourceTeam) error {
	id := strings.TrimSpace(stm.TeamID)
	if id == "" || id == UISessionTeam {
		im.rep.Teams.Skipped++
		if id == "" {
			im.warn("a team row without team_id was skipped")
		}
		return nil
	}
	want := store.Team{ID: id, Alias: deref(stm.TeamAlias), Models: stm.Models, MaxBudget: stm.MaxBudget,
		BudgetDuration: deref(stm.BudgetDuration), BudgetResetAt: stm.BudgetResetAt.ptr(), Spend: stm.Spend,
		TPMLimit: stm.TPMLimit, RPMLimit: stm.RPMLimit, Metadata: im.metadata("team "+id, stm.Metadata),
		Blocked: stm.Blocked != nil && *stm.Blocked}
	im.count(tableTeams, stm.Columns, teamCarried)
	im.teams[id] = true
	cur, err := im.st.GetTeam(ctx, id)
	found, err := exists(err, "team "+id)
	if err != nil {
		return err
	}
	if !found {
		want.CreatedAt, want.UpdatedAt = im.now, im.now
		if t := stm.CreatedAt.ptr(); t != nil {
			want.CreatedAt = *t
		}
		im.change(&im.rep.Teams, "create", "team", id, nil)
		if !im.write {
			return nil
		}
		if err := im.st.CreateTeam(ctx, &want); err != nil {
			return fmt.Errorf("litellmimport: create team %s: %w", id, err)
		}
		return nil
	}
	var d differ
	d.str("team_alias", cur.Alias, want.Alias)
	d.strs("models", cur.Models, want.Models)
	d.f64p("max_budget", cur.MaxBudget, want.MaxBudget)
	d.str("budget_duration", cur.BudgetDuration, want.BudgetDuration)
	d.time("budget_reset_at", cur.BudgetResetAt, want.BudgetResetAt)
	d.f64("spend", cur.Spend, want.Spend)
	d.i64p("tpm_limit", cur.TPMLimit, want.TPMLimit)
	d.i64p("rpm_limit", cur.RPMLimit, want.RPMLimit)
	d.meta("metadata", cur.Metadata, want.Metadata)
	d.boolean("blocked", cur.Blocked, want.Blocked)
	if len(d.fields) == 0 {
		im.rep.Teams.Unchanged++
		return nil
	}
	im.change(&im.rep.Teams, "update", "team", id, d.fields)
	if !im.write {
		return nil
	}
	_, err = im.st.UpdateTeam(ctx, id, func(t *store.Team) error {
		t.Alias, t.Models, t.MaxBudget, t.BudgetDuration = want.Alias, want.Models, want.MaxBudget, want.BudgetDuration
		t.BudgetResetAt, t.Spend, t.TPMLimit, t.RPMLimit = want.BudgetResetAt, want.Spend, want.TPMLimit, want.RPMLimit
		t.Metadata, t.Blocked, t.UpdatedAt = want.Metadata, want.Blocked, im.now
		return nil
	})
	if err != nil {
		return fmt.Errorf("litellmimport: update team %s: %w", id, err)
	}
	return nil
}

// knownUser reports whether id is imported now or already in Keygate.
func (im *importer) knownUser(ctx context.Context, id string) (bool, error) {
	if im.users[id] {
		return true, nil
	}
	_, err := im.st.GetUser(ctx, id)
	ok, err := exists(err, "user "+id)
	if ok {
		im.users[id] = true
	}
	return ok, err
}

func (im *importer) knownTeam(ctx context.Context, id string) (bool, error) {
	if im.teams[id] {
		return true, nil
	}
	_, err := im.st.GetTeam(ctx, id)
	ok, err := exists(err, "team "+id)
	if ok {
		im.teams[id] = true
	}
	return ok, err
}

// metadata decodes a JSON object column; anything else is dropped with a
// warning.
func (im *importer) metadata(what string, raw json.RawMessage) map[string]any {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		im.warn("%s: metadata is not a JSON object; not imported", what)
		return nil
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// ssoLink sets want's SSO link from LiteLLM's sso_user_id when an issuer
// was given (Options.SSOIssuer) and no other Keygate user holds it.
func (im *importer) ssoLink(ctx context.Context, want *store.User, su SourceUser) error {
	sub := strings.TrimSpace(deref(su.SSOUserID))
	if sub == "" || im.opts.SSOIssuer == "" {
		return nil
	}
	other, err := im.st.GetUserBySSO(ctx, im.opts.SSOIssuer, sub)
	found, err := exists(err, "user by SSO link")
	if err != nil {
		return err
	}
	if found && other.ID != want.ID {
		im.warn("user %s: sso_user_id is already linked to Keygate user %s; not carried", want.ID, other.ID)
		return nil
	}
	want.SSOIssuer, want.SSOSubject = im.opts.SSOIssuer, sub
	return nil
}

// ssoNotCarried warns once when users have sso_user_id but no issuer was
// named to carry it to.
func (im *importer) ssoNotCarried(src *Source) {
	if im.opts.SSOIssuer != "" {
		return
	}
	n := 0
	for _, u := range src.Users {
		if strings.TrimSpace(deref(u.SSOUserID)) != "" {
			n++
		}
	}
	if n > 0 {
		im.warn("%d users have an sso_user_id, which is not carried: pass --sso-issuer <your IdP's issuer URL> so they sign in by SSO to the same account", n)
	}
}

// keyType recovers Keygate's key_type from LiteLLM's allowed_routes,
// which is what LiteLLM turns key_type into.
func keyType(routes []string) string {
	if len(routes) != 1 {
		return ""
	}
	switch routes[0] {
	case "llm_api_routes":
		return "llm_api"
	case "management_routes":
		return "management"
	case "info_routes":
		return "read_only"
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hashOf returns the SHA-256 hex Keygate looks keys up by: LiteLLM's
// token, lower-cased.
func hashOf(token string) (string, bool) {
	t := strings.ToLower(strings.TrimSpace(token))
	if len(t) != 64 {
		return "", false
	}
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return t, true
}
