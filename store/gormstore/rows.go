package gormstore

import (
	"encoding/json"
	"fmt"
	"time"
)

// Live row structs. Column types come from the migrations; these structs
// only map columns. CreatedAt/UpdatedAt are set by the caller (see
// package store), so GORM's automatic time tracking is switched off.

type userRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	Email          string `gorm:"column:email"`
	EmailLower     string `gorm:"column:email_lower"`
	Alias          string `gorm:"column:alias"`
	Role           string `gorm:"column:role"`
	PasswordHash   string `gorm:"column:password_hash"`
	Models         string `gorm:"column:models"`
	MaxBudget      *float64
	BudgetDuration string
	BudgetResetAt  *time.Time
	Spend          float64
	TPMLimit       *int64 `gorm:"column:tpm_limit"`
	RPMLimit       *int64 `gorm:"column:rpm_limit"`
	Metadata       string
	SSOIssuer      string    `gorm:"column:sso_issuer"`
	SSOSubject     string    `gorm:"column:sso_subject"`
	Disabled       bool      `gorm:"column:disabled"`
	CreatedAt      time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"column:updated_at;autoUpdateTime:false"`

	ExternalID      string `gorm:"column:external_id"`
	Directory       string `gorm:"column:directory"`
	DirectoryEmails string `gorm:"column:directory_emails"`
}

func (userRow) TableName() string { return "users" }

type teamRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	Alias          string
	Models         string
	MaxBudget      *float64
	BudgetDuration string
	BudgetResetAt  *time.Time
	Spend          float64
	TPMLimit       *int64 `gorm:"column:tpm_limit"`
	RPMLimit       *int64 `gorm:"column:rpm_limit"`
	Metadata       string
	Blocked        bool
	CreatedAt      time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"column:updated_at;autoUpdateTime:false"`

	ExternalID       string `gorm:"column:external_id"`
	DirectoryManaged bool   `gorm:"column:directory_managed"`
}

func (teamRow) TableName() string { return "teams" }

type membershipRow struct {
	TeamID          string `gorm:"column:team_id;primaryKey"`
	UserID          string `gorm:"column:user_id;primaryKey"`
	Role            string
	MaxBudgetInTeam *float64
	Spend           float64
	CreatedAt       time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (membershipRow) TableName() string { return "memberships" }

type keyRow struct {
	Hash           string `gorm:"column:hash;primaryKey"`
	KeyName        string
	Alias          string
	UserID         string `gorm:"column:user_id"`
	TeamID         string `gorm:"column:team_id"`
	Models         string
	AllowedRoutes  string `gorm:"column:allowed_routes"`
	MaxBudget      *float64
	BudgetDuration string
	BudgetResetAt  *time.Time
	Spend          float64
	TPMLimit       *int64 `gorm:"column:tpm_limit"`
	RPMLimit       *int64 `gorm:"column:rpm_limit"`
	Blocked        bool
	ExpiresAt      *time.Time
	KeyType        string
	Metadata       string
	CreatedBy      string
	CreatedAt      time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
	LastActive     *time.Time
}

func (keyRow) TableName() string { return "api_keys" }

type spendRow struct {
	RequestID        string `gorm:"column:request_id;primaryKey"`
	KeyHash          string
	UserID           string `gorm:"column:user_id"`
	TeamID           string `gorm:"column:team_id"`
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	Spend            float64
	CreatedAt        time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (spendRow) TableName() string { return "spend_logs" }

type budgetHoldRow struct {
	ID        string    `gorm:"primaryKey"`
	BudgetID  string    `gorm:"column:budget_id;primaryKey"`
	Amount    float64   `gorm:"not null"`
	Settled   bool      `gorm:"not null;default:false"`
	ExpiresAt time.Time `gorm:"not null"`
}

func (budgetHoldRow) TableName() string { return "budget_holds" }

type invitationRow struct {
	IDHash     string `gorm:"column:id_hash;primaryKey"`
	UserID     string `gorm:"column:user_id"`
	Purpose    string `gorm:"column:purpose"`
	IsAccepted bool
	AcceptedAt *time.Time
	ExpiresAt  time.Time
	CreatedAt  time.Time `gorm:"column:created_at;autoCreateTime:false"`
	CreatedBy  string
	UpdatedAt  time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
	UpdatedBy  string
}

func (invitationRow) TableName() string { return "invitations" }

type sessionRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	UserID      string `gorm:"column:user_id"`
	Role        string
	LoginMethod string
	AMR         string    `gorm:"column:amr"`
	IDToken     string    `gorm:"column:id_token"`
	SSOSID      string    `gorm:"column:sso_sid"`
	CreatedAt   time.Time `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt   time.Time
	RevokedAt   *time.Time
}

func (sessionRow) TableName() string { return "sessions" }

type signingKeyRow struct {
	KID           string `gorm:"column:kid;primaryKey"`
	Algorithm     string
	PublicPEM     string `gorm:"column:public_pem"`
	PrivateSealed []byte
	CreatedAt     time.Time `gorm:"column:created_at;autoCreateTime:false"`
	NotAfter      time.Time
	VerifyUntil   time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

type loginFailureRow struct {
	ID      int64 `gorm:"column:id;primaryKey;autoIncrement"`
	Subject string
	At      time.Time
}

func (loginFailureRow) TableName() string { return "login_failures" }

type auditRow struct {
	ID         int64 `gorm:"column:id;primaryKey;autoIncrement"`
	At         time.Time
	Action     string
	ActorID    string `gorm:"column:actor_id"`
	ActorRole  string
	TargetType string
	TargetID   string `gorm:"column:target_id"`
	ClientIP   string `gorm:"column:client_ip"`
	RequestID  string `gorm:"column:request_id"`
	Before     string
	After      string
}

func (auditRow) TableName() string { return "audit_events" }

// ---- value conversions shared by the mappers ----

// dbTime normalises a time for storage: UTC, microseconds (PostgreSQL's
// precision). SQLite stores times as text; with one zone and format the
// text sorts like the time, so comparisons in SQL stay correct.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// goTime normalises a time read back (drivers may attach time.Local).
func goTime(t time.Time) time.Time { return t.UTC() }

func goTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// encodeStrings stores nil as "" so that nil and empty slices both read
// back as they were written.
func encodeStrings(v []string) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v) // cannot fail for []string
	return string(b)
}

func decodeStrings(s, what string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, nil
}

func encodeMap(v map[string]any, what string) (string, error) {
	if v == nil {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", what, err)
	}
	return string(b), nil
}

func decodeMap(s, what string) (map[string]any, error) {
	if s == "" {
		return nil, nil
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, nil
}

// healthRow is the single row the write probe (Ping) upserts.
type healthRow struct {
	ID        int       `gorm:"column:id;primaryKey;autoIncrement:false"`
	CheckedAt time.Time `gorm:"column:checked_at;not null"`
}

func (healthRow) TableName() string { return "keygate_health" }
