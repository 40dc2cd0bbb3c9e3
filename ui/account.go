package ui

import (
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

func (u *UI) passwordPage(c *gin.Context) error {
	d := passwordPage{page: u.pageFor(c, "Change password", "")}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.password(w, d) })
}

// passwordSubmit changes the password; the service signs out every other
// session of the user, this one stays.
func (u *UI) passwordSubmit(c *gin.Context) error {
	in := service.PasswordChange{CurrentPassword: c.PostForm("current"), NewPassword: c.PostForm("password")}
	var err error
	if in.NewPassword != c.PostForm("confirm") {
		err = apperr.InvalidParam("confirm", "The two new passwords do not match.")
	} else {
		err = u.svc.ChangePassword(ctxOf(c), principalOf(c), in)
	}
	if err != nil {
		status, msg, ok := publicError(err)
		if !ok {
			return err
		}
		d := passwordPage{page: u.pageFor(c, "Change password", ""), Error: msg}
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.password(w, d) })
	}
	return u.redirect(c, "/ui/", "Password changed. Your other sessions were signed out.")
}

const auditPerPage = 50

// audit lists the audit log newest first, a full page at a time
// (admins and admin viewers), filtered by action and by actor (e-mail,
// as the table shows it, or id).
func (u *UI) audit(c *gin.Context) error {
	p := principalOf(c)
	if !p.Can(rbac.PermReadAll) {
		return apperr.Forbidden("Only admins can see the audit log.")
	}
	pg := pageParam(c.Query("page"))
	q := service.AuditQuery{Action: strings.TrimSpace(c.Query("action")), Actor: strings.TrimSpace(c.Query("actor")), Page: pg,
		Size: auditPerPage, NewestFirst: true}
	events, total, err := u.svc.ListAudit(ctxOf(c), p, q)
	if err != nil {
		return err
	}
	d := auditPage{page: u.pageFor(c, "Audit log", "/ui/audit"), Action: q.Action, Actor: q.Actor,
		Pager: pagerFor("/ui/audit", c.Request.URL.Query(), pg, auditPerPage, total)}
	var ids []string
	for _, e := range events {
		ids = append(ids, e.ActorID)
		if e.TargetType == "user" {
			ids = append(ids, e.TargetID)
		}
	}
	emails, err := u.emails(c, p, dedupe(ids))
	if err != nil {
		return err
	}
	for _, e := range events {
		target := e.TargetType
		if e.TargetID != "" {
			target += " " + nameOr(emails, shortID(e.TargetID), e.TargetID)
		}
		d.Rows = append(d.Rows, auditRow{ID: e.ID, When: when(e.At), Action: e.Action, Actor: nameOr(emails, actorLabel(e.ActorID), e.ActorID),
			Role: e.ActorRole, Target: target, IP: e.ClientIP})
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.audit(w, d) })
}

// nameOr is the e-mail of user id, else fallback.
func nameOr(emails map[string]string, fallback, id string) string {
	if e := emails[id]; e != "" {
		return e
	}
	return fallback
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if id != "" && !seen[id] && len(id) <= 255 {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > 100 {
		out = out[:100]
	}
	return out
}

// shortID shortens the hashes and UUIDs that audit targets often are.
func shortID(id string) string {
	if len(id) > 24 {
		return id[:12] + "…"
	}
	return id
}

// logoutPage (GET /ui/logout) asks before signing out: a GET must not
// end a session, or any link or image on any site could. Without a live
// session there is nothing to end; the leftover cookies are cleared and
// the browser moves on.
func (u *UI) logoutPage(c *gin.Context) error {
	redirect := c.Query("redirect")
	p, ok := u.opts.Web.LoggedIn(ctxOf(c), c.Request)
	if !ok {
		u.opts.Web.Clear(c.Writer)
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, u.opts.Web.LogoutTarget(redirect))
		return nil
	}
	c.Set(principalKey, p)
	noStore(c)
	d := logoutPage{page: u.basePage(c, "Sign out"), Redirect: redirect}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.logout(w, d) })
}

// logoutSubmit (POST /ui/logout) signs out: websession checks the
// session's CSRF token and the origin, revokes the session (and ends an
// SSO session at the provider) and names where to go next.
func (u *UI) logoutSubmit(c *gin.Context) error {
	redirect := c.PostForm("redirect")
	if redirect == "" {
		redirect = c.Query("redirect")
	}
	target, err := u.opts.Web.Logout(ctxOf(c), c.Writer, c.Request, redirect)
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, target)
	return nil
}
