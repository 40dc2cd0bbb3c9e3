package ui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/httperr"
)

// assets holds the page templates and the static files (one stylesheet,
// one small script, the icon). Everything ships inside the binary.
//
//go:embed templates/*.html static/*
var assets embed.FS

// Page names; each is templates/<name>.html defining "content", rendered
// inside templates/layout.html.
const (
	pageLogin       = "login"
	pageSetPassword = "setpassword"
	pageLinkGone    = "linkgone"
	pageForgot      = "forgot"
	pageKeys        = "keys"
	pageKeyCreated  = "keycreated"
	pageSpend       = "spend"
	pageUsers       = "users"
	pageInviteLink  = "invitelink"
	pageInvitations = "invitations"
	pageTeams       = "teams"
	pagePassword    = "password"
	pageAudit       = "audit"
	pageSCIM        = "scim"
	pageError       = "error"
	pageLogout      = "logout"
	pageMFAStep     = "mfastep"
	pageTOTPSetup   = "totpsetup"
	pageCodes       = "recoverycodes"
	pageSecurity    = "security"
	pageConfirm     = "confirm"
	pageUserEdit    = "useredit"
	pageKeyEdit     = "keyedit"
	pageTeamEdit    = "teamedit"
	pageResetLink   = "resetlink"
)

func pageNames() []string {
	return []string{pageLogin, pageSetPassword, pageLinkGone, pageForgot, pageKeys, pageKeyCreated, pageSpend, pageUsers,
		pageInviteLink, pageInvitations, pageTeams, pagePassword, pageAudit, pageError, pageSCIM, pageLogout,
		pageMFAStep, pageTOTPSetup, pageCodes, pageSecurity, pageConfirm, pageUserEdit, pageKeyEdit, pageTeamEdit,
		pageResetLink}
}

// templates is the page set: one template tree per page, each made of the
// shared layout plus the page's own file. A page is parsed when it is
// first rendered: the whole set is 1.5 MiB of live heap and ~7 ms of
// start-up, and a server that only answers /auth/verify never shows a page
// (bench/README.md, "Idle memory"). Every page file must exist at start;
// the tests parse every page, so a broken one fails the build's tests.
type templates struct {
	fsys  fs.FS
	pages map[string]*lazyPage
}

type lazyPage struct {
	once sync.Once
	tp   *template.Template
	err  error
}

func parseTemplates() (*templates, error) {
	return parseTemplatesFS(assets)
}

// parseTemplatesFS checks that the layout and every page's file are in
// fsys; parsing waits for each page's first use.
func parseTemplatesFS(fsys fs.FS) (*templates, error) {
	t := &templates{fsys: fsys, pages: map[string]*lazyPage{}}
	if _, err := fs.Stat(fsys, "templates/layout.html"); err != nil {
		return nil, fmt.Errorf("ui: template layout: %w", err)
	}
	for _, name := range pageNames() {
		if _, err := fs.Stat(fsys, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		t.pages[name] = &lazyPage{}
	}
	return t, nil
}

// parseAll parses every page now (tests).
func (t *templates) parseAll() error {
	for _, name := range pageNames() {
		if _, err := t.page(name); err != nil {
			return err
		}
	}
	return nil
}

func (t *templates) page(name string) (*template.Template, error) {
	p, ok := t.pages[name]
	if !ok {
		return nil, fmt.Errorf("ui: no template %q", name)
	}
	p.once.Do(func() { p.tp, p.err = parsePage(t.fsys, name) })
	return p.tp, p.err
}

func parsePage(fsys fs.FS, name string) (*template.Template, error) {
	tp, err := template.New("layout.html").Funcs(funcs()).ParseFS(fsys, "templates/layout.html", "templates/"+name+".html")
	if err != nil {
		return nil, fmt.Errorf("ui: template %s: %w", name, err)
	}
	if tp.Lookup("content") == nil {
		return nil, fmt.Errorf("ui: template %s defines no \"content\"", name)
	}
	return tp, nil
}

// funcs is empty on purpose: pages receive display-ready strings, so
// templates stay free of logic.
func funcs() template.FuncMap { return template.FuncMap{} }

func (t *templates) exec(w io.Writer, name string, data any) error {
	tp, err := t.page(name)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tp.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("ui: render %s: %w", name, err)
	}
	_, err = buf.WriteTo(w)
	return err
}

// One typed method per page: a page can only be rendered with its own data.

