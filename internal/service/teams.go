package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// TeamRef names a team a new user joins. LiteLLM accepts either a bare
// team id or an object; both decode into TeamRef.
type TeamRef struct {
	TeamID          string   `json:"team_id"`
	Role            string   `json:"user_role"`
	MaxBudgetInTeam *float64 `json:"max_budget_in_team"`
}

// TeamRefs is a list of TeamRef that also accepts ["team-a", "team-b"].
type TeamRefs []TeamRef

// UnmarshalJSON implements json.Unmarshaler.
func (t *TeamRefs) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*t = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return apperr.InvalidParam("teams", "Field \"teams\" must be a list of team ids or objects.")
	}
	out := make(TeamRefs, 0, len(raw))
	for _, r := range raw {
		var id string
		if err := json.Unmarshal(r, &id); err == nil {
			out = append(out, TeamRef{TeamID: id})
			continue
		}
		var ref TeamRef
		if err := json.Unmarshal(r, &ref); err != nil {
			return apperr.InvalidParam("teams", "Field \"teams\" must be a list of team ids or objects.")
		}
		out = append(out, ref)
	}
	*t = out
	return nil
}

// Member names a user in team membership requests, by id or e-mail.
type Member struct {
	UserID    string `json:"user_id"`
	UserEmail string `json:"user_email"`
	Role      string `json:"role"`
}

// Members accepts one member object or a list of them (LiteLLM's
// /team/member_add "member" field).
type Members []Member

// UnmarshalJSON implements json.Unmarshaler.
func (m *Members) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	bad := apperr.Invalid("A member must be an object {\"user_id\" or \"user_email\", \"role\"} or a list of them.")
	if len(b) > 0 && b[0] == '{' {
		var one Member
		if err := json.Unmarshal(b, &one); err != nil {
			return bad
		}
		*m = Members{one}
		return nil
	}
	var many []Member
	if err := json.Unmarshal(b, &many); err != nil {
		return bad
	}
	*m = many
	return nil
}

// NewTeam is /team/new's body.
type NewTeam struct {
	TeamID           *string        `json:"team_id"`
	TeamAlias        *string        `json:"team_alias"`
	MembersWithRoles Members        `json:"members_with_roles"`
	Models           []string       `json:"models"`
	MaxBudget        *float64       `json:"max_budget"`
	BudgetDuration   *string        `json:"budget_duration"`
	TPMLimit         *int64         `json:"tpm_limit"`
	RPMLimit         *int64         `json:"rpm_limit"`
	Metadata         map[string]any `json:"metadata"`
	Blocked          *bool          `json:"blocked"`
}

// TeamUpdate is /team/update's body.
type TeamUpdate struct {
	TeamID         string         `json:"team_id"`
	TeamAlias      *string        `json:"team_alias"`
	Models         []string       `json:"models"`
	MaxBudget      *float64       `json:"max_budget"`
	BudgetDuration *string        `json:"budget_duration"`
	TPMLimit       *int64         `json:"tpm_limit"`
	RPMLimit       *int64         `json:"rpm_limit"`
	Metadata       map[string]any `json:"metadata"`
	Blocked        *bool          `json:"blocked"`
}

// TeamDetail is a team with its members.
type TeamDetail struct {
	Team    store.Team
	Members []TeamMember
}

// TeamMember is a membership with the member's e-mail.
type TeamMember struct {
	store.Membership
	UserEmail string
}

func (in *NewTeam) validate() error {
	if in.TeamID != nil {
		if err := validID("team_id", *in.TeamID); err != nil {
			return err
		}
	}
	if in.TeamAlias != nil {
		if err := validAlias("team_alias", *in.TeamAlias); err != nil {
			return err
		}
	}
	for _, m := range in.MembersWithRoles {
		if _, err := validTeamRole("members_with_roles", m.Role); err != nil {
			return err
		}
		if m.UserID == "" && m.UserEmail == "" {
			return apperr.InvalidParam("members_with_roles", "Each member needs user_id or user_email.")
		}
	}
	return firstPublic(errors.Join(validBudget("max_budget", in.MaxBudget), validDuration("budget_duration", in.BudgetDuration),
		validModels("models", in.Models), validLimit("tpm_limit", in.TPMLimit), validLimit("rpm_limit", in.RPMLimit)))
}

