package litellmimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LiteLLM's table names (Prisma keeps the model names, so they are quoted
// and case-sensitive in PostgreSQL).
const (
	tableUsers       = `"LiteLLM_UserTable"`
	tableTeams       = `"LiteLLM_TeamTable"`
	tableMemberships = `"LiteLLM_TeamMembership"`
	tableKeys        = `"LiteLLM_VerificationToken"`
	tableBudgets     = `"LiteLLM_BudgetTable"`
)

// UISessionTeam is the team_id LiteLLM gives the keys it mints for
// dashboard logins; they are sessions, not API keys, and are not imported.
const UISessionTeam = "litellm-dashboard"

// Source is what Read found in a LiteLLM database.
type Source struct {
	Users       []SourceUser
	Teams       []SourceTeam
	Memberships []SourceMembership
	Keys        []SourceKey
	// Notes are facts about the source worth telling the operator (an
	// optional table that is missing).
	Notes []string
}

// SourceUser is a row of LiteLLM_UserTable. The password column is never
// read.
type SourceUser struct {
	UserID         string          `json:"user_id"`
	UserEmail      *string         `json:"user_email"`
	UserAlias      *string         `json:"user_alias"`
	UserRole       *string         `json:"user_role"`
	Teams          []string        `json:"teams"`
	Models         []string        `json:"models"`
	Spend          float64         `json:"spend"`
	MaxBudget      *float64        `json:"max_budget"`
	BudgetDuration *string         `json:"budget_duration"`
	BudgetResetAt  *Time           `json:"budget_reset_at"`
	TPMLimit       *int64          `json:"tpm_limit"`
	RPMLimit       *int64          `json:"rpm_limit"`
	Metadata       json.RawMessage `json:"metadata"`
	SSOUserID      *string         `json:"sso_user_id"`
	CreatedAt      *Time           `json:"created_at"`
}

// SourceTeam is a row of LiteLLM_TeamTable.
type SourceTeam struct {
	TeamID           string          `json:"team_id"`
	TeamAlias        *string         `json:"team_alias"`
	MembersWithRoles json.RawMessage `json:"members_with_roles"`
	Models           []string        `json:"models"`
	Spend            float64         `json:"spend"`
	MaxBudget        *float64        `json:"max_budget"`
	BudgetDuration   *string         `json:"budget_duration"`
	BudgetResetAt    *Time           `json:"budget_reset_at"`
	TPMLimit         *int64          `json:"tpm_limit"`
	RPMLimit         *int64          `json:"rpm_limit"`
	Metadata         json.RawMessage `json:"metadata"`
	Blocked          *bool           `json:"blocked"`
	CreatedAt        *Time           `json:"created_at"`
}

// SourceMember is one entry of a team's members_with_roles.
type SourceMember struct {
	UserID    *string `json:"user_id"`
	UserEmail *string `json:"user_email"`
	Role      *string `json:"role"`
}

// SourceMembership is a row of LiteLLM_TeamMembership, with the max_budget
// of its budget_id (LiteLLM_BudgetTable) when there is one.
type SourceMembership struct {
	TeamID          string   `json:"team_id"`
	UserID          string   `json:"user_id"`
	Spend           float64  `json:"spend"`
	MaxBudgetInTeam *float64 `json:"max_budget_in_team"`
}

