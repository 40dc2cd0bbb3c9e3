package gormstore

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Migration 202612010701_mfa adds second factors: a TOTP secret per user
// (sealed by the service with KEYGATE_SECRET, never stored in clear),
// passkeys (WebAuthn credentials: public keys only), recovery codes
// (SHA-256 of the code only), the pending steps of sign-ins and passkey
// ceremonies (SHA-256 of their token only), and the sessions' amr: how
// the user proved who they are (RFC 8176 values, space separated; '' for
// sessions made before this step and for SSO).

type m0701TOTP struct {
	UserID       string `gorm:"column:user_id;primaryKey"`
	SecretSealed []byte `gorm:"not null"`
	ConfirmedAt  *time.Time
	LastStep     int64     `gorm:"not null"`
	CreatedAt    time.Time `gorm:"not null;autoCreateTime:false"`
}

func (m0701TOTP) TableName() string { return "mfa_totp" }

type m0701Passkey struct {
	ID         string    `gorm:"primaryKey"`
	UserID     string    `gorm:"column:user_id;not null"`
	Name       string    `gorm:"not null"`
	Credential string    `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null;autoCreateTime:false"`
	LastUsedAt *time.Time
}

func (m0701Passkey) TableName() string { return "mfa_passkeys" }

type m0701RecoveryCode struct {
	UserID    string    `gorm:"column:user_id;primaryKey"`
	Hash      string    `gorm:"primaryKey"`
	CreatedAt time.Time `gorm:"not null;autoCreateTime:false"`
	UsedAt    *time.Time
}

func (m0701RecoveryCode) TableName() string { return "mfa_recovery_codes" }

type m0701Challenge struct {
	IDHash     string    `gorm:"column:id_hash;primaryKey"`
	UserID     string    `gorm:"column:user_id;not null"`
	Purpose    string    `gorm:"not null"`
	AMR        string    `gorm:"column:amr;not null"`
	Data       string    `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null;autoCreateTime:false"`
	ExpiresAt  time.Time `gorm:"not null"`
	ConsumedAt *time.Time
}

func (m0701Challenge) TableName() string { return "mfa_challenges" }

func m0701Indexes() []string {
	return []string{
		`CREATE INDEX IF NOT EXISTS mfa_passkeys_user_idx ON mfa_passkeys (user_id)`,
		`CREATE INDEX IF NOT EXISTS mfa_challenges_expires_idx ON mfa_challenges (expires_at)`,
		`CREATE INDEX IF NOT EXISTS mfa_challenges_user_idx ON mfa_challenges (user_id) WHERE user_id <> ''`,
	}
}

const m0701SessionAMR = `ALTER TABLE sessions ADD COLUMN amr text NOT NULL DEFAULT ''`

func migrateMFA(tx *gorm.DB) error {
	for _, t := range []any{&m0701TOTP{}, &m0701Passkey{}, &m0701RecoveryCode{}, &m0701Challenge{}} {
		if tx.Migrator().HasTable(t) {
			continue
		}
		if err := tx.Migrator().CreateTable(t); err != nil {
			return fmt.Errorf("create table %T: %w", t, err)
		}
	}
	for _, q := range m0701Indexes() {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	if !tx.Migrator().HasColumn("sessions", "amr") {
		if err := tx.Exec(m0701SessionAMR).Error; err != nil {
			return fmt.Errorf("add sessions.amr: %w", err)
		}
	}
	return nil
}
