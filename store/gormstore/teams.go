package gormstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/keygate/keygate/store"
)

func teamToRow(t store.Team) (teamRow, error) {
	md, err := encodeMap(t.Metadata, "metadata")
	if err != nil {
		return teamRow{}, err
	}
	return teamRow{
		ID: t.ID, Alias: t.Alias, Models: encodeStrings(t.Models), MaxBudget: t.MaxBudget,
		BudgetDuration: t.BudgetDuration, BudgetResetAt: dbTimePtr(t.BudgetResetAt), Spend: t.Spend,
		TPMLimit: t.TPMLimit, RPMLimit: t.RPMLimit, Metadata: md, Blocked: t.Blocked,
		CreatedAt: dbTime(t.CreatedAt), UpdatedAt: dbTime(t.UpdatedAt),
		ExternalID: t.ExternalID, DirectoryManaged: t.DirectoryManaged,
	}, nil
}

func rowToTeam(r teamRow) (store.Team, error) {
	models, err := decodeStrings(r.Models, "models")
	if err != nil {
		return store.Team{}, err
	}
	md, err := decodeMap(r.Metadata, "metadata")
	if err != nil {
		return store.Team{}, err
	}
	return store.Team{
		ID: r.ID, Alias: r.Alias, Models: models, MaxBudget: r.MaxBudget, BudgetDuration: r.BudgetDuration,
		BudgetResetAt: goTimePtr(r.BudgetResetAt), Spend: r.Spend, TPMLimit: r.TPMLimit, RPMLimit: r.RPMLimit,
		Metadata: md, Blocked: r.Blocked, CreatedAt: goTime(r.CreatedAt), UpdatedAt: goTime(r.UpdatedAt),
		ExternalID: r.ExternalID, DirectoryManaged: r.DirectoryManaged,
	}, nil
}

func membershipToRow(m store.Membership) membershipRow {
	return membershipRow{
		TeamID: m.TeamID, UserID: m.UserID, Role: m.Role, MaxBudgetInTeam: m.MaxBudgetInTeam,
		Spend: m.Spend, CreatedAt: dbTime(m.CreatedAt),
	}
}

func rowToMembership(r membershipRow) store.Membership {
	return store.Membership{
		TeamID: r.TeamID, UserID: r.UserID, Role: r.Role, MaxBudgetInTeam: r.MaxBudgetInTeam,
		Spend: r.Spend, CreatedAt: goTime(r.CreatedAt),
	}
}

// CreateTeam inserts t; ErrConflict on a duplicate id.
func (s *Store) CreateTeam(ctx context.Context, t *store.Team) error {
	if t.ID == "" {
		return errors.New("gormstore: create team: empty id")
	}
	row, err := teamToRow(*t)
	if err != nil {
		return fmt.Errorf("gormstore: create team %q: %w", t.ID, err)
	}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("gormstore: create team %q: %w", t.ID, translate(err))
	}
	t.CreatedAt, t.UpdatedAt, t.BudgetResetAt = row.CreatedAt, row.UpdatedAt, row.BudgetResetAt
	return nil
}

// GetTeam returns the team with id.
func (s *Store) GetTeam(ctx context.Context, id string) (store.Team, error) {
	var row teamRow
	if err := s.read(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return store.Team{}, fmt.Errorf("gormstore: get team %q: %w", id, translate(err))
	}
	t, err := rowToTeam(row)
	if err != nil {
		return store.Team{}, fmt.Errorf("gormstore: get team %q: %w", id, err)
	}
	return t, nil
}

// UpdateTeam locks the row, applies fn and writes it back; the id cannot
// change. Errors from fn are returned unchanged.
func (s *Store) UpdateTeam(ctx context.Context, id string, fn func(*store.Team) error) (store.Team, error) {
	var out store.Team
	var fnErr error
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row teamRow
		if err := forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		t, err := rowToTeam(row)
		if err != nil {
			return err
		}
		if fnErr = fn(&t); fnErr != nil {
			return fnErr
		}
		t.ID = id
		if row, err = teamToRow(t); err != nil {
			return err
		}
		if err := tx.Select("*").Save(&row).Error; err != nil {
			return err
		}
		out, err = rowToTeam(row)
		return err
	})
	if fnErr != nil {
		return store.Team{}, fnErr
	}
	if err != nil {
		return store.Team{}, fmt.Errorf("gormstore: update team %q: %w", id, translate(err))
	}
	return out, nil
}

