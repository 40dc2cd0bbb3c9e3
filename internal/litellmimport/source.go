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
	tableOrgs        = `"LiteLLM_OrganizationTable"`
	tableInvitations = `"LiteLLM_InvitationLink"`
	tableDailySpend  = `"LiteLLM_DailyUserSpend"`
	tablePrisma      = `"_prisma_migrations"`
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
	// Organizations, Invitations and DailySpend come from tables older
	// LiteLLM versions lack; they are empty then.
	Organizations []SourceOrg
	Invitations   []SourceInvitation
	DailySpend    []SourceDailySpend
	// SchemaVersion is the newest LiteLLM migration applied to the source
	// ("" when _prisma_migrations is missing).
	SchemaVersion string
	// OtherTables names LiteLLM tables that hold rows the import does not
	// read (model list, request logs, end users, ...).
	OtherTables []string
	// Notes are facts about the source worth telling the operator (an
	// optional table that is missing).
	Notes []string
}

// columns keeps every column of a row as read, so the importer can count
// the ones it does not carry (including columns of LiteLLM versions newer
// than it knows).
type columns struct {
	Columns map[string]json.RawMessage `json:"-"`
}

func (c *columns) keepColumns(m map[string]json.RawMessage) { c.Columns = m }

// SourceBudget is a row of LiteLLM_BudgetTable, joined onto the rows
// that name it by budget_id.
type SourceBudget struct {
	columns
	BudgetID       string   `json:"budget_id"`
	MaxBudget      *float64 `json:"max_budget"`
	SoftBudget     *float64 `json:"soft_budget"`
	TPMLimit       *int64   `json:"tpm_limit"`
	RPMLimit       *int64   `json:"rpm_limit"`
	BudgetDuration *string  `json:"budget_duration"`
	BudgetResetAt  *Time    `json:"budget_reset_at"`
}

// UnmarshalJSON keeps the budget's columns too.
func (b *SourceBudget) UnmarshalJSON(raw []byte) error {
	type plain SourceBudget
	var p plain
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	p.Columns = m
	*b = SourceBudget(p)
	return nil
}

// SourceOrg is a row of LiteLLM_OrganizationTable with its budget.
type SourceOrg struct {
	columns
	OrganizationID string        `json:"organization_id"`
	Alias          *string       `json:"organization_alias"`
	Models         []string      `json:"models"`
	Spend          float64       `json:"spend"`
	Budget         *SourceBudget `json:"budget"`
}

// SourceInvitation is a row of LiteLLM_InvitationLink.
type SourceInvitation struct {
	columns
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	IsAccepted bool   `json:"is_accepted"`
	ExpiresAt  *Time  `json:"expires_at"`
	CreatedAt  *Time  `json:"created_at"`
	CreatedBy  string `json:"created_by"`
}

// SourceDailySpend is a row of LiteLLM_DailyUserSpend: one user's, key's
// and model's usage on one day.
type SourceDailySpend struct {
	columns
	ID               string   `json:"id"`
	UserID           *string  `json:"user_id"`
	Date             string   `json:"date"`
	APIKey           string   `json:"api_key"`
	Model            *string  `json:"model"`
	PromptTokens     int64    `json:"prompt_tokens"`
	CompletionTokens int64    `json:"completion_tokens"`
	Spend            float64  `json:"spend"`
	APIRequests      *float64 `json:"api_requests"`
}

// SourceUser is a row of LiteLLM_UserTable. The password column is never
// read.
type SourceUser struct {
	columns
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
	columns
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
	OrganizationID   *string         `json:"organization_id"`
	CreatedAt        *Time           `json:"created_at"`
}

// SourceMember is one entry of a team's members_with_roles.
type SourceMember struct {
	UserID    *string `json:"user_id"`
	UserEmail *string `json:"user_email"`
	Role      *string `json:"role"`
}

// SourceMembership is a row of LiteLLM_TeamMembership, with the budget
// its budget_id names (LiteLLM_BudgetTable) when there is one: LiteLLM's
// per-member budget in the team.
type SourceMembership struct {
	columns
	TeamID string        `json:"team_id"`
	UserID string        `json:"user_id"`
	Spend  float64       `json:"spend"`
	Budget *SourceBudget `json:"budget"`
}

