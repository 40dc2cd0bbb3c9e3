package gormstore

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Frozen row structs of migration 202611270001_initial. Do not edit: they
// are the schema as this step created it. Floats are "double precision"
// on both dialects (GORM would pick numeric on PostgreSQL); slices and maps
// are JSON text. Indexes are created by explicit SQL below because partial
// unique indexes are what make "unique when not empty" work.

type m0001User struct {
	ID             string   `gorm:"primaryKey"`
	Email          string   `gorm:"not null"`
	EmailLower     string   `gorm:"not null"`
	Alias          string   `gorm:"not null"`
	Role           string   `gorm:"not null"`
	PasswordHash   string   `gorm:"not null"`
	Models         string   `gorm:"not null"`
	MaxBudget      *float64 `gorm:"type:double precision"`
	BudgetDuration string   `gorm:"not null"`
	BudgetResetAt  *time.Time
	Spend          float64   `gorm:"type:double precision;not null"`
	TPMLimit       *int64    `gorm:"column:tpm_limit"`
	RPMLimit       *int64    `gorm:"column:rpm_limit"`
	Metadata       string    `gorm:"not null"`
	SSOIssuer      string    `gorm:"column:sso_issuer;not null"`
	SSOSubject     string    `gorm:"column:sso_subject;not null"`
	Disabled       bool      `gorm:"not null"`
	CreatedAt      time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"not null;autoUpdateTime:false"`
}

func (m0001User) TableName() string { return "users" }

type m0001Team struct {
	ID             string   `gorm:"primaryKey"`
	Alias          string   `gorm:"not null"`
	Models         string   `gorm:"not null"`
	MaxBudget      *float64 `gorm:"type:double precision"`
	BudgetDuration string   `gorm:"not null"`
	BudgetResetAt  *time.Time
	Spend          float64   `gorm:"type:double precision;not null"`
	TPMLimit       *int64    `gorm:"column:tpm_limit"`
	RPMLimit       *int64    `gorm:"column:rpm_limit"`
	Metadata       string    `gorm:"not null"`
	Blocked        bool      `gorm:"not null"`
	CreatedAt      time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"not null;autoUpdateTime:false"`
}

func (m0001Team) TableName() string { return "teams" }

type m0001Membership struct {
	TeamID          string    `gorm:"primaryKey"`
	UserID          string    `gorm:"primaryKey"`
	Role            string    `gorm:"not null"`
	MaxBudgetInTeam *float64  `gorm:"type:double precision"`
	Spend           float64   `gorm:"type:double precision;not null"`
	CreatedAt       time.Time `gorm:"not null;autoCreateTime:false"`
}

func (m0001Membership) TableName() string { return "memberships" }

type m0001Key struct {
	Hash           string   `gorm:"primaryKey"`
	KeyName        string   `gorm:"not null"`
	Alias          string   `gorm:"not null"`
	UserID         string   `gorm:"not null"`
	TeamID         string   `gorm:"not null"`
	Models         string   `gorm:"not null"`
	MaxBudget      *float64 `gorm:"type:double precision"`
	BudgetDuration string   `gorm:"not null"`
	BudgetResetAt  *time.Time
	Spend          float64 `gorm:"type:double precision;not null"`
	TPMLimit       *int64  `gorm:"column:tpm_limit"`
	RPMLimit       *int64  `gorm:"column:rpm_limit"`
	Blocked        bool    `gorm:"not null"`
	ExpiresAt      *time.Time
	KeyType        string    `gorm:"not null"`
	Metadata       string    `gorm:"not null"`
	CreatedBy      string    `gorm:"not null"`
	CreatedAt      time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"not null;autoUpdateTime:false"`
	LastActive     *time.Time
}

func (m0001Key) TableName() string { return "api_keys" }

type m0001Spend struct {
	RequestID        string    `gorm:"primaryKey"`
	KeyHash          string    `gorm:"not null"`
	UserID           string    `gorm:"not null"`
	TeamID           string    `gorm:"not null"`
	Model            string    `gorm:"not null"`
	PromptTokens     int64     `gorm:"not null"`
	CompletionTokens int64     `gorm:"not null"`
	Spend            float64   `gorm:"type:double precision;not null"`
	CreatedAt        time.Time `gorm:"not null;autoCreateTime:false"`
}

func (m0001Spend) TableName() string { return "spend_logs" }

type m0001Invitation struct {
	IDHash     string `gorm:"column:id_hash;primaryKey"`
	UserID     string `gorm:"not null"`
	IsAccepted bool   `gorm:"not null"`
	AcceptedAt *time.Time
	ExpiresAt  time.Time `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null;autoCreateTime:false"`
	CreatedBy  string    `gorm:"not null"`
	UpdatedAt  time.Time `gorm:"not null;autoUpdateTime:false"`
	UpdatedBy  string    `gorm:"not null"`
}

func (m0001Invitation) TableName() string { return "invitations" }

