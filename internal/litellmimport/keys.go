package litellmimport

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keygate/keygate/store"
)

// membership is the merged view of one (team, user) pair.
type membership struct {
	role      string
	spend     float64
	maxBudget *float64
}

// memberships merges LiteLLM's three records of team membership: the
// team's members_with_roles (which has the role), LiteLLM_TeamMembership
// (spend and per-member budget) and the user's teams[] list.
func (im *importer) memberships(ctx context.Context, src *Source) error {
	all := map[string]*membership{} // "team\x00user"
	get := func(team, user string) *membership {
		k := team + "\x00" + user
		if all[k] == nil {
			all[k] = &membership{role: "user"}
		}
		return all[k]
	}
	for _, t := range src.Teams {
		if t.TeamID == UISessionTeam {
			continue
		}
		var members []SourceMember
		if s := strings.TrimSpace(string(t.MembersWithRoles)); strings.HasPrefix(s, "[") {
			if err := json.Unmarshal(t.MembersWithRoles, &members); err != nil {
				im.warn("team %s: members_with_roles is not a list of members; ignored", t.TeamID)
			}
		}
		for _, m := range members {
			uid := strings.TrimSpace(deref(m.UserID))
			if uid == "" {
				uid = im.userByEmail[strings.ToLower(strings.TrimSpace(deref(m.UserEmail)))]
			}
			if uid == "" {
				im.rep.Memberships.Skipped++
				im.warn("team %s: a member without a known user_id or e-mail was skipped", t.TeamID)
				continue
			}
			role := strings.TrimSpace(deref(m.Role))
			if role != "admin" && role != "user" {
				im.warn("team %s: member %s has team role %q; imported as user", t.TeamID, uid, role)
				role = "user"
			}
			get(t.TeamID, uid).role = role
		}
	}
	for _, m := range src.Memberships {
		mm := get(m.TeamID, m.UserID)
		mm.spend = m.Spend
		im.count(tableMemberships, m.Columns, memberCarried)
		if b := m.Budget; b != nil {
			mm.maxBudget = b.MaxBudget
			im.count(tableBudgets, b.Columns, memberBudgetCarried)
			id := m.TeamID + "/" + m.UserID
			if b.TPMLimit != nil || b.RPMLimit != nil {
				im.access("membership %s: LiteLLM's per-member tpm_limit/rpm_limit (budget %s) are not enforced: Keygate has no per-member rate limits", id, b.BudgetID)
			}
			if d := strings.TrimSpace(deref(b.BudgetDuration)); d != "" {
				im.access("membership %s: the member budget's own period (%s) is not kept: in Keygate it resets with the team's budget", id, d)
			}
		}
	}
	for _, u := range src.Users {
		for _, t := range u.Teams {
			if t != "" && t != UISessionTeam {
				get(t, u.UserID)
			}
		}
	}
	for _, k := range sortedKeys(all) {
		team, user, _ := strings.Cut(k, "\x00")
		if err := im.membership(ctx, team, user, *all[k]); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) membership(ctx context.Context, team, user string, m membership) error {
	id := team + "/" + user
	okTeam, err := im.knownTeam(ctx, team)
	if err != nil {
		return err
	}
	okUser, err := im.knownUser(ctx, user)
	if err != nil {
		return err
	}
	if !okTeam || !okUser {
		im.rep.Memberships.Skipped++
		im.warn("membership %s: the team or the user does not exist; skipped", id)
		return nil
	}
	want := store.Membership{TeamID: team, UserID: user, Role: m.role, MaxBudgetInTeam: m.maxBudget, Spend: m.spend, CreatedAt: im.now}
	cur, err := im.st.GetMembership(ctx, team, user)
	found, err := exists(err, "membership "+id)
	if err != nil {
		return err
	}
	if found {
		// PutMembership updates only the role and the budget of an
		// existing membership; spend is carried over at creation.
		var d differ
		d.str("role", cur.Role, want.Role)
		d.f64p("max_budget_in_team", cur.MaxBudgetInTeam, want.MaxBudgetInTeam)
		if len(d.fields) == 0 {
			im.rep.Memberships.Unchanged++
			return nil
		}
		want.CreatedAt, want.Spend = cur.CreatedAt, cur.Spend
		im.change(&im.rep.Memberships, "update", "membership", id, d.fields)
	} else {
		im.change(&im.rep.Memberships, "create", "membership", id, nil)
	}
	if !im.write {
		return nil
	}
	if err := im.st.PutMembership(ctx, want); err != nil {
		return fmt.Errorf("litellmimport: membership %s: %w", id, err)
	}
	return nil
}

func (im *importer) key(ctx context.Context, sk SourceKey) error {
	if strings.TrimSpace(deref(sk.TeamID)) == UISessionTeam {
		im.rep.Keys.Skipped++ // a dashboard login, not an API key
		return nil
	}
	name := deref(sk.KeyName)
	if strings.HasPrefix(strings.TrimSpace(sk.Token), "sk-") {
		// LiteLLM has looked keys up by their SHA-256 since Dec 2023: a row
		// holding the raw key no longer matches anything it is sent.
		im.rep.Keys.Skipped++
		im.warn("key %s: its token is stored unhashed (LiteLLM before Dec 2023), so LiteLLM no longer accepts it; skipped", orUnnamed(name))
		return nil
	}
	hash, ok := hashOf(sk.Token)
	if !ok {
		im.rep.Keys.Skipped++
		im.warn("key %s: token is not a SHA-256 hex; skipped", orUnnamed(name))
		return nil
	}
	id := orUnnamed(name) + " (" + hash[:12] + ")"
	want := store.Key{Hash: hash, KeyName: name, Models: sk.Models, AllowedRoutes: im.routes(id, sk.AllowedRoutes),
		MaxBudget: sk.MaxBudget, BudgetDuration: deref(sk.BudgetDuration), BudgetResetAt: sk.BudgetResetAt.ptr(), Spend: sk.Spend,
		TPMLimit: sk.TPMLimit, RPMLimit: sk.RPMLimit, Blocked: sk.Blocked != nil && *sk.Blocked, ExpiresAt: sk.Expires.ptr(),
		KeyType: keyType(sk.AllowedRoutes), Metadata: im.metadata("key "+id, sk.Metadata), CreatedBy: deref(sk.CreatedBy)}
	if tid := strings.TrimSpace(deref(sk.TeamID)); tid != "" {
		ok, err := im.knownTeam(ctx, tid)
		if err != nil {
			return err
		}
		if !ok {
			// LiteLLM refuses a key whose team is not in its database
			// (get_team_object raises); importing it without a team would
			// widen it to the owner's personal access.
			im.rep.Keys.Skipped++
			im.warn("key %s: team %s does not exist, so LiteLLM refuses the key; skipped", id, tid)
			return nil
		}
		want.TeamID = tid
	}
	if uid := strings.TrimSpace(deref(sk.UserID)); uid != "" {
		ok, err := im.knownUser(ctx, uid)
		if err != nil {
			return err
		}
		if ok {
			want.UserID = uid
		} else {
			// Keygate refuses a key whose owner does not exist; LiteLLM
			// goes on without a user object (no user checks). Ownerless
			// keeps the key working with the same limits.
			im.warn("key %s: owner %s does not exist; imported without an owner", id, uid)
		}
	}
	im.keyBudget(id, &want, sk.Budget)
	im.count(tableKeys, sk.Columns, keyCarried)
	im.keyTeams[hash] = want.TeamID
	alias, err := im.alias(ctx, id, hash, want.UserID, strings.TrimSpace(deref(sk.KeyAlias)))
	if err != nil {
		return err
	}
	want.Alias = alias
	cur, err := im.st.GetKey(ctx, hash)
	found, err := exists(err, "key "+id)
	if err != nil {
		return err
	}
	if !found {
		want.CreatedAt, want.UpdatedAt, want.LastActive = im.now, im.now, sk.LastActive.ptr()
		if t := sk.CreatedAt.ptr(); t != nil {
			want.CreatedAt = *t
		}
		im.change(&im.rep.Keys, "create", "key", id, nil)
		if !im.write {
			return nil
		}
		if err := im.st.CreateKey(ctx, &want); err != nil {
			return fmt.Errorf("litellmimport: create key %s: %w", id, err)
		}
		return nil
	}
	var d differ
	d.str("key_name", cur.KeyName, want.KeyName)
	d.str("key_alias", cur.Alias, want.Alias)
	d.str("user_id", cur.UserID, want.UserID)
	d.str("team_id", cur.TeamID, want.TeamID)
	d.strs("models", cur.Models, want.Models)
	d.strs("allowed_routes", cur.AllowedRoutes, want.AllowedRoutes)
	d.f64p("max_budget", cur.MaxBudget, want.MaxBudget)
	d.str("budget_duration", cur.BudgetDuration, want.BudgetDuration)
	d.time("budget_reset_at", cur.BudgetResetAt, want.BudgetResetAt)
	d.f64("spend", cur.Spend, want.Spend)
	d.i64p("tpm_limit", cur.TPMLimit, want.TPMLimit)
	d.i64p("rpm_limit", cur.RPMLimit, want.RPMLimit)
	d.boolean("blocked", cur.Blocked, want.Blocked)
	d.time("expires", cur.ExpiresAt, want.ExpiresAt)
	d.str("key_type", cur.KeyType, want.KeyType)
	d.meta("metadata", cur.Metadata, want.Metadata)
	if len(d.fields) == 0 {
		im.rep.Keys.Unchanged++
		return nil
	}
	im.change(&im.rep.Keys, "update", "key", id, d.fields)
	if !im.write {
		return nil
	}
	_, err = im.st.UpdateKey(ctx, hash, func(k *store.Key) error {
		k.KeyName, k.Alias, k.UserID, k.TeamID, k.Models = want.KeyName, want.Alias, want.UserID, want.TeamID, want.Models
		k.AllowedRoutes = want.AllowedRoutes
		k.MaxBudget, k.BudgetDuration, k.BudgetResetAt, k.Spend = want.MaxBudget, want.BudgetDuration, want.BudgetResetAt, want.Spend
		k.TPMLimit, k.RPMLimit, k.Blocked, k.ExpiresAt = want.TPMLimit, want.RPMLimit, want.Blocked, want.ExpiresAt
		k.KeyType, k.Metadata, k.UpdatedAt = want.KeyType, want.Metadata, im.now
		return nil
	})
	if err != nil {
		return fmt.Errorf("litellmimport: update key %s: %w", id, err)
	}
	return nil
}

// alias returns the alias to give the key: Keygate keeps aliases unique
// per owner (LiteLLM across all keys, in code only), so one another key
// of the same owner already holds is dropped with a warning.
func (im *importer) alias(ctx context.Context, id, hash, owner, alias string) (string, error) {
	if alias == "" {
		return "", nil
	}
	other, err := im.st.GetKeyByAlias(ctx, owner, alias)
	found, err := exists(err, "key by alias")
	if err != nil {
		return "", err
	}
	if found && other.Hash != hash {
		im.warn("key %s: alias %q is taken by key %s; imported without an alias", id, alias, orUnnamed(other.KeyName))
		return "", nil
	}
	if holder, ok := im.aliasOwner(owner+"\x00"+alias, hash); !ok {
		im.warn("key %s: alias %q is also key %s's; imported without an alias", id, alias, holder)
		return "", nil
	}
	return alias, nil
}

// aliasOwner claims alias (owner and name) for hash within this run; it
// reports the earlier claimant when another key has it.
func (im *importer) aliasOwner(alias, hash string) (string, bool) {
	if im.aliases == nil {
		im.aliases = map[string]string{}
	}
	if h, ok := im.aliases[alias]; ok && h != hash {
		return h[:12], false
	}
	im.aliases[alias] = hash
	return "", true
}

func orUnnamed(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return name
}
