package api

import (
	"time"

	"github.com/keygate/keygate/internal/service"
)

// userJSON is LiteLLM's user row, without the password hash.
type userJSON struct {
	UserID         string         `json:"user_id"`
	UserEmail      *string        `json:"user_email"`
	UserAlias      *string        `json:"user_alias"`
	UserRole       string         `json:"user_role"`
	Teams          []string       `json:"teams"`
	Models         []string       `json:"models"`
	Spend          float64        `json:"spend"`
	MaxBudget      *float64       `json:"max_budget"`
	BudgetDuration *string        `json:"budget_duration"`
	BudgetResetAt  *time.Time     `json:"budget_reset_at"`
	TPMLimit       *int64         `json:"tpm_limit"`
	RPMLimit       *int64         `json:"rpm_limit"`
	Metadata       map[string]any `json:"metadata"`
	SSOUserID      *string        `json:"sso_user_id"`
	Blocked        bool           `json:"blocked"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func userView(d service.UserDetail) userJSON {
	u := d.User
	return userJSON{UserID: u.ID, UserEmail: strPtr(u.Email), UserAlias: strPtr(u.Alias), UserRole: u.Role,
		Teams: nonNil(d.TeamIDs()), Models: nonNil(u.Models), Spend: u.Spend, MaxBudget: u.MaxBudget,
		BudgetDuration: strPtr(u.BudgetDuration), BudgetResetAt: u.BudgetResetAt, TPMLimit: u.TPMLimit,
		RPMLimit: u.RPMLimit, Metadata: nonNilMap(u.Metadata), SSOUserID: strPtr(u.SSOSubject), Blocked: u.Disabled,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

type memberJSON struct {
	UserID    string  `json:"user_id"`
	UserEmail *string `json:"user_email"`
	Role      string  `json:"role"`
}

// membershipJSON is LiteLLM's LiteLLM_TeamMembership row: the member's
// budget in the team is litellm_budget_table.max_budget (Keygate has no
// budget ids: budget_id is null); max_budget_in_team says the same.
type membershipJSON struct {
	TeamID          string            `json:"team_id"`
	UserID          string            `json:"user_id"`
	Spend           float64           `json:"spend"`
	BudgetID        *string           `json:"budget_id"`
	BudgetTable     *memberBudgetJSON `json:"litellm_budget_table"`
	MaxBudgetInTeam *float64          `json:"max_budget_in_team"`
}

type memberBudgetJSON struct {
	MaxBudget      *float64 `json:"max_budget"`
	SoftBudget     *float64 `json:"soft_budget"`
	TPMLimit       *int64   `json:"tpm_limit"`
	RPMLimit       *int64   `json:"rpm_limit"`
	BudgetDuration *string  `json:"budget_duration"`
}

// teamJSON is LiteLLM's team row.
type teamJSON struct {
	TeamID           string         `json:"team_id"`
	TeamAlias        *string        `json:"team_alias"`
	Models           []string       `json:"models"`
	Spend            float64        `json:"spend"`
	MaxBudget        *float64       `json:"max_budget"`
	BudgetDuration   *string        `json:"budget_duration"`
	BudgetResetAt    *time.Time     `json:"budget_reset_at"`
	TPMLimit         *int64         `json:"tpm_limit"`
	RPMLimit         *int64         `json:"rpm_limit"`
	Metadata         map[string]any `json:"metadata"`
	Blocked          bool           `json:"blocked"`
	MembersWithRoles []memberJSON   `json:"members_with_roles"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
}

func teamView(d service.TeamDetail) teamJSON {
	t := d.Team
	members := make([]memberJSON, 0, len(d.Members))
	for _, m := range d.Members {
		members = append(members, memberJSON{UserID: m.UserID, UserEmail: strPtr(m.UserEmail), Role: m.Role})
	}
	return teamJSON{TeamID: t.ID, TeamAlias: strPtr(t.Alias), Models: nonNil(t.Models), Spend: t.Spend,
		MaxBudget: t.MaxBudget, BudgetDuration: strPtr(t.BudgetDuration), BudgetResetAt: t.BudgetResetAt,
		TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit, Metadata: nonNilMap(t.Metadata), Blocked: t.Blocked,
		MembersWithRoles: members, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func membershipsView(ms []service.TeamMember) []membershipJSON {
	out := make([]membershipJSON, 0, len(ms))
	for _, m := range ms {
		mj := membershipJSON{TeamID: m.TeamID, UserID: m.UserID, Spend: m.Spend, MaxBudgetInTeam: m.MaxBudgetInTeam}
		if m.MaxBudgetInTeam != nil {
			mj.BudgetTable = &memberBudgetJSON{MaxBudget: m.MaxBudgetInTeam}
		}
		out = append(out, mj)
	}
	return out
}
