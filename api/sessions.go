package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
)

// SessionOps is what the session routes need.
type SessionOps interface {
	Logout(ctx context.Context, p auth.Principal) (bool, error)
	RefreshToken(ctx context.Context, p auth.Principal) (string, time.Time, error)
	ChangePassword(ctx context.Context, p auth.Principal, in service.PasswordChange) error
}

// SessionConfig configures the SSO flow cookie and the published
// verification keys. Everything else about browser sessions is
// Options.Web's.
type SessionConfig struct {
	// Secure marks the SSO flow cookie Secure (TLS or https base URL).
	Secure bool
	// Issuer and JWKS publish the session-token verification keys.
	Issuer string
	JWKS   func(ctx context.Context) any
}

// loginForm is POST /login: LiteLLM's form login, answering 303 to /ui/
// with the session cookie. A cross-site post is refused (login CSRF).
func (s *Server) loginForm(c *gin.Context) error {
	in := service.LoginInput{Username: c.PostForm("username"), Password: c.PostForm("password"), OTP: c.PostForm("otp"),
		ClientIP: c.ClientIP()}
	if _, err := s.opts.Web.Login(ctxOf(c), c.Writer, c.Request, in); err != nil {
		return signInError(c, err)
	}
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
	res, err := s.opts.Web.Login(ctxOf(c), c.Writer, c.Request, in)
	if err != nil {
		return signInError(c, err)
	}
	s.loginAnswer(c, res)
	return nil
}

// answerLogin sets the session cookies and answers with the token, for
// the routes that sign someone in after spending a link.
func (s *Server) answerLogin(c *gin.Context, res service.LoginResult) {
	s.opts.Web.Start(c.Writer, res)
	s.loginAnswer(c, res)
}

func (s *Server) loginAnswer(c *gin.Context, res service.LoginResult) {
	noStore(c)
	c.JSON(http.StatusOK, s.loginBody(res))
}

func (s *Server) loginBody(res service.LoginResult) gin.H {
	amr := res.Session.AMR
	if amr == nil {
		amr = []string{}
	}
	return gin.H{"token": res.Token, "token_type": "Bearer", "expires_at": res.TokenExpires,
		"session_expires_at": res.Session.ExpiresAt, "user_id": res.User.ID, "user_email": strPtr(res.User.Email),
		"user_role": res.User.Role, "login_method": res.Session.LoginMethod, "amr": amr, "csrf_token": s.opts.Web.CSRFToken(res.Session.ID),
		"redirect_url": "/ui/?login=success"}
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
// presenting session and clears the cookies.
func (s *Server) sessionLogout(c *gin.Context) error {
	revoked, err := s.opts.Sessions.Logout(ctxOf(c), PrincipalOf(c))
	if err != nil {
		return err
	}
	s.opts.Web.Clear(c.Writer)
	msg := "Session revoked."
	if !revoked {
		msg = "Session already revoked."
	}
	c.JSON(http.StatusOK, gin.H{"message": msg})
	return nil
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
			"sid", "email", "role", "login_method", "amr", "groups", "scope"}})
	return nil
}