type m0001Session struct {
	ID          string    `gorm:"primaryKey"`
	UserID      string    `gorm:"not null"`
	Role        string    `gorm:"not null"`
	LoginMethod string    `gorm:"not null"`
	IDToken     string    `gorm:"column:id_token;not null"`
	SSOSID      string    `gorm:"column:sso_sid;not null"`
	CreatedAt   time.Time `gorm:"not null;autoCreateTime:false"`
	ExpiresAt   time.Time `gorm:"not null"`
	RevokedAt   *time.Time
}

func (m0001Session) TableName() string { return "sessions" }

type m0001SigningKey struct {
	KID           string    `gorm:"column:kid;primaryKey"`
	Algorithm     string    `gorm:"not null"`
	PublicPEM     string    `gorm:"column:public_pem;not null"`
	PrivateSealed []byte    `gorm:"not null"`
	CreatedAt     time.Time `gorm:"not null;autoCreateTime:false"`
	NotAfter      time.Time `gorm:"not null"`
	VerifyUntil   time.Time `gorm:"not null"`
}

func (m0001SigningKey) TableName() string { return "signing_keys" }

type m0001LoginFailure struct {
	ID      int64     `gorm:"primaryKey;autoIncrement"`
	Subject string    `gorm:"not null"`
	At      time.Time `gorm:"not null"`
}

func (m0001LoginFailure) TableName() string { return "login_failures" }

type m0001AuditEvent struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	At         time.Time `gorm:"not null"`
	Action     string    `gorm:"not null"`
	ActorID    string    `gorm:"not null"`
	ActorRole  string    `gorm:"not null"`
	TargetType string    `gorm:"not null"`
	TargetID   string    `gorm:"not null"`
	ClientIP   string    `gorm:"column:client_ip;not null"`
	RequestID  string    `gorm:"not null"`
	Before     string    `gorm:"not null"`
	After      string    `gorm:"not null"`
}

func (m0001AuditEvent) TableName() string { return "audit_events" }

// m0001Indexes lists the step's indexes. Partial unique indexes give
// "unique when not empty"; SQLite and PostgreSQL both accept this syntax.
func m0001Indexes() []string {
	return []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (email_lower) WHERE email_lower <> ''`,
		`CREATE UNIQUE INDEX IF NOT EXISTS users_sso_key ON users (sso_issuer, sso_subject) WHERE sso_subject <> ''`,
		`CREATE INDEX IF NOT EXISTS users_created_idx ON users (created_at, id)`,
		`CREATE INDEX IF NOT EXISTS teams_created_idx ON teams (created_at, id)`,
		`CREATE INDEX IF NOT EXISTS memberships_user_idx ON memberships (user_id)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS api_keys_alias_key ON api_keys (alias) WHERE alias <> ''`,
		`CREATE INDEX IF NOT EXISTS api_keys_user_idx ON api_keys (user_id)`,
		`CREATE INDEX IF NOT EXISTS api_keys_team_idx ON api_keys (team_id)`,
		`CREATE INDEX IF NOT EXISTS api_keys_created_idx ON api_keys (created_at, hash)`,
		`CREATE INDEX IF NOT EXISTS spend_logs_key_idx ON spend_logs (key_hash, created_at)`,
		`CREATE INDEX IF NOT EXISTS spend_logs_user_idx ON spend_logs (user_id, created_at)`,
		`CREATE INDEX IF NOT EXISTS spend_logs_team_idx ON spend_logs (team_id, created_at)`,
		`CREATE INDEX IF NOT EXISTS spend_logs_created_idx ON spend_logs (created_at, request_id)`,
		`CREATE INDEX IF NOT EXISTS invitations_user_idx ON invitations (user_id)`,
		`CREATE INDEX IF NOT EXISTS sessions_user_idx ON sessions (user_id)`,
		`CREATE INDEX IF NOT EXISTS sessions_sso_sid_idx ON sessions (sso_sid) WHERE sso_sid <> ''`,
		`CREATE INDEX IF NOT EXISTS login_failures_subject_idx ON login_failures (subject, at)`,
		`CREATE INDEX IF NOT EXISTS audit_events_at_idx ON audit_events (at, id)`,
		`CREATE INDEX IF NOT EXISTS audit_events_action_idx ON audit_events (action)`,
		`CREATE INDEX IF NOT EXISTS audit_events_actor_idx ON audit_events (actor_id)`,
		`CREATE INDEX IF NOT EXISTS audit_events_target_idx ON audit_events (target_id)`,
	}
}

func migrateInitial(tx *gorm.DB) error {
	for _, t := range []any{
		&m0001User{}, &m0001Team{}, &m0001Membership{}, &m0001Key{}, &m0001Spend{},
		&m0001Invitation{}, &m0001Session{}, &m0001SigningKey{}, &m0001LoginFailure{}, &m0001AuditEvent{},
	} {
		if tx.Migrator().HasTable(t) {
			continue
		}
		if err := tx.Migrator().CreateTable(t); err != nil {
			return fmt.Errorf("create table %T: %w", t, err)
		}
	}
	for _, q := range m0001Indexes() {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("create index: %w", err)
		}
	}
	return nil
}
