package api

import (
	"context"
	"crypto/rand"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/websession"
)

// SSOOps is what the SSO routes need from the service layer.
type SSOOps interface {
	SSOLogin(ctx context.Context, id sso.Identity, pol service.SSOPolicy) (service.LoginResult, error)
	ExplainSSORole(ctx context.Context, p auth.Principal, userID string) (map[string]any, error)
	BackchannelLogout(ctx context.Context, c sso.LogoutClaims) (int, error)
}

// SSOConfig holds the configured identity providers.
type SSOConfig struct {
	Providers []sso.Provider
	// Codec seals the short-lived flow cookie (state, nonce, PKCE verifier).
	Codec  *sso.StateCodec
	Policy service.SSOPolicy
	Now    func() time.Time
}

const flowCookie = "keygate_sso_flow"

func (s *Server) provider(name string) (sso.Provider, bool) {
	for _, p := range s.opts.SSO.Providers {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

func (s *Server) ssoNow() time.Time {
	if s.opts.SSO.Now != nil {
		return s.opts.SSO.Now()
	}
	return time.Now()
}

// ssoKeyGenerate is LiteLLM's entry point: with one provider it starts
// that provider's flow, with several it shows the login page's buttons.
func (s *Server) ssoKeyGenerate(c *gin.Context) error {
	switch len(s.opts.SSO.Providers) {
	case 0:
		c.Redirect(http.StatusSeeOther, "/ui/login")
	case 1:
		c.Redirect(http.StatusSeeOther, "/sso/login/"+s.opts.SSO.Providers[0].Name())
	default:
		c.Redirect(http.StatusSeeOther, "/ui/login")
	}
	return nil
}

// ssoLogin starts the code flow: fresh state, nonce and PKCE verifier,
// sealed in a short-lived HttpOnly cookie scoped to /sso/.
func (s *Server) ssoLogin(c *gin.Context) error {
	p, ok := s.provider(c.Param("provider"))
	if !ok || s.opts.SSO.Codec == nil {
		return apperr.NotFound("Unknown sign-in provider.")
	}
	returnTo, _ := websession.UIPath(c.Query("return_to"))
	fs, err := sso.NewFlow(rand.Reader, p.Name(), returnTo, s.ssoNow())
	if err != nil {
		return err
	}
	sealed, err := s.opts.SSO.Codec.Seal(fs)
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flowCookie, Value: sealed, Path: "/sso/", MaxAge: 600, HttpOnly: true,
		Secure: s.sess.Secure, SameSite: http.SameSiteLaxMode})
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, p.LoginURL(fs.State, fs.Nonce, fs.Verifier))
	return nil
}

var errFlow = apperr.Invalid("This sign-in attempt is invalid or has expired; start again from the login page.")

// ssoCallback finishes the flow: the state must match the sealed cookie,
// the code is exchanged with the PKCE verifier, the ID token (signature,
// issuer, audience, expiry, nonce) is verified by the provider, and the
// identity is linked and signed in.
func (s *Server) ssoCallback(c *gin.Context) error {
	raw, err := c.Cookie(flowCookie)
	if err != nil || s.opts.SSO.Codec == nil {
		return errFlow
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flowCookie, Value: "", Path: "/sso/", MaxAge: -1, HttpOnly: true, Secure: s.sess.Secure, SameSite: http.SameSiteLaxMode})
	fs, err := s.opts.SSO.Codec.Open(raw, s.ssoNow())
	if err != nil || !sso.StateMatches(fs, c.Query("state")) {
		return errFlow
	}
	if e := c.Query("error"); e != "" {
		return apperr.Unauthenticated("The identity provider refused the sign-in (%s).", truncateModel(e))
	}
	p, ok := s.provider(fs.Provider)
	if !ok {
		return errFlow
	}
	code := c.Query("code")
	if code == "" || len(code) > 4096 {
		return errFlow
	}
	id, err := p.Exchange(c.Request.Context(), code, fs.Verifier, fs.Nonce)
	if err != nil {
		return apperr.Unauthenticated("Sign-in with %s failed; try again.", p.DisplayName()).Wrap(err)
	}
	res, err := s.opts.SSOOps.SSOLogin(ctxOf(c), id, s.opts.SSO.Policy)
	if err != nil {
		return err
	}
	s.opts.Web.Start(c.Writer, res)
	// The sealed return_to was checked when the flow started; checked
	// again so a flow sealed by an older release cannot redirect away.
	target, ok := websession.UIPath(fs.ReturnTo)
	if !ok {
		target = "/ui/?login=success"
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, target)
	return nil
}

func (s *Server) ssoExplain(c *gin.Context) error {
	id, err := requireQuery(c, "user_id")
	if err != nil {
		return err
	}
	out, err := s.opts.SSOOps.ExplainSSORole(ctxOf(c), PrincipalOf(c), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// ssoBackchannelLogout receives an OpenID back-channel logout token (form
// field logout_token), verifies it against the provider that issued it and
// revokes the matching sessions. Answers per the spec: 200, or 400.
func (s *Server) ssoBackchannelLogout(c *gin.Context) error {
	tok := c.PostForm("logout_token")
	if tok == "" || len(tok) > 16<<10 {
		return apperr.InvalidParam("logout_token", "logout_token is required.")
	}
	var lastErr error
	for _, p := range s.opts.SSO.Providers {
		claims, err := p.VerifyLogoutToken(c.Request.Context(), tok)
		if err != nil {
			lastErr = err
			continue
		}
		if _, err := s.opts.SSOOps.BackchannelLogout(ctxOf(c), claims); err != nil {
			return err
		}
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusOK)
		return nil
	}
	e := apperr.Invalid("The logout token is not valid.")
	if lastErr != nil {
		e = e.Wrap(lastErr)
	}
	return e
}