// SourceKey is a row of LiteLLM_VerificationToken. Token is the SHA-256
// hex of the key (very old LiteLLM versions kept the raw "sk-" key there;
// Apply hashes those).
type SourceKey struct {
	columns
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
	// Budget is the row budget_id names: LiteLLM applies its max_budget,
	// tpm_limit and rpm_limit to the key.
	Budget *SourceBudget `json:"budget"`
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
	hasBudgets, err := tableExists(ctx, tx, tableBudgets)
	if err != nil {
		return nil, err
	}
	// withBudget joins the budget a row names by budget_id as "budget"
	// (null without one). to_jsonb(x)->>'budget_id' rather than
	// x.budget_id: versions without the column still parse.
	withBudget := func(table, order string) string {
		if !hasBudgets {
			return `SELECT to_jsonb(x) FROM ` + table + ` x ORDER BY ` + order
		}
		return `SELECT to_jsonb(x) || jsonb_build_object('budget', to_jsonb(b)) FROM ` + table + ` x LEFT JOIN ` +
			tableBudgets + ` b ON b.budget_id = to_jsonb(x)->>'budget_id' ORDER BY ` + order
	}
	if src.Keys, err = readRows[SourceKey](ctx, tx, tableKeys, withBudget(tableKeys, "x.token")); err != nil {
		return nil, err
	}
	optional := []struct {
		table, query, note string
		read               func(q string) error
	}{
		{tableMemberships, withBudget(tableMemberships, "x.team_id, x.user_id"),
			"table LiteLLM_TeamMembership is missing (older LiteLLM): memberships come from members_with_roles and users' teams only",
			func(q string) (err error) {
				src.Memberships, err = readRows[SourceMembership](ctx, tx, tableMemberships, q)
				return err
			}},
		{tableOrgs, withBudget(tableOrgs, "x.organization_id"), "",
			func(q string) (err error) {
				src.Organizations, err = readRows[SourceOrg](ctx, tx, tableOrgs, q)
				return err
			}},
		{tableInvitations, `SELECT to_jsonb(x) FROM ` + tableInvitations + ` x ORDER BY x.created_at, x.id`, "",
			func(q string) (err error) {
				src.Invitations, err = readRows[SourceInvitation](ctx, tx, tableInvitations, q)
				return err
			}},
		{tableDailySpend, `SELECT to_jsonb(x) FROM ` + tableDailySpend + ` x ORDER BY x.date, x.id`, "",
			func(q string) (err error) {
				src.DailySpend, err = readRows[SourceDailySpend](ctx, tx, tableDailySpend, q)
				return err
			}},
	}
	for _, o := range optional {
		ok, err := tableExists(ctx, tx, o.table)
		if err != nil {
			return nil, err
		}
		if !ok {
			if o.note != "" {
				src.Notes = append(src.Notes, o.note)
			}
			continue
		}
		if err := o.read(o.query); err != nil {
			return nil, err
		}
	}
	if err := readSchemaVersion(ctx, tx, src); err != nil {
		return nil, err
	}
	if err := readOtherTables(ctx, tx, src); err != nil {
		return nil, err
	}
	return src, nil
}

// readSchemaVersion records the newest migration LiteLLM applied.
func readSchemaVersion(ctx context.Context, tx pgx.Tx, src *Source) error {
	ok, err := tableExists(ctx, tx, tablePrisma)
	if err != nil || !ok {
		return err
	}
	err = tx.QueryRow(ctx, `SELECT coalesce(max(migration_name), '') FROM `+tablePrisma+
		` WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`).Scan(&src.SchemaVersion)
	if err != nil {
		return fmt.Errorf("litellmimport: read %s: %w", tablePrisma, err)
	}
	return nil
}

// readTables are the tables Read reads (unquoted names).
var readTables = map[string]bool{"LiteLLM_UserTable": true, "LiteLLM_TeamTable": true, "LiteLLM_TeamMembership": true,
	"LiteLLM_VerificationToken": true, "LiteLLM_BudgetTable": true, "LiteLLM_OrganizationTable": true,
	"LiteLLM_InvitationLink": true, "LiteLLM_DailyUserSpend": true}

// readOtherTables lists LiteLLM's other tables that hold rows, so the
// report can say what stays behind.
func readOtherTables(ctx context.Context, tx pgx.Tx, src *Source) error {
	rows, err := tx.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()
		AND table_type = 'BASE TABLE' AND table_name LIKE 'LiteLLM\_%' ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("litellmimport: list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("litellmimport: list tables: %w", err)
	}
	for _, n := range names {
		if readTables[n] {
			continue
		}
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{n}.Sanitize()+`)`).Scan(&any); err != nil {
			return fmt.Errorf("litellmimport: look into %s: %w", n, err)
		}
		if any {
			src.OtherTables = append(src.OtherTables, n)
		}
	}
	return nil
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
		if k, ok := any(&v).(interface {
			keepColumns(map[string]json.RawMessage)
		}); ok {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err == nil {
				k.keepColumns(m)
			}
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("litellmimport: read %s: %w", table, err)
	}
	return out, nil
}
