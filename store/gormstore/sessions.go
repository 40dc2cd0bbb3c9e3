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

// Session ids are left out of error messages: they identify a login.

func sessionToRow(x store.Session) sessionRow {
	return sessionRow{
		ID: x.ID, UserID: x.UserID, Role: x.Role, LoginMethod: x.LoginMethod, AMR: strings.Join(x.AMR, " "), IDToken: x.IDToken,
		SSOSID: x.SSOSID, CreatedAt: dbTime(x.CreatedAt), ExpiresAt: dbTime(x.ExpiresAt),
		RevokedAt: dbTimePtr(x.RevokedAt),
	}
}

func rowToSession(r sessionRow) store.Session {
	return store.Session{
		ID: r.ID, UserID: r.UserID, Role: r.Role, LoginMethod: r.LoginMethod, AMR: splitFields(r.AMR), IDToken: r.IDToken,
		SSOSID: r.SSOSID, CreatedAt: goTime(r.CreatedAt), ExpiresAt: goTime(r.ExpiresAt),
		RevokedAt: goTimePtr(r.RevokedAt),
	}
}

// CreateSession inserts x; ErrConflict on a duplicate id.
func (s *Store) CreateSession(ctx context.Context, x *store.Session) error {
	if x.ID == "" {
		return errors.New("gormstore: create session: empty id")
	}
	row := sessionToRow(*x)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, x.UserID, ""); err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: create session for user %q: %w", x.UserID, translate(err))
	}
	x.CreatedAt, x.ExpiresAt, x.RevokedAt = row.CreatedAt, row.ExpiresAt, row.RevokedAt
	return nil
}

// GetSession returns the session with id, revoked or not.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var row sessionRow
	if err := s.read(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return store.Session{}, fmt.Errorf("gormstore: get session: %w", translate(err))
	}
	return rowToSession(row), nil
}

// RevokeSession sets RevokedAt once; revoking again keeps the first time.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&sessionRow{}).Where("id = ? AND revoked_at IS NULL", id).UpdateColumn("revoked_at", dbTime(at))
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
		var row sessionRow
		return tx.Select("id").Where("id = ?", id).Take(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: revoke session: %w", translate(err))
	}
	return nil
}

// RevokeUserSessions revokes the user's live (unrevoked, unexpired at
// at) sessions except those in keep, and returns the revoked ids sorted.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, at time.Time, keep ...string) ([]string, error) {
	ids, err := s.revokeWhere(ctx, at, func(q *gorm.DB) *gorm.DB {
		q = q.Where("user_id = ?", userID)
		if len(keep) > 0 {
			q = q.Where("id NOT IN ?", keep)
		}
		return q
	})
	if err != nil {
		return nil, fmt.Errorf("gormstore: revoke sessions of user %q: %w", userID, err)
	}
	return ids, nil
}

// RevokeSessionsBySSOSID revokes the live sessions carrying the IdP's
// sid. An empty sid matches nothing (password sessions have none).
func (s *Store) RevokeSessionsBySSOSID(ctx context.Context, ssoSID string, at time.Time) ([]string, error) {
	if ssoSID == "" {
		return nil, nil
	}
	ids, err := s.revokeWhere(ctx, at, func(q *gorm.DB) *gorm.DB { return q.Where("sso_sid = ?", ssoSID) })
	if err != nil {
		return nil, fmt.Errorf("gormstore: revoke sessions by sso sid: %w", err)
	}
	return ids, nil
}

// revokeWhere selects the live sessions matching scope under lock and
// revokes exactly those, so the returned ids are the ones this call
// revoked.
func (s *Store) revokeWhere(ctx context.Context, at time.Time, scope func(*gorm.DB) *gorm.DB) ([]string, error) {
	ts := dbTime(at)
	var ids []string
	err := s.txn(ctx, func(tx *gorm.DB) error {
		q := forUpdate(tx).Model(&sessionRow{}).Where("revoked_at IS NULL AND expires_at > ?", ts)
		if err := scope(q).Order("id").Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		return tx.Model(&sessionRow{}).Where("id IN ?", ids).UpdateColumn("revoked_at", ts).Error
	})
	if err != nil {
		return nil, translate(err)
	}
	return ids, nil
}

// splitFields reads a space-separated list; "" reads back as nil, as it
// was written.
func splitFields(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}
