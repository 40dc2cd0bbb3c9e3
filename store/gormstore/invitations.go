package gormstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

// Invitation id hashes are left out of error messages, like key hashes.

// normPurpose maps the empty purpose to store.PurposeInvitation, on write
// and on read, so "" and "invitation" are one purpose everywhere.
func normPurpose(p string) string {
	if p == "" {
		return store.PurposeInvitation
	}
	return p
}

// samePurpose adds the WHERE clause matching stored purpose p. For
// invitations it also matches the empty string, so that a row written
// without the normalisation (by hand, say) still counts as an invitation.
func samePurpose(q *gorm.DB, p string) *gorm.DB {
	if p = normPurpose(p); p == store.PurposeInvitation {
		return q.Where("purpose IN ?", []string{"", store.PurposeInvitation})
	}
	return q.Where("purpose = ?", p)
}

func invitationToRow(i store.Invitation) invitationRow {
	return invitationRow{
		IDHash: i.IDHash, UserID: i.UserID, Purpose: normPurpose(i.Purpose),
		IsAccepted: i.IsAccepted, AcceptedAt: dbTimePtr(i.AcceptedAt),
		ExpiresAt: dbTime(i.ExpiresAt), CreatedAt: dbTime(i.CreatedAt), CreatedBy: i.CreatedBy,
		UpdatedAt: dbTime(i.UpdatedAt), UpdatedBy: i.UpdatedBy,
	}
}

func rowToInvitation(r invitationRow) store.Invitation {
	return store.Invitation{
		IDHash: r.IDHash, UserID: r.UserID, Purpose: normPurpose(r.Purpose),
		IsAccepted: r.IsAccepted, AcceptedAt: goTimePtr(r.AcceptedAt),
		ExpiresAt: goTime(r.ExpiresAt), CreatedAt: goTime(r.CreatedAt), CreatedBy: r.CreatedBy,
		UpdatedAt: goTime(r.UpdatedAt), UpdatedBy: r.UpdatedBy,
	}
}

// CreateInvitation inserts inv and, in the same transaction, deletes the
// user's other unaccepted invitations of the same purpose: only the newest
// link of each kind works, and a reset request leaves a pending invitation
// alone (and vice versa).
func (s *Store) CreateInvitation(ctx context.Context, inv *store.Invitation) error {
	if inv.IDHash == "" {
		return errors.New("gormstore: create invitation: empty id hash")
	}
	if inv.Purpose == store.PurposeAll {
		return errors.New("gormstore: create invitation: purpose \"*\" is a filter wildcard, not a purpose")
	}
	row := invitationToRow(*inv)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, inv.UserID, ""); err != nil {
			return err
		}
		err := samePurpose(tx, row.Purpose).
			Where("user_id = ? AND is_accepted = ? AND id_hash <> ?", inv.UserID, false, inv.IDHash).
			Delete(&invitationRow{}).Error
		if err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: create invitation for user %q: %w", inv.UserID, translate(err))
	}
	*inv = rowToInvitation(row)
	return nil
}

// GetInvitation returns the invitation with idHash.
func (s *Store) GetInvitation(ctx context.Context, idHash string) (store.Invitation, error) {
	var row invitationRow
	if err := s.read(ctx).Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
		return store.Invitation{}, fmt.Errorf("gormstore: get invitation: %w", translate(err))
	}
	return rowToInvitation(row), nil
}

// ConsumeInvitation accepts the invitation with one conditional UPDATE:
// the database decides which of any number of concurrent callers wins.
// A loser then learns whether the invitation is unknown (ErrNotFound) or
// used/expired (ErrConflict).
func (s *Store) ConsumeInvitation(ctx context.Context, idHash string, now time.Time, by string) (store.Invitation, error) {
	at := dbTime(now)
	var out invitationRow
	err := s.txn(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&invitationRow{}).
			Where("id_hash = ? AND is_accepted = ? AND expires_at > ?", idHash, false, at).
			UpdateColumns(map[string]any{"is_accepted": true, "accepted_at": at, "updated_at": at, "updated_by": by})
		if res.Error != nil {
			return res.Error
		}
		if err := tx.Where("id_hash = ?", idHash).Take(&out).Error; err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("already accepted or expired: %w", store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("gormstore: consume invitation: %w", translate(err))
	}
	return rowToInvitation(out), nil
}

// UpdateInvitation locks the invitation, applies fn and writes it back;
// the id hash cannot change. Errors from fn are returned unchanged.
func (s *Store) UpdateInvitation(ctx context.Context, idHash string, fn func(*store.Invitation) error) (store.Invitation, error) {
	var out store.Invitation
	var fnErr error
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row invitationRow
		if err := forUpdate(tx).Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
			return err
		}
		inv := rowToInvitation(row)
		if fnErr = fn(&inv); fnErr != nil {
			return fnErr
		}
		inv.IDHash = idHash
		row = invitationToRow(inv)
		if err := tx.Select("*").Save(&row).Error; err != nil {
			return err
		}
		out = rowToInvitation(row)
		return nil
	})
	if fnErr != nil {
		return store.Invitation{}, fnErr
	}
	if err != nil {
		return store.Invitation{}, fmt.Errorf("gormstore: update invitation: %w", translate(err))
	}
	return out, nil
}

// DeleteInvitation removes the invitation.
func (s *Store) DeleteInvitation(ctx context.Context, idHash string) error {
	if err := notFoundIfNone(s.conn(ctx).Where("id_hash = ?", idHash).Delete(&invitationRow{})); err != nil {
		return fmt.Errorf("gormstore: delete invitation: %w", err)
	}
	return nil
}

// ListInvitations returns one page ordered by (created_at, id_hash) and
// the total. Purpose "" lists invitations only, never reset tokens.
func (s *Store) ListInvitations(ctx context.Context, f store.InvitationFilter) ([]store.Invitation, int64, error) {
	scope := func(q *gorm.DB) *gorm.DB {
		if f.UserID != "" {
			q = q.Where("user_id = ?", f.UserID)
		}
		if f.Purpose != store.PurposeAll {
			q = samePurpose(q, f.Purpose)
		}
		return q
	}
	rows, total, err := list(ctx, s, &invitationRow{}, scope, "created_at, id_hash", f.Page)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list invitations: %w", err)
	}
	out := make([]store.Invitation, 0, len(rows))
	for _, r := range rows {
		out = append(out, rowToInvitation(r))
	}
	return out, total, nil
}
