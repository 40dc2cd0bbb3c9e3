package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
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
	return service.WithRequestMeta(c.Request.Context(), service.RequestMeta{ClientIP: c.ClientIP(),
		RequestID: httperr.RequestID(c), Base: requestBase(c)})
}

// requestBase is the scheme://host the browser used, for links when
// PROXY_BASE_URL is not set.
func requestBase(c *gin.Context) string {
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

// sessionOf resolves the session cookie. Only a login session counts: the
// UI never accepts an API key, even one planted in the cookie. An expired
// token of a live session is renewed, as the API does.
func (u *UI) sessionOf(c *gin.Context) (auth.Principal, error) {
	ck, err := c.Cookie(u.opts.CookieName)
	if err != nil || ck == "" {
		return auth.Principal{}, auth.ErrNoCredential
	}
	p, err := u.opts.Authenticator.Authenticate(c.Request.Context(), auth.Credential{Secret: ck, FromCookie: true})
	if err != nil && errors.Is(err, auth.ErrExpired) {
		p, err = u.refresh(c, ck)
	}
	if err != nil {
		return auth.Principal{}, err
	}
	if p.Method != auth.MethodSession || p.SessionID == "" {
		return auth.Principal{}, auth.ErrInvalid
	}
	return p, nil
}

func (u *UI) refresh(c *gin.Context, token string) (auth.Principal, error) {
	if u.opts.Refresher == nil {
		return auth.Principal{}, auth.ErrExpired
	}
	p, err := u.opts.Refresher.Refreshable(c.Request.Context(), token)
	if err != nil {
		return auth.Principal{}, err
	}
	tok, _, err := u.svc.RefreshToken(c.Request.Context(), p)
	if err != nil {
		return auth.Principal{}, err
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: u.opts.CookieName, Value: tok, Path: "/", HttpOnly: true,
		Secure: u.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
	return p, nil
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

// safeNext accepts only a path inside the UI as a post-login target, so
// the login form is no open redirect.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	if u, err := url.Parse(next); err != nil || u.IsAbs() || u.Host != "" {
		return "/ui/"
	}
	return next
}

// signIn sets the session cookies of a new session.
func (u *UI) signIn(c *gin.Context, res service.LoginResult) {
	for _, ck := range auth.SessionCookies(u.opts.CookieName, res.Token, auth.CSRFToken(u.opts.CSRFKey, res.Session.ID),
		res.Session.ExpiresAt, u.opts.SecureCookies) {
		http.SetCookie(c.Writer, ck)
	}
}
