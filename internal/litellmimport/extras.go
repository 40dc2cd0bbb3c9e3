package litellmimport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/store"
)

// The columns of each LiteLLM table the import carries (or that are
// bookkeeping nobody misses: update times, derived per-model spend). Every
// other column with a value is counted in Report.Ignored, so a column a
// newer LiteLLM adds is reported rather than silently dropped.
var (
	userCarried = set("user_id", "user_email", "user_alias", "user_role", "teams", "models", "spend", "max_budget",
		"budget_duration", "budget_reset_at", "tpm_limit", "rpm_limit", "metadata", "sso_user_id", "created_at",
		"updated_at", "model_spend", "password")
	teamCarried = set("team_id", "team_alias", "members_with_roles", "metadata", "max_budget", "spend", "models",
		"budget_duration", "budget_reset_at", "tpm_limit", "rpm_limit", "blocked", "created_at", "updated_at",
		"model_spend", "organization_id")
	memberCarried = set("user_id", "team_id", "spend", "budget_id", "budget")
	keyCarried    = set("token", "key_name", "key_alias", "spend", "expires", "models", "user_id", "team_id", "max_budget",
		"budget_duration", "budget_reset_at", "tpm_limit", "rpm_limit", "blocked", "allowed_routes", "metadata",
		"created_by", "created_at", "last_active", "budget_id", "budget", "updated_at", "updated_by", "model_spend",
		"soft_budget_cooldown")
	keyBudgetCarried = set("budget_id", "max_budget", "tpm_limit", "rpm_limit", "budget_duration", "budget_reset_at",
		"created_at", "created_by", "updated_at", "updated_by")
	memberBudgetCarried = set("budget_id", "max_budget", "tpm_limit", "rpm_limit", "budget_duration", "budget_reset_at",
		"created_at", "created_by", "updated_at", "updated_by")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// count records the columns of one row that hold a value and are not
// carried.
func (im *importer) count(table string, cols map[string]json.RawMessage, carried map[string]bool) {
	for c, v := range cols {
		if carried[c] || isDefault(v) {
			continue
		}
		im.ignored[strings.Trim(table, `"`)+"\x00"+c]++
	}
}

// isDefault reports whether a JSON value is LiteLLM's "nothing set": null,
// false, 0, "", [] or {}.
func isDefault(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "", "null", "false", "0", `""`, "[]", "{}":
		return true
	}
	return false
}

