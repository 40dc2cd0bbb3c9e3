package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// SessionOps is what the login routes need.
type SessionOps interface {
	Login(ctx context.Context, in service.LoginInput) (service.LoginResult, error)
	Logout(ctx context.Context, p auth.Principal) (bool, error)
	RevokeSessionByID(ctx context.Context, userID, sid string) (store.Session, bool, error)
	RefreshToken(ctx context.Context, p auth.Principal) (string, time.Time, error)
	ChangePassword(ctx context.Context, p auth.Principal, in service.PasswordChange) error
}

// Refresher resolves an expired session token whose session still lives
// (auth.SessionAuthenticator.Refreshable).
type Refresher interface {
	Refreshable(ctx context.Context, token string) (auth.Principal, error)
}

// SessionConfig configures cookies, CSRF and logout redirects.
type SessionConfig struct {
	CookieName string // default "keygate_session"
	// Secure marks cookies Secure (set when served over TLS or behind an
	// https PROXY_BASE_URL).
	Secure bool
	// CSRFKey derives each session's CSRF token (HMAC of the session id).
	CSRFKey []byte
	// LogoutURL is where /ui/logout sends the browser (PROXY_LOGOUT_URL);
	// empty: the login page.
	LogoutURL string
	// LogoutAllowlist lists absolute URL prefixes a ?redirect= may name.
	LogoutAllowlist []string
	// Issuer and JWKS publish the session-token verification keys.
	Issuer string
	JWKS   func(ctx context.Context) any
	// Refresher lets a browser whose short-lived token expired keep its
	// live session.
	Refresher Refresher
}

// checkCSRF implements Options.CSRF for cookie sessions.
func (s *Server) checkCSRF(c *gin.Context, p auth.Principal) error {
	got := c.GetHeader(auth.CSRFHeader)
	if got == "" {
		got = c.PostForm(auth.CSRFField)
	}
	if !auth.CSRFValid(s.sess.CSRFKey, p.SessionID, got) {
		return errCSRF
	}
	return nil
}

func (s *Server) setSessionCookies(c *gin.Context, res service.LoginResult) {
	for _, ck := range auth.SessionCookies(s.sess.CookieName, res.Token, auth.CSRFToken(s.sess.CSRFKey, res.Session.ID), res.Session.ExpiresAt, s.sess.Secure) {
		http.SetCookie(c.Writer, ck)
	}
}

func (s *Server) clearSessionCookies(c *gin.Context) {
	for _, ck := range auth.ClearCookies(s.sess.CookieName, s.sess.Secure) {
		http.SetCookie(c.Writer, ck)
	}
}

// loginForm is POST /login: LiteLLM's form login, answering 303 to /ui/
// with the session cookie.
func (s *Server) loginForm(c *gin.Context) error {
	in := service.LoginInput{Username: c.PostForm("username"), Password: c.PostForm("password"), ClientIP: c.ClientIP()}
	res, err := s.opts.Sessions.Login(ctxOf(c), in)
	if err != nil {
		return err
	}
	s.setSessionCookies(c, res)
	c.Redirect(http.StatusSeeOther, "/ui/?login=success")
	return nil
}

// loginJSON is POST /v2/login: the same checks, a JSON answer carrying the
// token for API clients, and the cookie for browsers.
func (s *Server) loginJSON(c *gin.Context) error {
	var in service.LoginInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	in.ClientIP = c.ClientIP()
	res, err := s.opts.Sessions.Login(ctxOf(c), in)
	if err != nil {
		return err
	}
	s.answerLogin(c, res)
	return nil
}

// answerLogin sets the session cookies and answers with the token, for
// every route that signs someone in.
func (s *Server) answerLogin(c *gin.Context, res service.LoginResult) {
	s.setSessionCookies(c, res)
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"token": res.Token, "token_type": "Bearer", "expires_at": res.TokenExpires,
		"session_expires_at": res.Session.ExpiresAt, "user_id": res.User.ID, "user_email": strPtr(res.User.Email),
		"user_role": res.User.Role, "login_method": res.Session.LoginMethod, "csrf_token": auth.CSRFToken(s.sess.CSRFKey, res.Session.ID),
		"redirect_url": "/ui/?login=success"})
}

