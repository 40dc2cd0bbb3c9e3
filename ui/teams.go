package ui

import (
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

const teamsPerPage = 25

func (u *UI) teamsData(c *gin.Context) (teamsPage, error) {
	p := principalOf(c)
	pg := pageParam(c.Query("page"))
	teams, total, err := u.svc.ListTeams(ctxOf(c), p, "", pg, teamsPerPage)
	if err != nil {
		return teamsPage{}, err
	}
	d := teamsPage{page: u.pageFor(c, "Teams", "/ui/teams"), Pager: pagerFor("/ui/teams", c.Request.URL.Query(), pg, teamsPerPage, total)}
	for _, t := range teams {
		d.Teams = append(d.Teams, teamRowOf(p, t, d.CSRF))
	}
	return d, nil
}

func teamRowOf(p auth.Principal, t service.TeamDetail, csrf string) teamRow {
	row := teamRow{ID: t.Team.ID, Alias: t.Team.Alias, Models: joinList(t.Team.Models, "All models"), Spend: money(t.Team.Spend),
		Budget: budgetOf(t.Team.Spend, t.Team.MaxBudget), Blocked: t.Team.Blocked, CanManage: p.Can(rbac.PermTeamWrite)}
	if row.Alias == "" {
		row.Alias = t.Team.ID
	}
	for _, m := range t.Members {
		email := m.UserEmail
		if email == "" {
			email = m.UserID
		}
		mr := memberRow{UserID: m.UserID, Email: email, Role: m.Role, Admin: m.Role == string(rbac.TeamRoleAdmin), Spend: money(m.Spend),
			DOMID: domID("", t.Team.ID+"-"+m.UserID)}
		if m.MaxBudgetInTeam != nil {
			mr.Budget = budgetField(m.MaxBudgetInTeam)
		}
		row.Members = append(row.Members, mr)
		// A team admin manages this team's members (the service checks it
		// again).
		if m.UserID == p.UserID && m.Role == string(rbac.TeamRoleAdmin) && p.Can(rbac.PermTeamMemberWrite) {
			row.CanManage = true
		}
	}
	if row.CanManage {
		for i := range row.Members {
			m := &row.Members[i]
			step := confirmStep{ID: domID("remove-", m.DOMID), Action: "/ui/teams/members/remove", CSRF: csrf, Button: "Remove", Danger: true,
				Fields: fields("team_id", row.ID, "user_id", m.UserID, "label", m.Email), Title: "Remove this member?", Before: "Remove ",
				Subject: m.Email, After: " from " + row.Alias + "?", Yes: "Yes, remove"}
			m.Remove = &step
		}
	}
	if p.Can(rbac.PermTeamWrite) {
		step := teamDeleteStep(row.ID, row.Alias)
		step.CSRF = csrf
		row.Delete = &step
	}
	return row
}

func teamDeleteStep(id, name string) confirmStep {
	return confirmStep{ID: domID("delete-team-", id), Action: "/ui/teams/delete", Button: "Delete team", Danger: true,
		Fields: fields("team_id", id, "label", name), Title: "Delete this team?", Before: "Delete ", Subject: name,
		After: "? Its keys are deleted too.", Yes: "Yes, delete team"}
}

func (u *UI) teams(c *gin.Context) error {
	d, err := u.teamsData(c)
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.teams(w, d) })
}

func (u *UI) createTeam(c *gin.Context) error {
	form := teamForm{Alias: strings.TrimSpace(c.PostForm("alias")), Models: c.PostForm("models"), Budget: c.PostForm("max_budget")}
	err := func() error {
		if form.Alias == "" {
			return apperr.InvalidParam("alias", "Enter a name for the team.")
		}
		b, err := parseBudget("max_budget", form.Budget)
		if err != nil {
			return err
		}
		_, err = u.svc.CreateTeam(ctxOf(c), principalOf(c), service.NewTeam{TeamAlias: &form.Alias, Models: splitList(form.Models), MaxBudget: b})
		return err
	}()
	if err != nil {
		status, msg, ok := publicError(err)
		if !ok || status == http.StatusForbidden {
			return err
		}
		d, lerr := u.teamsData(c)
		if lerr != nil {
			return lerr
		}
		d.Form, d.FormError = form, msg
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.teams(w, d) })
	}
	return u.redirect(c, "/ui/teams", "Team “"+form.Alias+"” created.")
}

func (u *UI) deleteTeam(c *gin.Context) error {
	id := c.PostForm("team_id")
	label := c.PostForm("label")
	if label == "" {
		label = id
	}
	if ok, err := u.confirmed(c, teamDeleteStep(id, label), "/ui/teams"); !ok {
		return err
	}
	if _, err := u.svc.DeleteTeams(ctxOf(c), principalOf(c), []string{id}); err != nil {
		return u.redirectError(c, "/ui/teams", err)
	}
	return u.redirect(c, "/ui/teams", "Team deleted, with its keys.")
}

func (u *UI) addMember(c *gin.Context) error {
	email := strings.TrimSpace(c.PostForm("email"))
	if email == "" {
		return u.redirectError(c, "/ui/teams", apperr.InvalidParam("email", "Enter the e-mail address of the user to add."))
	}
	m := service.Member{Role: c.PostForm("role")}
	if strings.Contains(email, "@") {
		m.UserEmail = email
	} else {
		m.UserID = email
	}
	_, err := u.svc.AddMembers(ctxOf(c), principalOf(c), service.MemberChange{TeamID: c.PostForm("team_id"), Member: service.Members{m}})
	if err != nil {
		return u.redirectError(c, "/ui/teams", err)
	}
	return u.redirect(c, "/ui/teams", "Added "+email+" to the team.")
}

func (u *UI) removeMember(c *gin.Context) error {
	in := service.MemberChange{TeamID: c.PostForm("team_id"), UserID: c.PostForm("user_id")}
	label := c.PostForm("label")
	if label == "" {
		label = in.UserID
	}
	step := confirmStep{Action: "/ui/teams/members/remove", Danger: true, Fields: fields("team_id", in.TeamID, "user_id", in.UserID, "label", label),
		Title: "Remove this member?", Before: "Remove ", Subject: label, After: " from the team?", Yes: "Yes, remove"}
	if ok, err := u.confirmed(c, step, "/ui/teams"); !ok {
		return err
	}
	if _, err := u.svc.RemoveMember(ctxOf(c), principalOf(c), in); err != nil {
		return u.redirectError(c, "/ui/teams", err)
	}
	return u.redirect(c, "/ui/teams", "Removed the member from the team.")
}