func (im *importer) finishIgnored() {
	im.rep.Ignored = im.rep.Ignored[:0]
	for k, n := range im.ignored {
		t, c, _ := strings.Cut(k, "\x00")
		im.rep.Ignored = append(im.rep.Ignored, Ignored{Table: t, Column: c, Rows: n})
	}
	sort.Slice(im.rep.Ignored, func(i, j int) bool {
		a, b := im.rep.Ignored[i], im.rep.Ignored[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		return a.Column < b.Column
	})
}

// access records an access difference: a rule of LiteLLM's that Keygate
// does not enforce for an imported row.
func (im *importer) access(format string, a ...any) {
	im.rep.AccessChanges = append(im.rep.AccessChanges, fmt.Sprintf(format, a...))
}

// routes carries a key's allowed_routes. Entries Keygate cannot match
// (a route group it does not know, or not a route) are kept: they match
// nothing, so the key only narrows, and the operator is told.
func (im *importer) routes(id string, in []string) []string {
	var out []string
	for _, r := range in {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !strings.HasPrefix(r, "/") && !access.RouteGroup(r) {
			im.access("key %s: allowed_routes entry %q is not a route or a route group Keygate knows; it allows nothing", id, r)
		}
		out = append(out, r)
	}
	return out
}

// keyBudget applies the budget a key names by budget_id: LiteLLM reads its
// max_budget, tpm_limit and rpm_limit as the key's own
// (LiteLLM_VerificationTokenView). Where the key also has its own value
// the lower one is kept, so the import never widens.
func (im *importer) keyBudget(id string, k *store.Key, b *SourceBudget) {
	if b == nil {
		return
	}
	im.count(tableBudgets, b.Columns, keyBudgetCarried)
	if k.MaxBudget != nil && b.MaxBudget != nil && *k.MaxBudget != *b.MaxBudget {
		im.access("key %s: its max_budget %.4g and its budget %s's %.4g differ; the lower is imported", id, *k.MaxBudget, b.BudgetID, *b.MaxBudget)
	}
	k.MaxBudget = lowerF(k.MaxBudget, b.MaxBudget)
	k.TPMLimit = lowerI(k.TPMLimit, b.TPMLimit)
	k.RPMLimit = lowerI(k.RPMLimit, b.RPMLimit)
	if k.BudgetDuration == "" && deref(b.BudgetDuration) != "" {
		k.BudgetDuration, k.BudgetResetAt = deref(b.BudgetDuration), b.BudgetResetAt.ptr()
	}
}

func lowerF(a, b *float64) *float64 {
	if a == nil || (b != nil && *b < *a) {
		return b
	}
	return a
}

func lowerI(a, b *int64) *int64 {
	if a == nil || (b != nil && *b < *a) {
		return b
	}
	return a
}

// organizations reports, per imported team, the organization rules Keygate
// cannot hold: it has no organizations, so an organization's budget
// (shared by its teams, checked by LiteLLM since 2025) and model list are
// not enforced.
func (im *importer) organizations(src *Source) {
	orgs := map[string]SourceOrg{}
	for _, o := range src.Organizations {
		orgs[o.OrganizationID] = o
		im.count(tableOrgs, o.Columns, set("organization_id", "organization_alias", "budget_id", "budget", "models", "spend",
			"created_at", "created_by", "updated_at", "updated_by", "model_spend"))
	}
	for _, t := range src.Teams {
		oid := strings.TrimSpace(deref(t.OrganizationID))
		if oid == "" || !im.teams[t.TeamID] {
			continue
		}
		o, ok := orgs[oid]
		if !ok {
			continue
		}
		var lost []string
		if o.Budget != nil && o.Budget.MaxBudget != nil && *o.Budget.MaxBudget > 0 {
			over := ""
			if o.Spend >= *o.Budget.MaxBudget {
				over = ", already used up: LiteLLM refuses the team's keys, Keygate does not"
			}
			lost = append(lost, fmt.Sprintf("budget %.4g (spent %.4g%s)", *o.Budget.MaxBudget, o.Spend, over))
		}
		if len(o.Models) > 0 {
			lost = append(lost, fmt.Sprintf("models %v", o.Models))
		}
		if len(lost) > 0 {
			im.access("team %s: its organization %s's %s are not enforced: Keygate has no organizations (the team keeps its own limits)",
				t.TeamID, oid, strings.Join(lost, " and "))
		}
	}
}

// invitations imports LiteLLM's pending invitation links with their
// expiry, so a link already sent keeps working: Keygate keeps the SHA-256
// of the id (as service.HashSecret does), and LiteLLM's links
// (<base>/ui/onboarding?id=<id>, <base>/ui?invitation_id=<id>) lead to
// Keygate's onboarding. Used and expired links are skipped, and so are
// older links of a user with a newer one (a new invitation supersedes
// the older ones in Keygate; LiteLLM's e-mail flow reuses the newest).
func (im *importer) invitations(ctx context.Context, src *Source) error {
	newest := map[string]SourceInvitation{}
	for _, inv := range src.Invitations {
		if inv.IsAccepted {
			im.rep.Invitations.Skipped++
			continue
		}
		exp := inv.ExpiresAt.ptr()
		if exp == nil || !im.now.Before(*exp) {
			im.rep.Invitations.Skipped++
			continue
		}
		if !im.users[inv.UserID] {
			im.rep.Invitations.Skipped++
			im.warn("invitation for %s: the user was not imported; skipped", inv.UserID)
			continue
		}
		if old, ok := newest[inv.UserID]; ok {
			im.rep.Invitations.Skipped++
			im.warn("invitation for %s: an older pending link is skipped (the newest one is imported)", inv.UserID)
			if !createdAt(inv).After(createdAt(old)) {
				continue
			}
		}
		newest[inv.UserID] = inv
	}
	for _, user := range sortedKeys(newest) {
		inv := newest[user]
		sum := sha256.Sum256([]byte(inv.ID))
		want := store.Invitation{IDHash: hex.EncodeToString(sum[:]), UserID: inv.UserID, Purpose: store.PurposeInvitation,
			ExpiresAt: *inv.ExpiresAt.ptr(), CreatedAt: im.now, CreatedBy: "import-litellm", UpdatedAt: im.now, UpdatedBy: "import-litellm"}
		if t := inv.CreatedAt.ptr(); t != nil {
			want.CreatedAt = *t
		}
		cur, err := im.st.GetInvitation(ctx, want.IDHash)
		found, err := exists(err, "invitation")
		if err != nil {
			return err
		}
		if found {
			if cur.IsAccepted || (cur.UserID == want.UserID && cur.ExpiresAt.Truncate(time.Microsecond).Equal(want.ExpiresAt.Truncate(time.Microsecond))) {
				im.rep.Invitations.Unchanged++
				continue
			}
			im.change(&im.rep.Invitations, "update", "invitation", "for "+user, []string{"expires_at"})
			if im.write {
				if _, err := im.st.UpdateInvitation(ctx, want.IDHash, func(i *store.Invitation) error {
					i.ExpiresAt, i.UpdatedAt, i.UpdatedBy = want.ExpiresAt, im.now, "import-litellm"
					return nil
				}); err != nil {
					return fmt.Errorf("litellmimport: update invitation for %s: %w", user, err)
				}
			}
			continue
		}
		im.change(&im.rep.Invitations, "create", "invitation", "for "+user, nil)
		if im.write {
			if err := im.st.CreateInvitation(ctx, &want); err != nil {
				return fmt.Errorf("litellmimport: create invitation for %s: %w", user, err)
			}
		}
	}
	return nil
}

// spendPrefix marks spend entries made from LiteLLM's daily totals.
const spendPrefix = "litellm-daily:"

// spend imports LiteLLM_DailyUserSpend as one spend entry per row (a
// user's, key's and model's total of one day, dated at 00:00 UTC), so the
// Spend page shows the history. The running totals already include it:
// nothing is added to them.
func (im *importer) spend(ctx context.Context, src *Source) error {
	for _, d := range src.DailySpend {
		day, err := time.Parse("2006-01-02", strings.TrimSpace(d.Date))
		if err != nil || d.ID == "" {
			im.rep.Spend.Skipped++
			im.warn("daily spend row %s: date %q is not YYYY-MM-DD; skipped", d.ID, d.Date)
			continue
		}
		e := store.SpendEntry{RequestID: spendPrefix + d.ID, KeyHash: strings.ToLower(strings.TrimSpace(d.APIKey)),
			Model: deref(d.Model), PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens, Spend: d.Spend, CreatedAt: day}
		if uid := strings.TrimSpace(deref(d.UserID)); im.users[uid] {
			e.UserID = uid
		}
		e.TeamID = im.keyTeams[e.KeyHash]
		_, n, err := im.st.ListSpend(ctx, store.SpendFilter{RequestID: e.RequestID, Page: store.Page{Limit: 1}})
		if err != nil {
			return fmt.Errorf("litellmimport: look up spend %s: %w", e.RequestID, err)
		}
		if n > 0 {
			im.rep.Spend.Unchanged++
			continue
		}
		im.rep.Spend.Created++
		if !im.write {
			continue
		}
		if err := im.st.InsertSpendHistory(ctx, e); err != nil {
			return fmt.Errorf("litellmimport: import daily spend %s: %w", d.ID, err)
		}
	}
	return nil
}

func createdAt(inv SourceInvitation) time.Time {
	if t := inv.CreatedAt.ptr(); t != nil {
		return *t
	}
	return time.Time{}
}
