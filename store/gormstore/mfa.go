package gormstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

// Second factors. Secrets never reach this package in clear: the TOTP
// secret arrives sealed, recovery codes and challenge tokens as hashes.
// Error messages name users, never credential ids or hashes.

type totpRow struct {
	UserID       string `gorm:"column:user_id;primaryKey"`
	SecretSealed []byte
	ConfirmedAt  *time.Time
	LastStep     int64
	CreatedAt    time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (totpRow) TableName() string { return "mfa_totp" }

type passkeyRow struct {
	ID         string `gorm:"column:id;primaryKey"`
	UserID     string `gorm:"column:user_id"`
	Name       string
	Credential string
	CreatedAt  time.Time `gorm:"column:created_at;autoCreateTime:false"`
	LastUsedAt *time.Time
}

func (passkeyRow) TableName() string { return "mfa_passkeys" }

type recoveryCodeRow struct {
	UserID    string    `gorm:"column:user_id;primaryKey"`
	Hash      string    `gorm:"column:hash;primaryKey"`
	CreatedAt time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UsedAt    *time.Time
}

func (recoveryCodeRow) TableName() string { return "mfa_recovery_codes" }

type challengeRow struct {
	IDHash     string `gorm:"column:id_hash;primaryKey"`
	UserID     string `gorm:"column:user_id"`
	Purpose    string
	AMR        string    `gorm:"column:amr"`
	Data       string    `gorm:"column:data"`
	CreatedAt  time.Time `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt  time.Time
	ConsumedAt *time.Time
}

func (challengeRow) TableName() string { return "mfa_challenges" }

func rowToTOTP(r totpRow) store.TOTP {
	return store.TOTP{UserID: r.UserID, SecretSealed: r.SecretSealed, ConfirmedAt: goTimePtr(r.ConfirmedAt), LastStep: r.LastStep,
		CreatedAt: goTime(r.CreatedAt)}
}

func rowToPasskey(r passkeyRow) store.Passkey {
	return store.Passkey{ID: r.ID, UserID: r.UserID, Name: r.Name, Credential: []byte(r.Credential), CreatedAt: goTime(r.CreatedAt),
		LastUsedAt: goTimePtr(r.LastUsedAt)}
}

func passkeyToRow(p store.Passkey) passkeyRow {
	return passkeyRow{ID: p.ID, UserID: p.UserID, Name: p.Name, Credential: string(p.Credential), CreatedAt: dbTime(p.CreatedAt),
		LastUsedAt: dbTimePtr(p.LastUsedAt)}
}

func rowToChallenge(r challengeRow) store.MFAChallenge {
	return store.MFAChallenge{IDHash: r.IDHash, UserID: r.UserID, Purpose: r.Purpose, AMR: splitFields(r.AMR), Data: r.Data,
		CreatedAt: goTime(r.CreatedAt), ExpiresAt: goTime(r.ExpiresAt), ConsumedAt: goTimePtr(r.ConsumedAt)}
}

// ---- TOTP ----

// GetTOTP returns the user's TOTP, confirmed or not.
func (s *Store) GetTOTP(ctx context.Context, userID string) (store.TOTP, error) {
	var row totpRow
	if err := s.conn(ctx).Where("user_id = ?", userID).Take(&row).Error; err != nil {
		return store.TOTP{}, fmt.Errorf("gormstore: get totp of user %q: %w", userID, translate(err))
	}
	return rowToTOTP(row), nil
}

// PutTOTP inserts t or replaces the user's unconfirmed TOTP.
func (s *Store) PutTOTP(ctx context.Context, t *store.TOTP) error {
	row := totpRow{UserID: t.UserID, SecretSealed: t.SecretSealed, ConfirmedAt: dbTimePtr(t.ConfirmedAt), LastStep: t.LastStep,
		CreatedAt: dbTime(t.CreatedAt)}
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, t.UserID, ""); err != nil {
			return err
		}
		var old totpRow
		err := forUpdate(tx).Where("user_id = ?", t.UserID).Take(&old).Error
		switch {
		case err == nil && old.ConfirmedAt != nil:
			return store.ErrConflict
		case err == nil:
			if err := tx.Where("user_id = ?", t.UserID).Delete(&totpRow{}).Error; err != nil {
				return err
			}
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: put totp of user %q: %w", t.UserID, translate(err))
	}
	t.CreatedAt, t.ConfirmedAt = row.CreatedAt, row.ConfirmedAt
	return nil
}

// ConfirmTOTP confirms the user's unconfirmed TOTP.
func (s *Store) ConfirmTOTP(ctx context.Context, userID string, step int64, at time.Time) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		// The user's row first, as DeleteUser takes it: the recovery codes
		// that follow in the caller's transaction hold it too, and taking
		// it after this row's lock deadlocked against a delete.
		if err := holdParents(tx, userID, ""); err != nil {
			return err
		}
		res := tx.Model(&totpRow{}).Where("user_id = ? AND confirmed_at IS NULL", userID).
			Updates(map[string]any{"confirmed_at": dbTime(at), "last_step": step})
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
		var row totpRow
		if err := tx.Select("user_id").Where("user_id = ?", userID).Take(&row).Error; err != nil {
			return err
		}
		return store.ErrConflict
	})
	if err != nil {
		return fmt.Errorf("gormstore: confirm totp of user %q: %w", userID, translate(err))
	}
	return nil
}

// UseTOTPStep accepts step once: one conditional update, so of concurrent
// callers with the same code exactly one sees its row change.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	var ok bool
	err := s.txn(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&totpRow{}).Where("user_id = ? AND confirmed_at IS NOT NULL AND last_step < ?", userID, step).
			UpdateColumn("last_step", step)
		if res.Error != nil {
			return res.Error
		}
		if ok = res.RowsAffected == 1; ok {
			return nil
		}
		var row totpRow
		return tx.Select("user_id").Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Take(&row).Error
	})
	if err != nil {
		return false, fmt.Errorf("gormstore: use totp step of user %q: %w", userID, translate(err))
	}
	return ok, nil
}

// DeleteTOTP removes the user's TOTP.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	res := s.conn(ctx).Where("user_id = ?", userID).Delete(&totpRow{})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("gormstore: delete totp of user %q: %w", userID, store.ErrNotFound)
	}
	if res.Error != nil {
		return fmt.Errorf("gormstore: delete totp of user %q: %w", userID, translate(res.Error))
	}
	return nil
}

// ---- passkeys ----

// CreatePasskey inserts p.
func (s *Store) CreatePasskey(ctx context.Context, p *store.Passkey) error {
	if p.ID == "" || p.UserID == "" {
		return errors.New("gormstore: create passkey: empty id or user")
	}
	row := passkeyToRow(*p)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, p.UserID, ""); err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: create passkey for user %q: %w", p.UserID, translate(err))
	}
	p.CreatedAt, p.LastUsedAt = row.CreatedAt, row.LastUsedAt
	return nil
}

// GetPasskey returns a passkey by credential id.
func (s *Store) GetPasskey(ctx context.Context, id string) (store.Passkey, error) {
	var row passkeyRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return store.Passkey{}, fmt.Errorf("gormstore: get passkey: %w", translate(err))
	}
	return rowToPasskey(row), nil
}

// ListPasskeys returns the user's passkeys, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	var rows []passkeyRow
	if err := s.conn(ctx).Where("user_id = ?", userID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("gormstore: list passkeys of user %q: %w", userID, translate(err))
	}
	out := make([]store.Passkey, len(rows))
	for i, r := range rows {
		out[i] = rowToPasskey(r)
	}
	return out, nil
}

// UpdatePasskey reads, changes and writes back one passkey under lock.
func (s *Store) UpdatePasskey(ctx context.Context, id string, fn func(*store.Passkey) error) (store.Passkey, error) {
	var out store.Passkey
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row passkeyRow
		if err := forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		p := rowToPasskey(row)
		if err := fn(&p); err != nil {
			return err
		}
		p.ID, p.UserID = row.ID, row.UserID
		nr := passkeyToRow(p)
		if err := tx.Model(&passkeyRow{}).Where("id = ?", id).Updates(map[string]any{"name": nr.Name, "credential": nr.Credential,
			"last_used_at": nr.LastUsedAt}).Error; err != nil {
			return err
		}
		out = rowToPasskey(nr)
		return nil
	})
	if err != nil {
		return store.Passkey{}, fmt.Errorf("gormstore: update passkey: %w", translate(err))
	}
	return out, nil
}

// DeletePasskey removes the user's passkey id.
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	res := s.conn(ctx).Where("user_id = ? AND id = ?", userID, id).Delete(&passkeyRow{})
	if res.Error != nil {
		return fmt.Errorf("gormstore: delete passkey of user %q: %w", userID, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("gormstore: delete passkey of user %q: %w", userID, store.ErrNotFound)
	}
	return nil
}

// ---- recovery codes ----

// ReplaceRecoveryCodes makes hashes the user's only codes.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if len(hashes) > 0 {
			// The user first, before any of its rows (lock order of
			// DeleteUser).
			if err := holdParents(tx, userID, ""); err != nil {
				return err
			}
		}
		if err := tx.Where("user_id = ?", userID).Delete(&recoveryCodeRow{}).Error; err != nil {
			return err
		}
		if len(hashes) == 0 {
			return nil
		}
		rows := make([]recoveryCodeRow, len(hashes))
		for i, h := range hashes {
			rows[i] = recoveryCodeRow{UserID: userID, Hash: h, CreatedAt: dbTime(at)}
		}
		return tx.Create(&rows).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: replace recovery codes of user %q: %w", userID, translate(err))
	}
	return nil
}

// UseRecoveryCode marks an unused code used, once.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) (bool, error) {
	res := s.conn(ctx).Model(&recoveryCodeRow{}).Where("user_id = ? AND hash = ? AND used_at IS NULL", userID, hash).
		UpdateColumn("used_at", dbTime(at))
	if res.Error != nil {
		return false, fmt.Errorf("gormstore: use recovery code of user %q: %w", userID, translate(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// CountRecoveryCodes counts the user's unused codes.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int64
	if err := s.conn(ctx).Model(&recoveryCodeRow{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("gormstore: count recovery codes of user %q: %w", userID, translate(err))
	}
	return int(n), nil
}

// MFASummaries says which factors each user has, in two queries.
func (s *Store) MFASummaries(ctx context.Context, userIDs []string) (map[string]store.MFASummary, error) {
	out := map[string]store.MFASummary{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var totp []string
	if err := s.conn(ctx).Model(&totpRow{}).Where("user_id IN ? AND confirmed_at IS NOT NULL", userIDs).Pluck("user_id", &totp).Error; err != nil {
		return nil, fmt.Errorf("gormstore: mfa summaries: %w", translate(err))
	}
	for _, id := range totp {
		sum := out[id]
		sum.TOTP = true
		out[id] = sum
	}
	var counts []struct {
		UserID string
		N      int
	}
	if err := s.conn(ctx).Model(&passkeyRow{}).Select("user_id, count(*) AS n").Where("user_id IN ?", userIDs).Group("user_id").
		Scan(&counts).Error; err != nil {
		return nil, fmt.Errorf("gormstore: mfa summaries: %w", translate(err))
	}
	for _, c := range counts {
		sum := out[c.UserID]
		sum.Passkeys = c.N
		out[c.UserID] = sum
	}
	return out, nil
}

// DeleteMFA removes every factor, code and challenge of the user.
func (s *Store) DeleteMFA(ctx context.Context, userID string) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		// The user's row first, as DeleteUser takes it: an admin's reset
		// goes on to revoke the user's sessions in the same transaction,
		// and holding these rows before the user's deadlocked against a
		// delete.
		if err := holdParents(tx, userID, ""); err != nil {
			return err
		}
		for _, m := range []any{&totpRow{}, &passkeyRow{}, &recoveryCodeRow{}, &challengeRow{}} {
			if err := tx.Where("user_id = ?", userID).Delete(m).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gormstore: delete mfa of user %q: %w", userID, translate(err))
	}
	return nil
}

// ---- challenges ----

// CreateMFAChallenge inserts c and forgets expired challenges, so the
// table holds only what may still be used.
func (s *Store) CreateMFAChallenge(ctx context.Context, c *store.MFAChallenge) error {
	if c.IDHash == "" {
		return errors.New("gormstore: create mfa challenge: empty id")
	}
	row := challengeRow{IDHash: c.IDHash, UserID: c.UserID, Purpose: c.Purpose, AMR: strings.Join(c.AMR, " "), Data: c.Data,
		CreatedAt: dbTime(c.CreatedAt), ExpiresAt: dbTime(c.ExpiresAt), ConsumedAt: dbTimePtr(c.ConsumedAt)}
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, c.UserID, ""); err != nil {
			return err
		}
		if err := tx.Where("expires_at < ?", dbTime(c.CreatedAt)).Delete(&challengeRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: create mfa challenge for user %q: %w", c.UserID, translate(err))
	}
	c.CreatedAt, c.ExpiresAt = row.CreatedAt, row.ExpiresAt
	return nil
}

// GetMFAChallenge returns a challenge by the hash of its token.
func (s *Store) GetMFAChallenge(ctx context.Context, idHash string) (store.MFAChallenge, error) {
	var row challengeRow
	if err := s.conn(ctx).Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
		return store.MFAChallenge{}, fmt.Errorf("gormstore: get mfa challenge: %w", translate(err))
	}
	return rowToChallenge(row), nil
}

// SetMFAChallengeData stores ceremony state on an unconsumed challenge.
func (s *Store) SetMFAChallengeData(ctx context.Context, idHash, data string) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&challengeRow{}).Where("id_hash = ? AND consumed_at IS NULL", idHash).UpdateColumn("data", data)
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
		var row challengeRow
		if err := tx.Select("id_hash").Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
			return err
		}
		return store.ErrConflict
	})
	if err != nil {
		return fmt.Errorf("gormstore: set mfa challenge data: %w", translate(err))
	}
	return nil
}

// ConsumeMFAChallenge spends a challenge once, with one conditional update.
func (s *Store) ConsumeMFAChallenge(ctx context.Context, idHash string, now time.Time) (store.MFAChallenge, error) {
	var out store.MFAChallenge
	ts := dbTime(now)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&challengeRow{}).Where("id_hash = ? AND consumed_at IS NULL AND expires_at > ?", idHash, ts).
			UpdateColumn("consumed_at", ts)
		if res.Error != nil {
			return res.Error
		}
		var row challengeRow
		if err := tx.Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return store.ErrConflict
		}
		out = rowToChallenge(row)
		return nil
	})
	if err != nil {
		return store.MFAChallenge{}, fmt.Errorf("gormstore: consume mfa challenge: %w", translate(err))
	}
	return out, nil
}