// DeleteTeam removes the team, its memberships and its keys in one
// transaction (team first, matching the lock order of RecordSpend).
func (s *Store) DeleteTeam(ctx context.Context, id string) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row teamRow
		if err := forUpdate(tx).Select("id").Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		for _, child := range []any{&membershipRow{}, &keyRow{}} {
			if err := tx.Where("team_id = ?", id).Delete(child).Error; err != nil {
				return err
			}
		}
		return tx.Where("id = ?", id).Delete(&teamRow{}).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: delete team %q: %w", id, translate(err))
	}
	return nil
}

// ListTeams returns one page ordered by (created_at, id) and the total.
func (s *Store) ListTeams(ctx context.Context, f store.TeamFilter) ([]store.Team, int64, error) {
	where, err := s.condSQL(f.Where, teamFields)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list teams: %w", err)
	}
	scope := func(q *gorm.DB) *gorm.DB {
		if f.UserID != "" {
			q = q.Where("id IN (?)", s.db.Model(&membershipRow{}).Select("team_id").Where("user_id = ?", f.UserID))
		}
		if where != nil {
			q = q.Where(where.sql, where.args...)
		}
		return q
	}
	rows, total, err := list(ctx, s, &teamRow{}, scope, "created_at, id", f.Page)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list teams: %w", err)
	}
	out := make([]store.Team, 0, len(rows))
	for _, r := range rows {
		t, err := rowToTeam(r)
		if err != nil {
			return nil, 0, fmt.Errorf("gormstore: list teams: %w", err)
		}
		out = append(out, t)
	}
	return out, total, nil
}

// PutMembership inserts (team, user) or, when it exists, updates its role
// and in-team budget. Spend and CreatedAt of an existing membership are
// kept: spend is a running total only RecordSpend adds to.
func (s *Store) PutMembership(ctx context.Context, m store.Membership) error {
	if m.TeamID == "" || m.UserID == "" {
		return errors.New("gormstore: put membership: empty team or user id")
	}
	row := membershipToRow(m)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, m.UserID, m.TeamID); err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "team_id"}, {Name: "user_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"role", "max_budget_in_team"}),
		}).Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: put membership %q/%q: %w", m.TeamID, m.UserID, translate(err))
	}
	return nil
}

// GetMembership returns the membership of userID in teamID.
func (s *Store) GetMembership(ctx context.Context, teamID, userID string) (store.Membership, error) {
	var row membershipRow
	if err := s.read(ctx).Where("team_id = ? AND user_id = ?", teamID, userID).Take(&row).Error; err != nil {
		return store.Membership{}, fmt.Errorf("gormstore: get membership %q/%q: %w", teamID, userID, translate(err))
	}
	return rowToMembership(row), nil
}

// DeleteMembership removes userID from teamID.
func (s *Store) DeleteMembership(ctx context.Context, teamID, userID string) error {
	res := s.conn(ctx).Where("team_id = ? AND user_id = ?", teamID, userID).Delete(&membershipRow{})
	if err := notFoundIfNone(res); err != nil {
		return fmt.Errorf("gormstore: delete membership %q/%q: %w", teamID, userID, err)
	}
	return nil
}

// ListMembershipsByTeam lists a team's members, oldest first.
func (s *Store) ListMembershipsByTeam(ctx context.Context, teamID string) ([]store.Membership, error) {
	return s.listMemberships(ctx, "team_id = ?", teamID, "created_at, user_id")
}

// ListMembershipsByUser lists a user's teams, oldest membership first.
func (s *Store) ListMembershipsByUser(ctx context.Context, userID string) ([]store.Membership, error) {
	return s.listMemberships(ctx, "user_id = ?", userID, "created_at, team_id")
}

func (s *Store) listMemberships(ctx context.Context, where, arg, order string) ([]store.Membership, error) {
	var rows []membershipRow
	if err := s.read(ctx).Where(where, arg).Order(order).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("gormstore: list memberships: %w", translate(err))
	}
	out := make([]store.Membership, 0, len(rows))
	for _, r := range rows {
		out = append(out, rowToMembership(r))
	}
	return out, nil
}
