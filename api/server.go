// Package api serves Keygate's JSON API: the LiteLLM-compatible management
// routes (/user/*, /team/*, /key/*, ...), forward-auth (/auth/verify),
// JWKS and health. Every route is registered from one table (routes.go)
// that names its permission, so the table reads as the security policy and
// a test can walk it. Handlers decode JSON, call the service layer and
// encode the answer; they hold no business rules.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/httperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/websession"
	"github.com/keygate/keygate/rbac"
)

// Route is one entry of the route table.
type Route struct {
	Method string
	Path   string
	// Perm is required of the caller. Public routes have Perm "" and
	// Public true; a route with neither is a programming error that
	// Mount refuses and a test catches.
	Perm    rbac.Permission
	Public  bool
	Handler httperr.HandlerFunc
}

// Options configures the API.
type Options struct {
	Logger        *slog.Logger
	Authenticator auth.Authenticator
	// SessionCookie is the name of the session cookie accepted as a
	// credential (default websession.SessionCookie).
	SessionCookie string
	// Web is the browser session (internal/websession): it renews an
	// expired cookie token, guards cookie-authenticated writes (same
	// origin and CSRF token) and signs browsers in and out.
	Web *websession.Manager
	// Ready reports whether dependencies (the database) answer.
	Ready func(ctx context.Context) error
	// TrustedPeer reports whether a request comes straight from a trusted
	// reverse proxy (KEYGATE_TRUSTED_PROXIES): only then does /auth/verify
	// believe its X-Original-URI / X-Forwarded-Uri and let X-Keygate-Model
	// establish the model. Nil trusts nobody.
	TrustedPeer func(r *http.Request) bool

	Users       UserOps
	Teams       TeamOps
	Keys        KeyOps
	Spend       SpendOps
	Sessions    SessionOps
	Session     SessionConfig
	Invitations InvitationOps
	Audit       AuditOps
	SSOOps      SSOOps
	SSO         SSOConfig
	MFA         MFAOps
	// BaseURL is PROXY_BASE_URL, else the listen address (LiteLLM's UI
	// settings answers); never taken from a request.
	BaseURL string
	// LogoutURL is PROXY_LOGOUT_URL, for LiteLLM's UI settings answer.
	LogoutURL string
}

// Server holds the handlers.
type Server struct {
	opts          Options
	sess          SessionConfig
	log           *slog.Logger
	extra         []Route
	userInfoHooks []UserInfoHook
	teamInfoHooks []TeamInfoHook
	// jsonType is the Content-Type value of /auth/verify's answer, one
	// slice shared by every answer (net/http only reads it), so the hot
	// path allocates none.
	jsonType []string
}

// OnUserInfo registers a hook that extends /user/info's answer.
func (s *Server) OnUserInfo(h UserInfoHook) { s.userInfoHooks = append(s.userInfoHooks, h) }

// OnTeamInfo registers a hook that extends /team/info's answer.
func (s *Server) OnTeamInfo(h TeamInfoHook) { s.teamInfoHooks = append(s.teamInfoHooks, h) }

// New returns the API server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SessionCookie == "" {
		o.SessionCookie = websession.SessionCookie
	}
	return &Server{opts: o, log: o.Logger, sess: o.Session, jsonType: []string{"application/json"}}
}

// Add registers further routes (from feature packages wired in cmd).
func (s *Server) Add(routes ...Route) { s.extra = append(s.extra, routes...) }

// Routes returns the full route table.
func (s *Server) Routes() []Route {
	rs := s.coreRoutes()
	return append(rs, s.extra...)
}

// Mount registers every route on r.
func (s *Server) Mount(r gin.IRouter) {
	for _, rt := range s.Routes() {
		if rt.Perm == "" && !rt.Public {
			panic("api: route " + rt.Method + " " + rt.Path + " declares no permission")
		}
		r.Handle(rt.Method, rt.Path, s.guard(rt), httperr.Handle(rt.Handler))
	}
}

// guard authenticates the caller of a non-public route and checks the
// route's permission; the principal is then available via PrincipalOf.
func (s *Server) guard(rt Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		if rt.Public {
			c.Next()
			return
		}
		cred := auth.CredentialFromRequest(c.Request, s.opts.SessionCookie)
		cred.Fresh = auth.ChangesState(c.Request.Method)
		p, err := s.opts.Authenticator.Authenticate(c.Request.Context(), cred)
		if err != nil && cred.FromCookie && errors.Is(err, auth.ErrExpired) {
			p, err = s.opts.Web.Refresh(ctxOf(c), c.Writer, c.Request)
		}
		if err != nil {
			httperr.Write(c, err)
			return
		}
		if p.ViaCookie {
			if err := s.opts.Web.CheckWrite(c.Request, p); err != nil {
				httperr.Write(c, err)
				return
			}
		}
		if !p.Can(rt.Perm) {
			httperr.Write(c, forbiddenRoute(p, rt))
			return
		}
		// The key's route limits (allowed_routes) bind every role.
		if err := service.Decide(p, access.Request{Method: c.Request.Method, Routes: access.RouteVariants(c.Request.URL.EscapedPath()),
			RouteKnown: true, Management: true}); err != nil {
			httperr.Write(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

const principalKey = "keygate.principal"

// PrincipalOf returns the principal the guard resolved.
func PrincipalOf(c *gin.Context) auth.Principal {
	v, _ := c.Get(principalKey)
	p, _ := v.(auth.Principal)
	return p
}

func (s *Server) health(c *gin.Context) error {
	c.JSON(http.StatusOK, gin.H{"status": "healthy"})
	return nil
}

// ErrShuttingDown is what Options.Ready returns once shutdown has begun.
var ErrShuttingDown = errors.New("shutting down")

func (s *Server) readiness(c *gin.Context) error {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if s.opts.Ready != nil {
		if err := s.opts.Ready(ctx); errors.Is(err, ErrShuttingDown) {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "shutting_down"})
			return nil
		} else if err != nil {
			httperr.Logger(c).Warn("readiness check failed", "err", err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unhealthy", "db": "disconnected"})
			return nil
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "healthy", "db": "connected"})
	return nil
}
