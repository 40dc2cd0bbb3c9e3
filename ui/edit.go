package ui

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// The edit pages change what the JSON API's /key/update, /user/update,
// /team/update and /team/member_update change, through the same service
// calls, so the same rules hold; a page only leaves out what the viewer
// may not do. A mistake re-shows the form with what was typed.

// editForm is what an edit form holds, as typed.
type editForm struct {
	Alias    string
	Role     string
	Models   string
	Budget   string
	Duration string
	Blocked  bool
}

type keyEditPage struct {
	page
	Hash       string
	Label      string
	Name       string
	Owner      string
	Expires    string
	Form       editForm
	Expiries   []option
	FormError  string
	Blocked    bool
	CanBlock   bool
	Regenerate *confirmStep
}

type userEditPage struct {
	page
	ID        string
	Email     string
	Self      bool
	Roles     []roleOption
	Form      editForm
	FormError string
}

type teamEditPage struct {
	page
	ID        string
	Name      string
	Form      editForm
	FormError string
}

func (t *templates) keyEdit(w io.Writer, d keyEditPage) error   { return t.exec(w, pageKeyEdit, d) }
func (t *templates) userEdit(w io.Writer, d userEditPage) error { return t.exec(w, pageUserEdit, d) }
func (t *templates) teamEdit(w io.Writer, d teamEditPage) error { return t.exec(w, pageTeamEdit, d) }

// models and budgets as the form shows them.
func budgetField(b *float64) string {
	if b == nil {
		return ""
	}
	return strings.TrimPrefix(money(*b), "$")
}

// editBudget reads a budget field of an edit form: the API keeps a budget
// it is not sent, so a budget cannot be emptied here.
func editBudget(typed string, had *float64) (*float64, error) {
	b, err := parseBudget("max_budget", typed)
	if err != nil {
		return nil, err
	}
	if b == nil && had != nil {
		return nil, apperr.InvalidParam("max_budget", "A budget cannot be removed, only changed: enter the new amount.")
	}
	return b, nil
}

// formMessage is an error's message for an inline form error, or false
// when the error is not one to show there (internal failures).
func formMessage(err error, mine bool) (int, string, bool) {
	status, msg, ok := publicError(err)
	if !ok {
		return 0, "", false
	}
	if plain, isScope := scopeMessage(err, mine); isScope {
		msg = plain
	}
	return status, msg, true
}

// ---- keys ----

func (u *UI) keyEditData(c *gin.Context, ref string) (keyEditPage, store.Key, error) {
	p := principalOf(c)
	if ref == "" {
		return keyEditPage{}, store.Key{}, apperr.InvalidParam("key", "No key was named.")
	}
	k, err := u.svc.KeyInfo(ctxOf(c), p, ref)
	if err != nil {
		return keyEditPage{}, store.Key{}, err
	}
	if !mayEditKey(p, k) {
		return keyEditPage{}, store.Key{}, apperr.Forbidden("Only the key's owner or a proxy admin can change this key.")
	}
	owner := k.UserID
	if emails, err := u.emails(c, p, []string{k.UserID}); err == nil && emails[k.UserID] != "" {
		owner = emails[k.UserID]
	}
	if k.UserID == p.UserID {
		owner = "You"
	}
	exp, _ := expiry(u.now(), k.ExpiresAt)
	d := keyEditPage{page: u.pageFor(c, "Edit key", ""), Hash: k.Hash, Label: keyLabel(k), Name: k.KeyName, Owner: owner,
		Expires: exp, Blocked: k.Blocked, CanBlock: p.Can(rbac.PermKeyWriteAny),
		Form:     editForm{Alias: k.Alias, Models: strings.Join(k.Models, ", "), Budget: budgetField(k.MaxBudget)},
		Expiries: keepExpiry(exp, "")}
	step := confirmStep{ID: domID("regenerate-", k.Hash), Action: "/ui/keys/regenerate", Button: "Regenerate", CSRF: d.CSRF,
		Fields: fields("key", k.Hash), Title: "Regenerate this key?", Before: "Give ", Subject: keyLabel(k),
		After: " a new value? The current value stops working at once; the new one is shown once.", Yes: "Yes, regenerate", Danger: true}
	d.Regenerate = &step
	return d, k, nil
}

// keepExpiry offers the expiry choices with "keep as it is" first.
func keepExpiry(current, selected string) []option {
	opts := append([]option{{Value: "", Label: "Keep (" + current + ")"}}, expiryOptions(selected)...)
	opts[0].Selected = selected == ""
	return opts
}

func (u *UI) keyEditPage(c *gin.Context) error {
	d, _, err := u.keyEditData(c, c.Query("key"))
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.keyEdit(w, d) })
}