// SourceKey is a row of LiteLLM_VerificationToken. Token is the SHA-256
// hex of the key (very old LiteLLM versions kept the raw "sk-" key there;
// Apply hashes those).
type SourceKey struct {
	Token          string          `json:"token"`
	KeyName        *string         `json:"key_name"`
	KeyAlias       *string         `json:"key_alias"`
	Spend          float64         `json:"spend"`
	Expires        *Time           `json:"expires"`
	Models         []string        `json:"models"`
	UserID         *string         `json:"user_id"`
	TeamID         *string         `json:"team_id"`
	MaxBudget      *float64        `json:"max_budget"`
	BudgetDuration *string         `json:"budget_duration"`
	BudgetResetAt  *Time           `json:"budget_reset_at"`
	TPMLimit       *int64          `json:"tpm_limit"`
	RPMLimit       *int64          `json:"rpm_limit"`
	Blocked        *bool           `json:"blocked"`
	AllowedRoutes  []string        `json:"allowed_routes"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedBy      *string         `json:"created_by"`
	CreatedAt      *Time           `json:"created_at"`
	LastActive     *Time           `json:"last_active"`
}

// Time reads the timestamps PostgreSQL's to_jsonb writes: Prisma's
// DateTime columns are "timestamp(3) without time zone" holding UTC
// ("2024-05-01T12:34:56.789"); timestamptz values carry an offset.
// "infinity" reads as no time at all.
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	switch s {
	case "infinity":
		t.Time = time.Time{}
		return nil
	case "-infinity":
		t.Time = time.Unix(0, 0).UTC()
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("timestamp %q: unrecognised format", s)
}

// ptr returns the time, or nil for a missing or infinite one.
func (t *Time) ptr() *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.Time
	return &v
}

// ErrNotLiteLLM: the database lacks LiteLLM's tables.
var ErrNotLiteLLM = errors.New("litellmimport: not a LiteLLM database")

// Read copies users, teams, memberships and keys out of the LiteLLM
// database at databaseURL, in one read-only repeatable-read transaction
// (a consistent snapshot; nothing can be written to LiteLLM's database).
// Rows are read with to_jsonb, so columns that a LiteLLM version lacks
// are simply absent and columns it adds are ignored.
func Read(ctx context.Context, databaseURL string) (*Source, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("litellmimport: connect to the LiteLLM database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("litellmimport: begin read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	src := &Source{}
	for _, t := range []string{tableUsers, tableTeams, tableKeys} {
		ok, err := tableExists(ctx, tx, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: table %s is missing (is search_path right?)", ErrNotLiteLLM, t)
		}
	}
	// The password column is dropped in SQL: hashes never leave LiteLLM.
	if src.Users, err = readRows[SourceUser](ctx, tx, tableUsers, `SELECT to_jsonb(t) - 'password' FROM `+tableUsers+` t ORDER BY t.user_id`); err != nil {
		return nil, err
	}
	if src.Teams, err = readRows[SourceTeam](ctx, tx, tableTeams, `SELECT to_jsonb(t) FROM `+tableTeams+` t ORDER BY t.team_id`); err != nil {
		return nil, err
	}
	if src.Keys, err = readRows[SourceKey](ctx, tx, tableKeys, `SELECT to_jsonb(t) FROM `+tableKeys+` t ORDER BY t.token`); err != nil {
		return nil, err
	}
	hasMembers, err := tableExists(ctx, tx, tableMemberships)
	if err != nil {
		return nil, err
	}
	if !hasMembers {
		src.Notes = append(src.Notes, "table LiteLLM_TeamMembership is missing (older LiteLLM): memberships come from members_with_roles and users' teams only")
		return src, nil
	}
	q := `SELECT to_jsonb(m) FROM ` + tableMemberships + ` m ORDER BY m.team_id, m.user_id`
	hasBudgets, err := tableExists(ctx, tx, tableBudgets)
	if err != nil {
		return nil, err
	}
	if hasBudgets {
		// to_jsonb(m)->>'budget_id' rather than m.budget_id: versions
		// without the column still parse.
		q = `SELECT to_jsonb(m) || jsonb_build_object('max_budget_in_team', b.max_budget) FROM ` + tableMemberships +
			` m LEFT JOIN ` + tableBudgets + ` b ON b.budget_id = to_jsonb(m)->>'budget_id' ORDER BY m.team_id, m.user_id`
	}
	if src.Memberships, err = readRows[SourceMembership](ctx, tx, tableMemberships, q); err != nil {
		return nil, err
	}
	return src, nil
}

func tableExists(ctx context.Context, tx pgx.Tx, quoted string) (bool, error) {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, quoted).Scan(&ok); err != nil {
		return false, fmt.Errorf("litellmimport: look for table %s: %w", quoted, err)
	}
	return ok, nil
}

func readRows[T any](ctx context.Context, tx pgx.Tx, table, query string) ([]T, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("litellmimport: read %s: %w", table, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("litellmimport: read %s: %w", table, err)
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("litellmimport: decode a row of %s: %w", table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("litellmimport: read %s: %w", table, err)
	}
	return out, nil
}
