package gormstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

func userToRow(u store.User) (userRow, error) {
	md, err := encodeMap(u.Metadata, "metadata")
	if err != nil {
		return userRow{}, err
	}
	dir, dirEmails, err := encodeDirectory(u.Directory)
	if err != nil {
		return userRow{}, err
	}
	return userRow{
		ExternalID: u.ExternalID, Directory: dir, DirectoryEmails: dirEmails,
		ID: u.ID, Email: u.Email, EmailLower: strings.ToLower(u.Email), Alias: u.Alias, Role: u.Role,
		PasswordHash: u.PasswordHash, Models: encodeStrings(u.Models), MaxBudget: u.MaxBudget,
		BudgetDuration: u.BudgetDuration, BudgetResetAt: dbTimePtr(u.BudgetResetAt), Spend: u.Spend,
		TPMLimit: u.TPMLimit, RPMLimit: u.RPMLimit, Metadata: md, SSOIssuer: u.SSOIssuer,
		SSOSubject: u.SSOSubject, Disabled: u.Disabled, CreatedAt: dbTime(u.CreatedAt), UpdatedAt: dbTime(u.UpdatedAt),
	}, nil
}

func rowToUser(r userRow) (store.User, error) {
	models, err := decodeStrings(r.Models, "models")
	if err != nil {
		return store.User{}, err
	}
	md, err := decodeMap(r.Metadata, "metadata")
	if err != nil {
		return store.User{}, err
	}
	dir, err := decodeDirectory(r.Directory)
	if err != nil {
		return store.User{}, err
	}
	return store.User{
		ExternalID: r.ExternalID, Directory: dir,
		ID: r.ID, Email: r.Email, Alias: r.Alias, Role: r.Role, PasswordHash: r.PasswordHash,
		Models: models, MaxBudget: r.MaxBudget, BudgetDuration: r.BudgetDuration,
		BudgetResetAt: goTimePtr(r.BudgetResetAt), Spend: r.Spend, TPMLimit: r.TPMLimit, RPMLimit: r.RPMLimit,
		Metadata: md, SSOIssuer: r.SSOIssuer, SSOSubject: r.SSOSubject, Disabled: r.Disabled,
		CreatedAt: goTime(r.CreatedAt), UpdatedAt: goTime(r.UpdatedAt),
	}, nil
}

// CreateUser inserts u and writes the stored (UTC, microsecond) times
// back into it.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if u.ID == "" {
		return errors.New("gormstore: create user: empty id")
	}
	row, err := userToRow(*u)
	if err != nil {
		return fmt.Errorf("gormstore: create user %q: %w", u.ID, err)
	}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("gormstore: create user %q: %w", u.ID, translate(err))
	}
	u.CreatedAt, u.UpdatedAt, u.BudgetResetAt = row.CreatedAt, row.UpdatedAt, row.BudgetResetAt
	return nil
}

func (s *Store) getUserWhere(ctx context.Context, what, query string, args ...any) (store.User, error) {
	var row userRow
	if err := s.read(ctx).Where(query, args...).Take(&row).Error; err != nil {
		return store.User{}, fmt.Errorf("gormstore: get user %s: %w", what, translate(err))
	}
	u, err := rowToUser(row)
	if err != nil {
		return store.User{}, fmt.Errorf("gormstore: get user %s: %w", what, err)
	}
	return u, nil
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return s.getUserWhere(ctx, fmt.Sprintf("%q", id), "id = ?", id)
}

// GetUserByEmail matches case-insensitively; an empty e-mail matches
// nobody. The address is left out of errors (it is personal data).
func (s *Store) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	if email == "" {
		return store.User{}, fmt.Errorf("gormstore: get user by e-mail: empty e-mail: %w", store.ErrNotFound)
	}
	return s.getUserWhere(ctx, "by e-mail", "email_lower = ?", strings.ToLower(email))
}

// GetUserBySSO finds the user linked to (issuer, subject).
func (s *Store) GetUserBySSO(ctx context.Context, issuer, subject string) (store.User, error) {
	if subject == "" {
		return store.User{}, fmt.Errorf("gormstore: get user by sso: empty subject: %w", store.ErrNotFound)
	}
	return s.getUserWhere(ctx, "by sso", "sso_issuer = ? AND sso_subject = ?", issuer, subject)
}

// UpdateUser locks the row, applies fn and writes every column back.
// Errors from fn are returned unchanged.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error) {
	var out store.User
	var fnErr error
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row userRow
		if err := forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		u, err := rowToUser(row)
		if err != nil {
			return err
		}
		if fnErr = fn(&u); fnErr != nil {
			return fnErr
		}
		u.ID = id
		if row, err = userToRow(u); err != nil {
			return err
		}
		if err := tx.Select("*").Save(&row).Error; err != nil {
			return err
		}
		out, err = rowToUser(row)
		return err
	})
	if fnErr != nil {
		return store.User{}, fnErr
	}
	if err != nil {
		return store.User{}, fmt.Errorf("gormstore: update user %q: %w", id, translate(err))
	}
	return out, nil
}

// DeleteUser removes the user with their keys, invitations, memberships
// and sessions in one transaction. Spend logs and audit events stay: they
// are history. Locks are taken users first, as everywhere, to avoid
// deadlocks with RecordSpend.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row userRow
		if err := forUpdate(tx).Select("id").Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		for _, child := range []any{&membershipRow{}, &keyRow{}, &invitationRow{}, &sessionRow{}, &totpRow{}, &passkeyRow{},
			&recoveryCodeRow{}, &challengeRow{}} {
			if err := tx.Where("user_id = ?", id).Delete(child).Error; err != nil {
				return err
			}
		}
		return tx.Where("id = ?", id).Delete(&userRow{}).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: delete user %q: %w", id, translate(err))
	}
	return nil
}

// userOrders are the sortable user columns (store.UserFilter.Order).
func userOrders() map[string][2]string {
	return map[string][2]string{
		store.OrderCreated: {"", "created_at"},
		store.OrderEmail:   {"", "email_lower"},
		store.OrderRole:    {"", "role"},
	}
}

// ListUsers returns one page ordered by f.Order (default (created_at,
// id)) and the total.
func (s *Store) ListUsers(ctx context.Context, f store.UserFilter) ([]store.User, int64, error) {
	where, err := s.condSQL(f.Where, userFields)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list users: %w", err)
	}
	scope := func(q *gorm.DB) *gorm.DB {
		if f.Role != "" {
			q = q.Where("role = ?", f.Role)
		}
		if len(f.UserIDs) > 0 {
			q = q.Where("id IN ?", f.UserIDs)
		}
		if f.EmailContains != "" {
			q = q.Where(`email_lower LIKE ? ESCAPE '\'`, likeContains(strings.ToLower(f.EmailContains)))
		}
		if f.TeamID != "" {
			q = q.Where("id IN (?)", s.db.Model(&membershipRow{}).Select("user_id").Where("team_id = ?", f.TeamID))
		}
		if len(f.SSOSubjects) > 0 {
			q = q.Where("sso_subject IN ?", f.SSOSubjects)
		}
		if where != nil {
			q = q.Where(where.sql, where.args...)
		}
		return q
	}
	rows, total, err := list(ctx, s, &userRow{}, scope, orderSQL(f.Order, userOrders(), "id", "created_at, id"), f.Page)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list users: %w", err)
	}
	out := make([]store.User, 0, len(rows))
	for _, r := range rows {
		u, err := rowToUser(r)
		if err != nil {
			return nil, 0, fmt.Errorf("gormstore: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, total, nil
}