func (s *Server) sessionRefresh(c *gin.Context) error {
	tok, exp, err := s.opts.Sessions.RefreshToken(ctxOf(c), PrincipalOf(c))
	if err != nil {
		return err
	}
	noStore(c)
	c.JSON(http.StatusOK, gin.H{"token": tok, "token_type": "Bearer", "expires_at": exp})
	return nil
}

// sessionLogout is POST /session/logout (LiteLLM 2026): revokes the
// presenting session and clears the cookie.
func (s *Server) sessionLogout(c *gin.Context) error {
	revoked, err := s.opts.Sessions.Logout(ctxOf(c), PrincipalOf(c))
	if err != nil {
		return err
	}
	s.clearSessionCookies(c)
	msg := "Session revoked."
	if !revoked {
		msg = "Session already revoked."
	}
	c.JSON(http.StatusOK, gin.H{"message": msg})
	return nil
}

// uiLogout is GET|POST /ui/logout: revoke the cookie's session if any
// (even with an expired token), clear cookies, and redirect to
// PROXY_LOGOUT_URL, an allow-listed ?redirect=, or the login page. It is
// public so a stale cookie can always log out.
func (s *Server) uiLogout(c *gin.Context) error {
	target := s.logoutTarget(c.Query("redirect"))
	if ck, err := c.Cookie(s.sess.CookieName); err == nil && ck != "" && s.sess.Refresher != nil {
		if p, err := s.sess.Refresher.Refreshable(ctxOf(c), ck); err == nil {
			sess, _, err := s.opts.Sessions.RevokeSessionByID(ctxOf(c), p.UserID, p.SessionID)
			if err != nil {
				return err
			}
			// An SSO session also ends at the identity provider, which then
			// sends the browser on to the logout target.
			if u := s.ssoEndSession(sess, absoluteURL(c, target)); u != "" {
				target = u
			}
		}
	}
	s.clearSessionCookies(c)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, target)
	return nil
}

// absoluteURL makes a same-origin path absolute for the IdP's
// post_logout_redirect_uri.
func absoluteURL(c *gin.Context, target string) string {
	if strings.HasPrefix(target, "/") {
		return requestBase(c) + target
	}
	return target
}

// logoutTarget never follows a user-supplied URL unless it starts with an
// allow-listed prefix (no open redirect).
func (s *Server) logoutTarget(asked string) string {
	if asked != "" {
		if u, err := url.Parse(asked); err == nil && u.IsAbs() && (u.Scheme == "https" || u.Scheme == "http") {
			for _, prefix := range s.sess.LogoutAllowlist {
				if prefix != "" && strings.HasPrefix(asked, prefix) {
					return asked
				}
			}
		}
	}
	if s.sess.LogoutURL != "" {
		return s.sess.LogoutURL
	}
	return "/ui/login"
}

func (s *Server) passwordChange(c *gin.Context) error {
	var in service.PasswordChange
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p := PrincipalOf(c)
	if err := s.opts.Sessions.ChangePassword(ctxOf(c), p, in); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"user_id": p.UserID, "message": "Password changed; your other sessions were signed out."})
	return nil
}

func (s *Server) jwks(c *gin.Context) error {
	if s.sess.JWKS == nil {
		return apperr.NotFound("Session tokens are not enabled on this server.")
	}
	c.Header("Cache-Control", "public, max-age=60")
	c.JSON(http.StatusOK, s.sess.JWKS(c.Request.Context()))
	return nil
}

func (s *Server) openIDConfiguration(c *gin.Context) error {
	if s.sess.JWKS == nil {
		return apperr.NotFound("Session tokens are not enabled on this server.")
	}
	issuer := strings.TrimSuffix(s.sess.Issuer, "/")
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, gin.H{"issuer": s.sess.Issuer, "jwks_uri": issuer + "/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []string{"ES256", "RS256"}, "subject_types_supported": []string{"public"},
		"response_types_supported": []string{"id_token"}, "claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti",
			"sid", "email", "role", "login_method", "groups", "scope"}})
	return nil
}
