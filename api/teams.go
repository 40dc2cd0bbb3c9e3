package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
)

// TeamOps is what the team routes need from the service layer.
type TeamOps interface {
	CreateTeam(ctx context.Context, p auth.Principal, in service.NewTeam) (service.TeamDetail, error)
	GetTeam(ctx context.Context, p auth.Principal, id string) (service.TeamDetail, error)
	ListTeams(ctx context.Context, p auth.Principal, userID string, page, size int) ([]service.TeamDetail, int64, error)
	UpdateTeam(ctx context.Context, p auth.Principal, in service.TeamUpdate) (service.TeamDetail, error)
	DeleteTeams(ctx context.Context, p auth.Principal, ids []string) ([]string, error)
	AddMembers(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
	UpdateMember(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
	RemoveMember(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
}

func (s *Server) teamNew(c *gin.Context) error {
	var in service.NewTeam
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.opts.Teams.CreateTeam(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, teamView(d))
	return nil
}

func (s *Server) teamInfo(c *gin.Context) error {
	id, err := requireQuery(c, "team_id")
	if err != nil {
		return err
	}
	p := PrincipalOf(c)
	d, err := s.opts.Teams.GetTeam(ctxOf(c), p, id)
	if err != nil {
		return err
	}
	out := map[string]any{"team_id": d.Team.ID, "team_info": teamView(d), "keys": []any{}, "team_memberships": membershipsView(d.Members)}
	for _, hook := range s.teamInfoHooks {
		if err := hook(ctxOf(c), p, d, out); err != nil {
			return err
		}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) teamList(c *gin.Context) error {
	page, size, err := pageParams(c, "page_size")
	if err != nil {
		return err
	}
	teams, _, err := s.opts.Teams.ListTeams(ctxOf(c), PrincipalOf(c), c.Query("user_id"), page, size)
	if err != nil {
		return err
	}
	out := make([]teamJSON, 0, len(teams))
	for _, t := range teams {
		out = append(out, teamView(t))
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) teamUpdate(c *gin.Context) error {
	var in service.TeamUpdate
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.opts.Teams.UpdateTeam(ctxOf(c), PrincipalOf(c), in)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, teamView(d))
	return nil
}

func (s *Server) teamDelete(c *gin.Context) error {
	var in struct {
		TeamIDs []string `json:"team_ids"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ids, err := s.opts.Teams.DeleteTeams(ctxOf(c), PrincipalOf(c), in.TeamIDs)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deleted_teams": ids})
	return nil
}

type memberOp func(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)

func (s *Server) teamMember(op func(TeamOps) memberOp) httperrHandler {
	return func(c *gin.Context) error {
		var in service.MemberChange
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		d, err := op(s.opts.Teams)(ctxOf(c), PrincipalOf(c), in)
		if err != nil {
			return err
		}
		out := structToMap(teamView(d))
		out["team_memberships"] = membershipsView(d.Members)
		c.JSON(http.StatusOK, out)
		return nil
	}
}