func (u *UI) keyEditSubmit(c *gin.Context) error {
	p := principalOf(c)
	d, k, err := u.keyEditData(c, c.PostForm("key"))
	if err != nil {
		return err
	}
	form := editForm{Alias: strings.TrimSpace(c.PostForm("alias")), Models: c.PostForm("models"), Budget: c.PostForm("max_budget"),
		Duration: c.PostForm("duration")}
	err = func() error {
		b, err := editBudget(form.Budget, k.MaxBudget)
		if err != nil {
			return err
		}
		req := service.KeyRequest{KeyAlias: &form.Alias, Models: splitList(form.Models), MaxBudget: b}
		if req.Models == nil {
			req.Models = []string{} // empty: every model the owner may use
		}
		switch form.Duration {
		case "":
		case "never":
			never := ""
			req.Duration = &never
		default:
			req.Duration = &form.Duration
		}
		_, err = u.svc.UpdateKey(ctxOf(c), p, k.Hash, req)
		return err
	}()
	if err != nil {
		status, msg, ok := formMessage(err, k.UserID == p.UserID)
		if !ok {
			return err
		}
		d.Form, d.FormError, d.Expiries = form, msg, keepExpiry(d.Expires, form.Duration)
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.keyEdit(w, d) })
	}
	return u.redirect(c, "/ui/keys/edit?key="+url.QueryEscape(k.Hash), "Saved the changes to “"+keyLabelOr(form.Alias, k)+"”.")
}

func keyLabelOr(alias string, k store.Key) string {
	if alias != "" {
		return alias
	}
	return k.KeyName
}

// regenerateKey gives a key a new value, shown once (like a new key).
func (u *UI) regenerateKey(c *gin.Context) error {
	p := principalOf(c)
	d, k, err := u.keyEditData(c, c.PostForm("key"))
	if err != nil {
		return err
	}
	if ok, err := u.confirmed(c, *d.Regenerate, "/ui/keys/edit?key="+url.QueryEscape(k.Hash)); !ok {
		return err
	}
	ik, err := u.svc.RegenerateKey(ctxOf(c), p, k.Hash, service.KeyRequest{})
	if err != nil {
		return err
	}
	noStore(c)
	exp, _ := expiry(u.now(), ik.Key.ExpiresAt)
	kd := keyCreatedPage{page: u.pageFor(c, "Key regenerated", "/ui/"), Key: ik.Raw, Name: ik.Key.KeyName, Alias: ik.Key.Alias,
		Expires: exp, Models: joinList(ik.Key.Models, "All models its owner may use")}
	if ik.Key.MaxBudget != nil {
		kd.Budget = money(*ik.Key.MaxBudget)
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.keyCreated(w, kd) })
}

func (u *UI) blockKey(c *gin.Context) error {
	ref, block := c.PostForm("key"), c.PostForm("blocked") == "true"
	back := "/ui/keys/edit?key=" + url.QueryEscape(ref)
	k, err := u.svc.SetKeyBlocked(ctxOf(c), principalOf(c), ref, block)
	if err != nil {
		return u.redirectError(c, back, err)
	}
	msg := "“" + keyLabel(k) + "” is unblocked: it works again."
	if block {
		msg = "“" + keyLabel(k) + "” is blocked: its requests are refused until it is unblocked."
	}
	return u.redirect(c, back, msg)
}

// ---- users ----

func (u *UI) userEditData(c *gin.Context, id string) (userEditPage, store.User, error) {
	p := principalOf(c)
	if id == "" {
		return userEditPage{}, store.User{}, apperr.InvalidParam("user_id", "No user was named.")
	}
	det, err := u.svc.GetUser(ctxOf(c), p, id)
	if err != nil {
		return userEditPage{}, store.User{}, err
	}
	us := det.User
	email := us.Email
	if email == "" {
		email = us.ID
	}
	d := userEditPage{page: u.pageFor(c, "Edit user", "/ui/users"), ID: us.ID, Email: email, Self: us.ID == p.UserID,
		Roles: roleOptions(us.Role),
		Form:  editForm{Alias: us.Alias, Role: us.Role, Models: strings.Join(us.Models, ", "), Budget: budgetField(us.MaxBudget), Blocked: us.Disabled}}
	return d, us, nil
}

func (u *UI) userEditPage(c *gin.Context) error {
	d, _, err := u.userEditData(c, c.Query("id"))
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.userEdit(w, d) })
}

func (u *UI) userEditSubmit(c *gin.Context) error {
	p := principalOf(c)
	d, us, err := u.userEditData(c, c.PostForm("user_id"))
	if err != nil {
		return err
	}
	form := editForm{Alias: strings.TrimSpace(c.PostForm("alias")), Role: c.PostForm("role"), Models: c.PostForm("models"),
		Budget: c.PostForm("max_budget"), Blocked: c.PostForm("blocked") == "on"}
	err = func() error {
		if us.ID == p.UserID && form.Blocked {
			return apperr.InvalidParam("blocked", "You cannot block your own account while signed in with it.")
		}
		b, err := editBudget(form.Budget, us.MaxBudget)
		if err != nil {
			return err
		}
		in := service.UserUpdate{UserID: &us.ID, UserAlias: &form.Alias, UserRole: &form.Role, Models: splitList(form.Models),
			MaxBudget: b, Disabled: &form.Blocked}
		if in.Models == nil {
			in.Models = []string{} // empty: every model
		}
		_, err = u.svc.UpdateUser(ctxOf(c), p, in)
		return err
	}()
	if err != nil {
		status, msg, ok := formMessage(err, false)
		if !ok {
			return err
		}
		d.Form, d.FormError, d.Roles = form, msg, roleOptions(form.Role)
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.userEdit(w, d) })
	}
	return u.redirect(c, "/ui/users", "Saved the changes to "+d.Email+".")
}

