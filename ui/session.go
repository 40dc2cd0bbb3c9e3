package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/websession"
)

const principalKey = "keygate.ui.principal"

func principalOf(c *gin.Context) auth.Principal {
	v, _ := c.Get(principalKey)
	p, _ := v.(auth.Principal)
	return p
}

// ctxOf carries the request's client IP and id into the service layer,
// which records them in the audit log.
func ctxOf(c *gin.Context) context.Context {
	return service.WithRequestMeta(c.Request.Context(), service.RequestMeta{ClientIP: c.ClientIP(), RequestID: httperr.RequestID(c)})
}

// sessionOf resolves the browser's session (websession renews an expired
// token through its refresh cookie).
func (u *UI) sessionOf(c *gin.Context) (auth.Principal, error) {
	return u.opts.Web.Session(ctxOf(c), c.Writer, c.Request)
}

// requireSession lets signed-in browsers through and sends everyone else
// to the login page (303, remembering where they were going on a GET).
// A database outage is an error page, never a silent sign-out.
func (u *UI) requireSession(c *gin.Context) {
	p, err := u.sessionOf(c)
	if err != nil {
		if errors.Is(err, auth.ErrUnavailable) {
			u.fail(c, err)
			return
		}
		to := "/ui/login"
		if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/ui/" {
			to += "?next=" + url.QueryEscape(c.Request.URL.RequestURI())
		}
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, to)
		c.Abort()
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// safeNext accepts only a path inside the UI that browsers keep on this
// origin (websession.LocalPath) as a post-login or post-action target,
// so no form is an open redirect.
func safeNext(next string) string {
	if p, ok := websession.UIPath(next); ok {
		return p
	}
	return "/ui/"
}

// signIn sets the session cookies of a new session.
func (u *UI) signIn(c *gin.Context, res service.LoginResult) {
	u.opts.Web.Start(c.Writer, res)
}
