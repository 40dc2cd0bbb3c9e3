package ui

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

// SCIMOps is what the SCIM page needs.
type SCIMOps interface {
	SCIMStatus(ctx context.Context, p auth.Principal, n int) (service.SCIMOverview, error)
	CreateSCIMToken(ctx context.Context, p auth.Principal, name string) (service.IssuedKey, error)
	RotateSCIMToken(ctx context.Context, p auth.Principal, ref string) (service.IssuedKey, error)
	RevokeSCIMToken(ctx context.Context, p auth.Principal, ref string) error
}

// scimChanges is how many recent SCIM changes the page lists.
const scimChanges = 20

type scimPage struct {
	page
	BaseURL     string
	CanManage   bool
	Tokens      []scimTokenRow
	LastRequest string
	LastChange  string
	Changes     []auditRow
	// NewToken is shown once, after create or rotate.
	NewToken  string
	NewName   string
	FormError string
	FormName  string
}

type scimTokenRow struct {
	Hash, Alias, Name, Created, LastUsed string
	Blocked                              bool
	Rotate, Revoke                       *confirmStep
}

func scimRotateStep(hash, name string) confirmStep {
	return confirmStep{ID: domID("rotate-", hash), Action: "/ui/scim/tokens/rotate", Button: "Rotate", Fields: fields("key", hash, "label", name),
		Title: "Rotate this token?", Before: "Rotate ", Subject: name,
		After: "? The current token stops working at once; paste the new one into your identity provider.", Yes: "Yes, rotate"}
}

func scimRevokeStep(hash, name string) confirmStep {
	return confirmStep{ID: domID("revoke-", hash), Action: "/ui/scim/tokens/revoke", Button: "Revoke", Danger: true,
		Fields: fields("key", hash, "label", name), Title: "Revoke this token?", Before: "Revoke ", Subject: name,
		After: "? Provisioning with it stops at once.", Yes: "Yes, revoke"}
}

// scimBase is the URL an identity provider is given: from configuration
// only (PROXY_BASE_URL, else the address Keygate listens on), never from
// the request's Host.
func (u *UI) scimBase(_ *gin.Context) string {
	return strings.TrimRight(u.opts.BaseURL, "/") + "/scim/v2"
}

func (u *UI) scimData(c *gin.Context) (scimPage, error) {
	p := principalOf(c)
	if !p.Can(rbac.PermReadAll) {
		return scimPage{}, apperr.Forbidden("Only admins can see SCIM provisioning.")
	}
	o, err := u.svc.SCIMStatus(ctxOf(c), p, scimChanges)
	if err != nil {
		return scimPage{}, err
	}
	d := scimPage{page: u.pageFor(c, "SCIM provisioning", "/ui/scim"), BaseURL: u.scimBase(c),
		CanManage: p.Can(rbac.PermUserWrite) && p.Can(rbac.PermKeyWriteAny), LastRequest: "Never", LastChange: "Never"}
	if o.LastRequest != nil {
		d.LastRequest = when(*o.LastRequest)
	}
	if o.LastChange != nil {
		d.LastChange = when(*o.LastChange)
	}
	for _, k := range o.Tokens {
		row := scimTokenRow{Hash: k.Hash, Alias: k.Alias, Name: k.KeyName, Created: when(k.CreatedAt), LastUsed: "Never", Blocked: k.Blocked}
		if k.LastActive != nil {
			row.LastUsed = when(*k.LastActive)
		}
		if d.CanManage {
			rot, rev := scimRotateStep(k.Hash, k.Alias), scimRevokeStep(k.Hash, k.Alias)
			rot.CSRF, rev.CSRF = d.CSRF, d.CSRF
			row.Rotate, row.Revoke = &rot, &rev
		}
		d.Tokens = append(d.Tokens, row)
	}
	var ids []string
	for _, e := range o.Changes {
		if e.TargetType == "user" {
			ids = append(ids, e.TargetID)
		}
	}
	emails, err := u.emails(c, p, dedupe(ids))
	if err != nil {
		return scimPage{}, err
	}
	for _, e := range o.Changes {
		target := e.TargetType
		if e.TargetID != "" {
			target += " " + nameOr(emails, shortID(e.TargetID), e.TargetID)
		}
		actor := actorLabel(e.ActorID)
		if alias, _ := e.After["scim_key_alias"].(string); alias != "" {
			actor = alias
		}
		d.Changes = append(d.Changes, auditRow{When: when(e.At), Action: e.Action, Actor: actor, Target: target, IP: e.ClientIP})
	}
	return d, nil
}

func (u *UI) scim(c *gin.Context) error {
	d, err := u.scimData(c)
	if err != nil {
		return err
	}
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.scim(w, d) })
}

// scimShowToken renders the page with a token shown once.
func (u *UI) scimShowToken(c *gin.Context, ik service.IssuedKey) error {
	d, err := u.scimData(c)
	if err != nil {
		return err
	}
	noStore(c)
	d.NewToken, d.NewName = ik.Raw, ik.Key.Alias
	return u.write(c, http.StatusOK, func(w io.Writer) error { return u.tmpl.scim(w, d) })
}

func (u *UI) createSCIMToken(c *gin.Context) error {
	name := strings.TrimSpace(c.PostForm("name"))
	ik, err := u.svc.CreateSCIMToken(ctxOf(c), principalOf(c), name)
	if err != nil {
		status, msg, ok := publicError(err)
		if !ok || status == http.StatusForbidden {
			return err
		}
		d, lerr := u.scimData(c)
		if lerr != nil {
			return lerr
		}
		d.FormError, d.FormName = msg, name
		return u.write(c, status, func(w io.Writer) error { return u.tmpl.scim(w, d) })
	}
	return u.scimShowToken(c, ik)
}

func (u *UI) rotateSCIMToken(c *gin.Context) error {
	if ok, err := u.confirmed(c, scimRotateStep(c.PostForm("key"), c.PostForm("label")), "/ui/scim"); !ok {
		return err
	}
	ik, err := u.svc.RotateSCIMToken(ctxOf(c), principalOf(c), c.PostForm("key"))
	if err != nil {
		return u.redirectError(c, "/ui/scim", err)
	}
	return u.scimShowToken(c, ik)
}

func (u *UI) revokeSCIMToken(c *gin.Context) error {
	if ok, err := u.confirmed(c, scimRevokeStep(c.PostForm("key"), c.PostForm("label")), "/ui/scim"); !ok {
		return err
	}
	if err := u.svc.RevokeSCIMToken(ctxOf(c), principalOf(c), c.PostForm("key")); err != nil {
		return u.redirectError(c, "/ui/scim", err)
	}
	return u.redirect(c, "/ui/scim", "The SCIM token was revoked. The identity provider can no longer provision.")
}
