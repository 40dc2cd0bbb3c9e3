package ui

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

const usersPerPage = 25

// roleOptions explains every role in the new-user form, in LiteLLM's
// wording.
func roleOptions(selected string) []roleOption {
	desc := rbac.Describe()
	var out []roleOption
	for _, r := range rbac.Roles() {
		out = append(out, roleOption{Value: string(r), Label: desc[r].UILabel, Description: desc[r].Description,
			Selected: string(r) == selected})
	}
	return out
}

func (u *UI) usersData(c *gin.Context) (usersPage, error) {
	p := principalOf(c)
	if !p.Can(rbac.PermReadAll) {
		return usersPage{}, apperr.Forbidden("Only admins can see the users.")
	}
	pg := pageParam(c.Query("page"))
	q := strings.TrimSpace(c.Query("q"))
	srt := userSorts().choose(c.Request.URL.Query())
	items, total, err := u.svc.ListUsers(ctxOf(c), p, service.UserListInput{EmailContains: q, Page: pg, PageSize: usersPerPage, Order: srt.order})
	if err != nil {
		return usersPage{}, err
	}
	d := usersPage{page: u.pageFor(c, "Internal Users", "/ui/users"), Query: q, Mail: u.svc.MailEnabled(),
		Sort:  userSorts().columns("/ui/users", c.Request.URL.Query(), srt),
		Pager: pagerFor("/ui/users", c.Request.URL.Query(), pg, usersPerPage, total),
		Roles: roleOptions(string(rbac.RoleInternalUser)), Form: userForm{Role: string(rbac.RoleInternalUser)}}
	names, err := u.teamNames(c, p)
	if err != nil {
		return usersPage{}, err
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.User.ID)
	}
	mfaOf, err := u.svc.MFASummaries(ctxOf(c), p, ids)
	if err != nil {
		return usersPage{}, err
	}
	csrf := d.CSRF
	for _, it := range items {
		var teams []string
		for _, id := range it.TeamIDs() {
			teams = append(teams, nameOr(names, shortID(id), id))
		}
		d.Users = append(d.Users, userRow{ID: it.User.ID, Email: it.User.Email, Alias: it.User.Alias, Role: roleLabel(it.User.Role),
			Teams: joinList(teams, "—"), Keys: it.KeyCount, Spend: money(it.User.Spend), Created: day(it.User.CreatedAt),
			Disabled: it.User.Disabled, Self: it.User.ID == p.UserID, MFA: mfaOf[it.User.ID].Enabled(), Status: service.UserStatus(it.User)})
		row := &d.Users[len(d.Users)-1]
		if p.Can(rbac.PermUserWrite) && !row.Self {
			label := userLabel(it.User.Email, it.User.ID)
			del := userDeleteStep(it.User.ID, label, it.KeyCount)
			del.CSRF = csrf
			row.Delete = &del
			if row.MFA {
				reset := mfaResetStep(it.User.ID, label)
				reset.CSRF = csrf
				row.ResetMFA = &reset
			}
		}
	}
	return d, nil
}

func (u *UI) users(c *gin.Context) error {
	d, err := u.usersData(c)
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.users(w, d) })
}

// createUser creates the user and, in the same transaction, an invitation
// whose link is shown once (the admin passes it on, or it is mailed). No
// key: the user makes their own after signing in.
func (u *UI) createUser(c *gin.Context) error {
	p := principalOf(c)
	form := userForm{Email: strings.TrimSpace(c.PostForm("email")), Alias: strings.TrimSpace(c.PostForm("alias")),
		Role: c.PostForm("role"), Mail: c.PostForm("send_email") == "on"}
	noKey, canInvite := false, p.Can(rbac.PermInvitationWrite)
	mail := form.Mail && canInvite
	in := service.NewUser{UserEmail: &form.Email, UserRole: &form.Role, AutoCreateKey: &noKey, Invite: canInvite, SendInviteEmail: &mail}
	if form.Alias != "" {
		in.UserAlias = &form.Alias
	}
	if form.Email == "" {
		return u.userFormError(c, form, apperr.InvalidParam("email", "Enter the new user's e-mail address."))
	}
	det, err := u.svc.CreateUser(ctxOf(c), p, in)
	if err != nil {
		return u.userFormError(c, form, err)
	}
	d := inviteLinkPage{page: u.pageFor(c, "User created", "/ui/users"), Created: true, Email: det.User.Email, UserID: det.User.ID}
	if det.Invitation != nil {
		fillInvite(&d, *det.Invitation)
	}
	noStore(c)
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.inviteLink(w, d) })
}

func (u *UI) userFormError(c *gin.Context, form userForm, err error) error {
	status, msg, ok := publicError(err)
	if !ok || status == http.StatusForbidden {
		return err
	}
	d, lerr := u.usersData(c)
	if lerr != nil {
		return lerr
	}
	d.Form, d.FormError, d.Roles = form, msg, roleOptions(form.Role)
	return u.write(c, status, func(w io.Writer) error { return u.tmpl.users(w, d) })
}

func fillInvite(d *inviteLinkPage, iss service.IssuedInvitation) {
	d.Link, d.Expires, d.MailSent, d.MailError = iss.Link, when(iss.Invitation.ExpiresAt)+" UTC", iss.MailSent, iss.MailError
	if iss.UserEmail != "" {
		d.Email = iss.UserEmail
	}
}