// CreateTeam creates a team (admin only). Listed members must exist; the
// creating user, if the principal is a user, joins as team admin.
func (s *Service) CreateTeam(ctx context.Context, p auth.Principal, in NewTeam) (TeamDetail, error) {
	if err := require(p, rbac.PermTeamWrite); err != nil {
		return TeamDetail{}, err
	}
	if err := in.validate(); err != nil {
		return TeamDetail{}, err
	}
	now := s.Now()
	t := store.Team{ID: s.newID(), Models: in.Models, MaxBudget: in.MaxBudget, TPMLimit: in.TPMLimit,
		RPMLimit: in.RPMLimit, Metadata: in.Metadata, CreatedAt: now, UpdatedAt: now}
	if in.TeamID != nil {
		t.ID = *in.TeamID
	}
	if in.TeamAlias != nil {
		t.Alias = *in.TeamAlias
	}
	if in.Blocked != nil {
		t.Blocked = *in.Blocked
	}
	if in.BudgetDuration != nil && *in.BudgetDuration != "" {
		d, _ := ParseDuration(*in.BudgetDuration)
		t.BudgetDuration = *in.BudgetDuration
		reset := now.Add(d)
		t.BudgetResetAt = &reset
	}
	var out TeamDetail
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		if err := tx.CreateTeam(ctx, &t); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("A team with team_id %q already exists.", t.ID).Wrap(err)
			}
			return fmt.Errorf("service: create team: %w", err)
		}
		members := in.MembersWithRoles
		if p.UserID != "" {
			members = append(Members{{UserID: p.UserID, Role: string(rbac.TeamRoleAdmin)}}, members...)
		}
		for _, m := range members {
			u, err := s.lookupMember(ctx, tx, m)
			if err != nil {
				return err
			}
			role, _ := validTeamRole("members_with_roles", m.Role)
			if err := tx.PutMembership(ctx, store.Membership{TeamID: t.ID, UserID: u.ID, Role: string(role), CreatedAt: now}); err != nil {
				return fmt.Errorf("service: add member: %w", err)
			}
			ch.User(u.ID)
		}
		ch.Team(t.ID)
		d, err := s.teamDetail(ctx, tx, t)
		if err != nil {
			return err
		}
		out = d
		return s.audit(ctx, tx, p, "team.created", "team", t.ID, nil, teamSummary(t))
	})
	if err != nil {
		return TeamDetail{}, err
	}
	return out, nil
}

func teamSummary(t store.Team) map[string]any {
	return map[string]any{"team_id": t.ID, "team_alias": t.Alias, "models": t.Models, "max_budget": t.MaxBudget, "blocked": t.Blocked}
}

func (s *Service) lookupMember(ctx context.Context, tx store.Store, m Member) (store.User, error) {
	if m.UserID != "" {
		u, err := tx.GetUser(ctx, m.UserID)
		return u, notFound(err, "User %q not found; create it with /user/new first.", truncate(m.UserID, 80))
	}
	if m.UserEmail == "" {
		return store.User{}, apperr.InvalidParam("member", "Each member needs user_id or user_email.")
	}
	u, err := tx.GetUserByEmail(ctx, m.UserEmail)
	return u, notFound(err, "No user with e-mail %q; create it with /user/new first.", truncate(m.UserEmail, 80))
}

func (s *Service) teamDetail(ctx context.Context, st store.Store, t store.Team) (TeamDetail, error) {
	ms, err := st.ListMembershipsByTeam(ctx, t.ID)
	if err != nil {
		return TeamDetail{}, fmt.Errorf("service: list members: %w", err)
	}
	d := TeamDetail{Team: t}
	for _, m := range ms {
		tm := TeamMember{Membership: m}
		if u, err := st.GetUser(ctx, m.UserID); err == nil {
			tm.UserEmail = u.Email
		}
		d.Members = append(d.Members, tm)
	}
	return d, nil
}

