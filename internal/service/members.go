package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// MemberChange is the body of /team/member_add, /team/member_delete and
// /team/member_update. member_add uses Member (one or many); the other two
// name one user with UserID/UserEmail.
type MemberChange struct {
	TeamID          string   `json:"team_id"`
	Member          Members  `json:"member"`
	UserID          string   `json:"user_id"`
	UserEmail       string   `json:"user_email"`
	Role            string   `json:"role"`
	MaxBudgetInTeam *float64 `json:"max_budget_in_team"`
}

// errNoSuchMember is what a team admin hears about any member they may not
// add: unknown and existing-but-outranking accounts answer alike, so
// member_add cannot be used to probe which accounts exist.
func errNoSuchMember() error {
	return apperr.NotFound("No user you can add to this team matches this member; a proxy admin can add anyone.")
}

// outranks reports whether u's global role is above the caller's: a team
// admin never adds, changes or removes such a member (that would pull an
// admin's identity into a team they control, or lock one out).
func outranks(u store.User, p auth.Principal) bool {
	return rbac.Rank(rbac.Role(u.Role)) > rbac.Rank(p.Role)
}

// mayManageMembers: proxy admins for every team; otherwise users whose
// role allows member management and who are admins of this team.
func (s *Service) mayManageMembers(ctx context.Context, tx store.Store, p auth.Principal, teamID string) error {
	if err := require(p, rbac.PermTeamMemberWrite); err != nil {
		return err
	}
	if p.Can(rbac.PermTeamWrite) {
		return nil
	}
	if p.UserID != "" {
		m, err := tx.GetMembership(ctx, teamID, p.UserID)
		if err == nil && m.Role == string(rbac.TeamRoleAdmin) {
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("service: check team admin: %w", err)
		}
	}
	return apperr.Forbidden("Only a proxy admin or an admin of this team can manage its members.")
}

func (in *MemberChange) validateTeam() error {
	if err := validID("team_id", in.TeamID); err != nil {
		return err
	}
	return validBudget("max_budget_in_team", in.MaxBudgetInTeam)
}

// AddMembers adds users to a team (proxy admin or team admin). Existing
// members get the new role.
func (s *Service) AddMembers(ctx context.Context, p auth.Principal, in MemberChange) (TeamDetail, error) {
	if err := require(p, rbac.PermTeamMemberWrite); err != nil {
		return TeamDetail{}, err
	}
	if err := in.validateTeam(); err != nil {
		return TeamDetail{}, err
	}
	if len(in.Member) == 0 {
		return TeamDetail{}, apperr.InvalidParam("member", "member is required.")
	}
	for _, m := range in.Member {
		if _, err := validTeamRole("member.role", m.Role); err != nil {
			return TeamDetail{}, err
		}
	}
	now := s.Now()
	var out TeamDetail
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		t, err := tx.GetTeam(ctx, in.TeamID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) && !p.Can(rbac.PermTeamWrite) {
				return apperr.Forbidden("Only a proxy admin or an admin of this team can manage its members.")
			}
			return notFound(err, "Team %q not found.", truncate(in.TeamID, 80))
		}
		if err := s.mayManageMembers(ctx, tx, p, in.TeamID); err != nil {
			return err
		}
		proxyAdmin := p.Can(rbac.PermTeamWrite)
		for _, m := range in.Member {
			u, err := s.lookupMember(ctx, tx, m)
			if !proxyAdmin && (errors.Is(err, store.ErrNotFound) || err == nil && outranks(u, p)) {
				return errNoSuchMember()
			}
			if err != nil {
				return err
			}
			if !proxyAdmin && in.MaxBudgetInTeam != nil && t.MaxBudget != nil && *in.MaxBudgetInTeam > *t.MaxBudget {
				return apperr.Forbidden("max_budget_in_team %.4g exceeds the team's budget of %.4g.", *in.MaxBudgetInTeam, *t.MaxBudget)
			}
			role, _ := validTeamRole("member.role", m.Role)
			budget := in.MaxBudgetInTeam
			old, err := tx.GetMembership(ctx, t.ID, u.ID)
			switch {
			case err == nil:
				// Adding an existing member changes their membership, under
				// member_update's rules: a team admin cannot change their
				// own, and a budget not given is kept, not removed.
				if !proxyAdmin && u.ID == p.UserID && (string(role) != old.Role || budget != nil) {
					return apperr.Forbidden("A team admin cannot change their own membership; ask another admin of the team or a proxy admin.")
				}
				if budget == nil {
					budget = old.MaxBudgetInTeam
				}
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("service: add member: %w", err)
			}
			if err := tx.PutMembership(ctx, store.Membership{TeamID: t.ID, UserID: u.ID, Role: string(role),
				MaxBudgetInTeam: budget, CreatedAt: now}); err != nil {
				return fmt.Errorf("service: add member: %w", err)
			}
			ch.User(u.ID)
			if err := s.audit(ctx, tx, p, "team.member_added", "team", t.ID, nil,
				map[string]any{"user_id": u.ID, "role": string(role)}); err != nil {
				return err
			}
		}
		out, err = s.teamDetail(ctx, tx, t)
		return err
	})
	if err != nil {
		return TeamDetail{}, err
	}
	return out, nil
}