// inviteUser makes a fresh invitation link for a user who has not signed
// in yet (older unused links of that user stop working). The service
// refuses anyone who has: their link would replace their password.
func (u *UI) inviteUser(c *gin.Context) error {
	p := principalOf(c)
	id := c.PostForm("user_id")
	iss, err := u.svc.CreateInvitation(ctxOf(c), p, service.NewInvitation{UserID: id, OnlyNew: true})
	if err != nil {
		return u.redirectError(c, "/ui/users", err)
	}
	d := inviteLinkPage{page: u.pageFor(c, "Invitation link", "/ui/users"), UserID: id, Email: id}
	fillInvite(&d, iss)
	noStore(c)
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.inviteLink(w, d) })
}

func userLabel(email, id string) string {
	if email != "" {
		return email
	}
	return id
}

func userDeleteStep(id, label string, keys int64) confirmStep {
	after := "? Their keys stop working and are deleted too."
	if keys >= 0 {
		after = "? Their " + strconv.FormatInt(keys, 10) + " key(s) stop working and are deleted too."
	}
	return confirmStep{ID: domID("delete-user-", id), Action: "/ui/users/delete", Button: "Delete", Danger: true,
		Fields: fields("user_id", id, "label", label), Title: "Delete this user?", Before: "Delete ", Subject: label, After: after,
		Yes: "Yes, delete user"}
}

func mfaResetStep(id, label string) confirmStep {
	if label == "" {
		label = id
	}
	return confirmStep{ID: domID("reset-mfa-", id), Action: "/ui/users/mfa-reset", Button: "Reset 2FA", Danger: true,
		Fields: fields("user_id", id, "label", label), Title: "Reset two-factor authentication?", Before: "Remove every second factor of ",
		Subject: label, After: " and sign them out everywhere?", Yes: "Yes, reset 2FA"}
}

// resetLink makes a password-reset link for a user who has signed in:
// mailed to them when e-mail is set up, else shown once for the admin to
// pass on.
func (u *UI) resetLink(c *gin.Context) error {
	iss, err := u.svc.CreateResetLink(ctxOf(c), principalOf(c), c.PostForm("user_id"))
	if err != nil {
		return u.redirectError(c, "/ui/users", err)
	}
	d := resetLinkPage{page: u.pageFor(c, "Password reset link", "/ui/users"), Email: iss.User.Email, Link: iss.Link,
		Expires: when(iss.ExpiresAt) + " UTC", MailSent: iss.MailSent, MailError: iss.MailError}
	if d.Email == "" {
		d.Email = iss.User.ID
	}
	noStore(c)
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.resetLink(w, d) })
}

func (u *UI) deleteUser(c *gin.Context) error {
	p := principalOf(c)
	id := c.PostForm("user_id")
	if id == p.UserID {
		return u.redirectError(c, "/ui/users", apperr.InvalidParam("user_id", "You cannot delete your own account while signed in with it."))
	}
	label := c.PostForm("label")
	if label == "" {
		label = id
	}
	if ok, err := u.confirmed(c, userDeleteStep(id, label, -1), "/ui/users"); !ok {
		return err
	}
	if _, err := u.svc.DeleteUsers(ctxOf(c), p, []string{id}); err != nil {
		return u.redirectError(c, "/ui/users", err)
	}
	return u.redirect(c, "/ui/users", "Deleted "+label+" and all of their keys.")
}

const invitationsPerPage = 25

func (u *UI) invitations(c *gin.Context) error {
	p := principalOf(c)
	if !p.Can(rbac.PermReadAll) {
		return apperr.Forbidden("Only admins can see invitations.")
	}
	pg := pageParam(c.Query("page"))
	invs, total, err := u.svc.ListInvitations(ctxOf(c), p, "", pg, invitationsPerPage)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(invs))
	for _, inv := range invs {
		ids = append(ids, inv.UserID)
	}
	emails, err := u.emails(c, p, ids)
	if err != nil {
		return err
	}
	now := u.now()
	d := invitationsPage{page: u.pageFor(c, "Invitations", "/ui/invitations"),
		Pager: pagerFor("/ui/invitations", c.Request.URL.Query(), pg, invitationsPerPage, total)}
	for _, inv := range invs {
		row := invitationRow{UserID: inv.UserID, Email: emails[inv.UserID], Status: service.InvitationStatus(inv, now),
			Created: when(inv.CreatedAt), CreatedBy: actorLabel(inv.CreatedBy), Expires: when(inv.ExpiresAt), Accepted: "—"}
		if inv.AcceptedAt != nil {
			row.Accepted = when(*inv.AcceptedAt)
		}
		if p.Can(rbac.PermInvitationWrite) && row.Status == "pending" {
			step := invitationRevokeStep(inv.IDHash, userLabel(row.Email, inv.UserID))
			step.CSRF = d.CSRF
			row.Revoke = &step
		}
		d.Rows = append(d.Rows, row)
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.invitations(w, d) })
}

func actorLabel(id string) string {
	if id == auth.MasterActorID {
		return "master key"
	}
	return id
}

// teamNames maps team ids to their names (the first 100 teams; others
// show their id).
func (u *UI) teamNames(c *gin.Context, p auth.Principal) (map[string]string, error) {
	teams, _, err := u.svc.ListTeams(ctxOf(c), p, "", 1, 100)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(teams))
	for _, t := range teams {
		if t.Team.Alias != "" {
			out[t.Team.ID] = t.Team.Alias
		}
	}
	return out, nil
}