// ---- teams ----

func (u *UI) teamEditData(c *gin.Context, id string) (teamEditPage, store.Team, error) {
	if id == "" {
		return teamEditPage{}, store.Team{}, apperr.InvalidParam("team_id", "No team was named.")
	}
	td, err := u.svc.GetTeam(ctxOf(c), principalOf(c), id)
	if err != nil {
		return teamEditPage{}, store.Team{}, err
	}
	t := td.Team
	name := t.Alias
	if name == "" {
		name = t.ID
	}
	d := teamEditPage{page: u.pageFor(c, "Edit team", "/ui/teams"), ID: t.ID, Name: name,
		Form: editForm{Alias: t.Alias, Models: strings.Join(t.Models, ", "), Budget: budgetField(t.MaxBudget), Blocked: t.Blocked}}
	return d, t, nil
}

func (u *UI) teamEditPage(c *gin.Context) error {
	d, _, err := u.teamEditData(c, c.Query("id"))
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.teamEdit(w, d) })
}

func (u *UI) teamEditSubmit(c *gin.Context) error {
	d, t, err := u.teamEditData(c, c.PostForm("team_id"))
	if err != nil {
		return err
	}
	form := editForm{Alias: strings.TrimSpace(c.PostForm("alias")), Models: c.PostForm("models"), Budget: c.PostForm("max_budget"),
		Blocked: c.PostForm("blocked") == "on"}
	err = func() error {
		if form.Alias == "" {
			return apperr.InvalidParam("alias", "Enter a name for the team.")
		}
		b, err := editBudget(form.Budget, t.MaxBudget)
		if err != nil {
			return err
		}
		in := service.TeamUpdate{TeamID: t.ID, TeamAlias: &form.Alias, Models: splitList(form.Models), MaxBudget: b, Blocked: &form.Blocked}
		if in.Models == nil {
			in.Models = []string{}
		}
		_, err = u.svc.UpdateTeam(ctxOf(c), principalOf(c), in)
		return err
	}()
	if err != nil {
		status, msg, ok := formMessage(err, false)
		if !ok {
			return err
		}
		d.Form, d.FormError = form, msg
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.teamEdit(w, d) })
	}
	return u.redirect(c, "/ui/teams", "Saved the changes to team “"+form.Alias+"”.")
}

// updateMember changes a member's role in the team and their budget in it.
func (u *UI) updateMember(c *gin.Context) error {
	in := service.MemberChange{TeamID: c.PostForm("team_id"), UserID: c.PostForm("user_id"), Role: c.PostForm("role")}
	b, err := parseBudget("max_budget_in_team", c.PostForm("max_budget_in_team"))
	if err != nil {
		return u.redirectError(c, "/ui/teams", err)
	}
	in.MaxBudgetInTeam = b
	if _, err := u.svc.UpdateMember(ctxOf(c), principalOf(c), in); err != nil {
		return u.redirectError(c, "/ui/teams", err)
	}
	return u.redirect(c, "/ui/teams", "Saved the member's role and budget in the team.")
}

// ---- invitations ----

func invitationRevokeStep(id, who string) confirmStep {
	return confirmStep{ID: domID("revoke-", id), Action: "/ui/invitations/revoke", Button: "Revoke", Danger: true,
		Fields: fields("id", id, "who", who), Title: "Revoke this invitation?", Before: "Revoke the invitation of ", Subject: who,
		After: "? Its link stops working at once; the user stays, without a way to sign in until you send a new link.", Yes: "Yes, revoke"}
}

func (u *UI) revokeInvitation(c *gin.Context) error {
	p := principalOf(c)
	id := c.PostForm("id")
	if id == "" {
		return u.redirectError(c, "/ui/invitations", apperr.InvalidParam("id", "No invitation was named."))
	}
	who := c.PostForm("who")
	if who == "" {
		who = "this user"
	}
	if ok, err := u.confirmed(c, invitationRevokeStep(id, who), "/ui/invitations"); !ok {
		return err
	}
	if _, err := u.svc.RevokeInvitation(ctxOf(c), p, id); err != nil {
		return u.redirectError(c, "/ui/invitations", err)
	}
	return u.redirect(c, "/ui/invitations", "The invitation was revoked; its link no longer works.")
}