// UpdateMember changes a member's team role or budget.
func (s *Service) UpdateMember(ctx context.Context, p auth.Principal, in MemberChange) (TeamDetail, error) {
	return s.changeMember(ctx, p, in, false)
}

// RemoveMember removes a user from a team.
func (s *Service) RemoveMember(ctx context.Context, p auth.Principal, in MemberChange) (TeamDetail, error) {
	return s.changeMember(ctx, p, in, true)
}

func (s *Service) changeMember(ctx context.Context, p auth.Principal, in MemberChange, remove bool) (TeamDetail, error) {
	if err := require(p, rbac.PermTeamMemberWrite); err != nil {
		return TeamDetail{}, err
	}
	if err := in.validateTeam(); err != nil {
		return TeamDetail{}, err
	}
	if in.UserID == "" && in.UserEmail == "" {
		return TeamDetail{}, apperr.InvalidParam("user_id", "user_id or user_email is required.")
	}
	if !remove && in.Role != "" {
		if _, err := validTeamRole("role", in.Role); err != nil {
			return TeamDetail{}, err
		}
	}
	var out TeamDetail
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		t, err := tx.GetTeam(ctx, in.TeamID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) && !p.Can(rbac.PermTeamWrite) {
				return apperr.Forbidden("Only a proxy admin or an admin of this team can manage its members.")
			}
			return notFound(err, "Team %q not found.", truncate(in.TeamID, 80))
		}
		if err := s.mayManageMembers(ctx, tx, p, t.ID); err != nil {
			return err
		}
		u, err := s.lookupMember(ctx, tx, Member{UserID: in.UserID, UserEmail: in.UserEmail})
		if err != nil && !p.Can(rbac.PermTeamWrite) && errors.Is(err, store.ErrNotFound) {
			// Team admins see their members; anyone else is "not a member",
			// whether or not the account exists.
			return apperr.NotFound("This user is not a member of team %q.", truncate(t.ID, 80))
		}
		if err != nil {
			return err
		}
		m, err := tx.GetMembership(ctx, t.ID, u.ID)
		if err != nil && !p.Can(rbac.PermTeamWrite) {
			return notFound(err, "This user is not a member of team %q.", truncate(t.ID, 80))
		}
		if err != nil {
			return notFound(err, "User %q is not a member of team %q.", truncate(u.ID, 80), truncate(t.ID, 80))
		}
		if !p.Can(rbac.PermTeamWrite) && outranks(u, p) {
			return apperr.Forbidden("Only a proxy admin can change or remove a member whose role is above yours.")
		}
		if !p.Can(rbac.PermTeamWrite) && !remove && u.ID == p.UserID && (in.MaxBudgetInTeam != nil || in.Role != "") {
			return apperr.Forbidden("A team admin cannot change their own membership; ask another admin of the team or a proxy admin.")
		}
		if !p.Can(rbac.PermTeamWrite) && in.MaxBudgetInTeam != nil && t.MaxBudget != nil && *in.MaxBudgetInTeam > *t.MaxBudget {
			return apperr.Forbidden("max_budget_in_team %.4g exceeds the team's budget of %.4g.", *in.MaxBudgetInTeam, *t.MaxBudget)
		}
		if remove {
			if err := tx.DeleteMembership(ctx, t.ID, u.ID); err != nil {
				return fmt.Errorf("service: remove member: %w", err)
			}
			if err := s.audit(ctx, tx, p, "team.member_removed", "team", t.ID, map[string]any{"user_id": u.ID, "role": m.Role}, nil); err != nil {
				return err
			}
		} else {
			before := m
			if in.Role != "" {
				m.Role = in.Role
			}
			if in.MaxBudgetInTeam != nil {
				m.MaxBudgetInTeam = in.MaxBudgetInTeam
			}
			if err := tx.PutMembership(ctx, m); err != nil {
				return fmt.Errorf("service: update member: %w", err)
			}
			if err := s.audit(ctx, tx, p, "team.member_updated", "team", t.ID,
				map[string]any{"user_id": u.ID, "role": before.Role}, map[string]any{"user_id": u.ID, "role": m.Role}); err != nil {
				return err
			}
		}
		// Membership and the member's budget are inputs of the decision
		// for the member's team keys.
		ch.User(u.ID)
		out, err = s.teamDetail(ctx, tx, t)
		return err
	})
	if err != nil {
		return TeamDetail{}, err
	}
	return out, nil
}