func (t *templates) login(w io.Writer, d loginPage) error { return t.exec(w, pageLogin, d) }
func (t *templates) setPassword(w io.Writer, d setPasswordPage) error {
	return t.exec(w, pageSetPassword, d)
}
func (t *templates) linkGone(w io.Writer, d messagePage) error { return t.exec(w, pageLinkGone, d) }
func (t *templates) forgot(w io.Writer, d forgotPage) error    { return t.exec(w, pageForgot, d) }
func (t *templates) keys(w io.Writer, d keysPage) error        { return t.exec(w, pageKeys, d) }
func (t *templates) keyCreated(w io.Writer, d keyCreatedPage) error {
	return t.exec(w, pageKeyCreated, d)
}
func (t *templates) spend(w io.Writer, d spendPage) error { return t.exec(w, pageSpend, d) }
func (t *templates) users(w io.Writer, d usersPage) error { return t.exec(w, pageUsers, d) }
func (t *templates) inviteLink(w io.Writer, d inviteLinkPage) error {
	return t.exec(w, pageInviteLink, d)
}
func (t *templates) invitations(w io.Writer, d invitationsPage) error {
	return t.exec(w, pageInvitations, d)
}
func (t *templates) teams(w io.Writer, d teamsPage) error       { return t.exec(w, pageTeams, d) }
func (t *templates) password(w io.Writer, d passwordPage) error { return t.exec(w, pagePassword, d) }
func (t *templates) audit(w io.Writer, d auditPage) error       { return t.exec(w, pageAudit, d) }
func (t *templates) errorPage(w io.Writer, d messagePage) error { return t.exec(w, pageError, d) }
func (t *templates) scim(w io.Writer, d scimPage) error         { return t.exec(w, pageSCIM, d) }
func (t *templates) logout(w io.Writer, d logoutPage) error     { return t.exec(w, pageLogout, d) }
func (t *templates) mfaStep(w io.Writer, d mfaStepPage) error   { return t.exec(w, pageMFAStep, d) }
func (t *templates) totpSetup(w io.Writer, d totpSetupPage) error {
	return t.exec(w, pageTOTPSetup, d)
}
func (t *templates) recoveryCodes(w io.Writer, d recoveryCodesPage) error {
	return t.exec(w, pageCodes, d)
}
func (t *templates) security(w io.Writer, d securityPage) error { return t.exec(w, pageSecurity, d) }
func (t *templates) resetLink(w io.Writer, d resetLinkPage) error {
	return t.exec(w, pageResetLink, d)
}

// write renders a page into a buffer first and sends it only when
// rendering succeeded, so a template error never leaves half a page.
func (u *UI) write(c *gin.Context, status int, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(status)
	_, err := buf.WriteTo(c.Writer)
	if err != nil {
		// The client went away; nothing more to send.
		httperr.Logger(c).Debug("ui: write page", "err", err)
	}
	return nil
}

// fail renders err as an error page. Only an *apperr.Error's public
// message is shown; anything else is logged and shown as a generic error.
func (u *UI) fail(c *gin.Context, err error) {
	err = httperr.NotByClient(c.Request.Context(), err)
	status, _, msg, _, retry := httperr.Resolve(err)
	log := httperr.Logger(c)
	if _, public := apperr.As(err); !public && status < 500 {
		// Resolve mapped a sentinel; keep its generic wording.
		log.Debug("ui: request rejected", "status", status, "err", err)
	} else if httperr.ServerFault(status, err) {
		log.Error("ui: request failed", "status", status, "err", err)
	}
	if retry > 0 {
		c.Header("Retry-After", strconv.Itoa(retry))
	}
	d := messagePage{page: u.basePage(c, "Something went wrong"), Status: status, Heading: statusHeading(status), Message: msg}
	if rerr := u.write(c, status, func(w io.Writer) error { return u.tmpl.errorPage(w, d) }); rerr != nil {
		log.Error("ui: render error page", "err", errors.Join(err, rerr))
		c.String(http.StatusInternalServerError, "Internal server error.")
	}
	c.Abort()
}

func statusHeading(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "That did not work"
	case http.StatusUnauthorized:
		return "Please sign in"
	case http.StatusForbidden:
		return "Not allowed"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusConflict:
		return "Already exists"
	case http.StatusTooManyRequests:
		return "Too many attempts"
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable"
	}
	return "Something went wrong"
}

// static serves the embedded stylesheet, script and icon; nothing else
// (no directory listings).
func (u *UI) static(c *gin.Context) {
	name := "static/" + c.Param("file")[1:]
	b, err := fs.ReadFile(assets, name)
	if err != nil || c.Param("file") == "/" {
		c.String(http.StatusNotFound, "Not found.")
		return
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, contentType(name), b)
}

func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".svg"):
		return "image/svg+xml"
	}
	return "application/octet-stream"
}