// canSeeTeam: admins and viewers see every team; members see their own.
func (s *Service) canSeeTeam(ctx context.Context, p auth.Principal, teamID string) (bool, error) {
	if p.Can(rbac.PermReadAll) {
		return true, nil
	}
	if p.UserID == "" || !p.Can(rbac.PermReadOwn) {
		return false, nil
	}
	_, err := s.store.GetMembership(ctx, teamID, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetTeam returns a team to admins, admin viewers and its members.
func (s *Service) GetTeam(ctx context.Context, p auth.Principal, teamID string) (TeamDetail, error) {
	if err := require(p, rbac.PermReadOwn); err != nil {
		return TeamDetail{}, err
	}
	if err := validID("team_id", teamID); err != nil {
		return TeamDetail{}, err
	}
	ok, err := s.canSeeTeam(ctx, p, teamID)
	if err != nil {
		return TeamDetail{}, fmt.Errorf("service: check membership: %w", err)
	}
	if !ok {
		return TeamDetail{}, apperr.Forbidden("You are not a member of this team.")
	}
	t, err := s.store.GetTeam(ctx, teamID)
	if err != nil {
		return TeamDetail{}, notFound(err, "Team %q not found.", truncate(teamID, 80))
	}
	return s.teamDetail(ctx, s.store, t)
}

// ListTeams lists all teams for admins and admin viewers, and the caller's
// own teams for everyone else (a user_id filter naming someone else is 403).
func (s *Service) ListTeams(ctx context.Context, p auth.Principal, userID string, page, size int) ([]TeamDetail, int64, error) {
	if err := require(p, rbac.PermReadOwn); err != nil {
		return nil, 0, err
	}
	pg, err := pageOf(page, size, 100)
	if err != nil {
		return nil, 0, err
	}
	if !p.Can(rbac.PermReadAll) {
		if userID != "" && userID != p.UserID {
			return nil, 0, apperr.Forbidden("You may only list your own teams.")
		}
		userID = p.UserID
		if userID == "" {
			return nil, 0, nil
		}
	}
	teams, total, err := s.store.ListTeams(ctx, store.TeamFilter{UserID: userID, Page: pg})
	if err != nil {
		return nil, 0, fmt.Errorf("service: list teams: %w", err)
	}
	out := make([]TeamDetail, 0, len(teams))
	for _, t := range teams {
		d, err := s.teamDetail(ctx, s.store, t)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, d)
	}
	return out, total, nil
}

// UpdateTeam changes a team (admin only). Blocking or changing models
// invalidates cached answers for the team's members.
func (s *Service) UpdateTeam(ctx context.Context, p auth.Principal, in TeamUpdate) (TeamDetail, error) {
	if err := require(p, rbac.PermTeamWrite); err != nil {
		return TeamDetail{}, err
	}
	if err := validID("team_id", in.TeamID); err != nil {
		return TeamDetail{}, err
	}
	if in.TeamAlias != nil {
		if err := validAlias("team_alias", *in.TeamAlias); err != nil {
			return TeamDetail{}, err
		}
	}
	if err := firstPublic(errors.Join(validBudget("max_budget", in.MaxBudget), validDuration("budget_duration", in.BudgetDuration),
		validModels("models", in.Models), validLimit("tpm_limit", in.TPMLimit), validLimit("rpm_limit", in.RPMLimit))); err != nil {
		return TeamDetail{}, err
	}
	now := s.Now()
	var out TeamDetail
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		var before store.Team
		t, err := tx.UpdateTeam(ctx, in.TeamID, func(t *store.Team) error {
			before = *t
			if in.TeamAlias != nil {
				t.Alias = *in.TeamAlias
			}
			if in.Models != nil {
				t.Models = in.Models
			}
			if in.MaxBudget != nil {
				t.MaxBudget = in.MaxBudget
			}
			if in.BudgetDuration != nil {
				t.BudgetDuration = *in.BudgetDuration
				if *in.BudgetDuration == "" {
					t.BudgetResetAt = nil
				} else {
					d, _ := ParseDuration(*in.BudgetDuration)
					reset := now.Add(d)
					t.BudgetResetAt = &reset
				}
			}
			if in.TPMLimit != nil {
				t.TPMLimit = in.TPMLimit
			}
			if in.RPMLimit != nil {
				t.RPMLimit = in.RPMLimit
			}
			if in.Metadata != nil {
				t.Metadata = in.Metadata
			}
			if in.Blocked != nil {
				t.Blocked = *in.Blocked
			}
			t.UpdatedAt = now
			return nil
		})
		if err != nil {
			return notFound(err, "Team %q not found.", truncate(in.TeamID, 80))
		}
		d, err := s.teamDetail(ctx, tx, t)
		if err != nil {
			return err
		}
		out = d
		// The team's keys (owned or not) answer from the team's state.
		ch.Team(t.ID)
		return s.audit(ctx, tx, p, "team.updated", "team", t.ID, teamSummary(before), teamSummary(t))
	})
	if err != nil {
		return TeamDetail{}, err
	}
	return out, nil
}

// DeleteTeams deletes teams, their memberships and their keys (admin only);
// all-or-nothing.
func (s *Service) DeleteTeams(ctx context.Context, p auth.Principal, ids []string) ([]string, error) {
	if err := require(p, rbac.PermTeamWrite); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, apperr.InvalidParam("team_ids", "team_ids must list at least one team.")
	}
	if len(ids) > 1000 {
		return nil, apperr.InvalidParam("team_ids", "At most 1000 teams can be deleted at once.")
	}
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		for _, id := range ids {
			if err := validID("team_ids", id); err != nil {
				return err
			}
			t, err := tx.GetTeam(ctx, id)
			if err != nil {
				return notFound(err, "Team %q not found; nothing was deleted.", truncate(id, 80))
			}
			// The team's keys go with it (by the team index, however many),
			// and its members' sessions list one team fewer.
			ch.Team(id)
			ms, err := tx.ListMembershipsByTeam(ctx, id)
			if err != nil {
				return fmt.Errorf("service: list members: %w", err)
			}
			for _, m := range ms {
				ch.User(m.UserID)
			}
			if err := tx.DeleteTeam(ctx, id); err != nil {
				return notFound(err, "Team %q not found; nothing was deleted.", truncate(id, 80))
			}
			if err := s.audit(ctx, tx, p, "team.deleted", "team", id, teamSummary(t), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
