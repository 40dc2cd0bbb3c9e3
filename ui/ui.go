// Package ui serves Keygate's web pages under /ui/: sign-in, onboarding,
// password reset, a user's keys and spend, and the admin pages (users,
// teams, invitations, all keys, audit log). Pages are rendered on the
// server from html/template files embedded in the binary; forms post back
// to the same service layer the JSON API uses, so the UI holds no rule of
// its own and is never the security boundary.
package ui

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/store"
)

// SessionOps is what the sign-in, onboarding and password pages need.
type SessionOps interface {
	Login(ctx context.Context, in service.LoginInput) (service.LoginResult, error)
	RefreshToken(ctx context.Context, p auth.Principal) (string, time.Time, error)
	ChangePassword(ctx context.Context, p auth.Principal, in service.PasswordChange) error
	PeekInvitation(ctx context.Context, id string) (service.Onboarding, error)
	ClaimInvitation(ctx context.Context, id, userID, password string) (service.LoginResult, error)
	ForgotPassword(ctx context.Context, email, clientIP, requestBase string) error
	PeekReset(ctx context.Context, token string) (service.Onboarding, error)
	ResetPassword(ctx context.Context, token, password string) (service.LoginResult, error)
}

// KeyOps is what the key pages need.
type KeyOps interface {
	GenerateKey(ctx context.Context, p auth.Principal, in service.KeyRequest) (service.IssuedKey, error)
	ListKeys(ctx context.Context, p auth.Principal, in service.KeyListInput) ([]store.Key, int64, error)
	DeleteKeys(ctx context.Context, p auth.Principal, refs, aliases []string) error
}

// UserOps is what the users page needs.
type UserOps interface {
	CreateUser(ctx context.Context, p auth.Principal, in service.NewUser) (service.CreatedUser, error)
	GetUser(ctx context.Context, p auth.Principal, userID string) (service.UserDetail, error)
	ListUsers(ctx context.Context, p auth.Principal, in service.UserListInput) ([]service.UserListItem, int64, error)
	DeleteUsers(ctx context.Context, p auth.Principal, ids []string) ([]string, error)
}

// TeamOps is what the teams page needs.
type TeamOps interface {
	CreateTeam(ctx context.Context, p auth.Principal, in service.NewTeam) (service.TeamDetail, error)
	ListTeams(ctx context.Context, p auth.Principal, userID string, page, size int) ([]service.TeamDetail, int64, error)
	DeleteTeams(ctx context.Context, p auth.Principal, ids []string) ([]string, error)
	AddMembers(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
	RemoveMember(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
}

// InvitationOps is what the invitation pages need.
type InvitationOps interface {
	CreateInvitation(ctx context.Context, p auth.Principal, in service.NewInvitation, requestBase string) (service.IssuedInvitation, error)
	ListInvitations(ctx context.Context, p auth.Principal, userID string, page, size int) ([]store.Invitation, int64, error)
}

// ReportOps is what the spend and audit pages need.
type ReportOps interface {
	SpendLogs(ctx context.Context, p auth.Principal, q service.SpendQuery) ([]store.SpendEntry, int64, error)
	ListAudit(ctx context.Context, p auth.Principal, q service.AuditQuery) ([]store.AuditEvent, int64, error)
}

// Service is every operation the UI calls; *service.Service implements it.
type Service interface {
	SessionOps
	KeyOps
	UserOps
	TeamOps
	InvitationOps
	ReportOps
}

// Refresher resolves an expired session token whose session still lives
// (auth.SessionAuthenticator.Refreshable), so a browser keeps its session
// past the short token lifetime.
type Refresher interface {
	Refreshable(ctx context.Context, token string) (auth.Principal, error)
}

// SSOProvider is one "Sign in with …" button on the login page.
type SSOProvider struct {
	Name        string // e.g. "generic", "google"
	DisplayName string // e.g. "Okta"
	URL         string // where the button goes, e.g. /sso/login/generic
}

// Options configures the UI.
type Options struct {
	Logger  *slog.Logger
	Service Service
	// Authenticator resolves the session cookie; Refresher (optional)
	// renews an expired token of a live session.
	Authenticator auth.Authenticator
	Refresher     Refresher
	// CookieName is the session cookie (default auth.DefaultSessionCookie).
	CookieName string
	// CSRFKey derives per-session CSRF tokens (shared with the API, so a
	// token is valid on every replica). Empty: a random per-process key,
	// which only matters when logins are disabled anyway.
	CSRFKey []byte
	// SecureCookies marks every cookie Secure (TLS or https base URL).
	SecureCookies bool
	// SSOProviders are offered on the login page.
	SSOProviders []SSOProvider
	// PasswordLoginDisabled hides the e-mail/password form (SSO only).
	PasswordLoginDisabled bool
	Now                   func() time.Time
}

// UI holds the page handlers.
type UI struct {
	opts Options
	svc  Service
	log  *slog.Logger
	tmpl *templates
	now  func() time.Time
	// formKey signs pre-session form tokens and flash cookies; it is
	// derived from CSRFKey so that it differs from the session CSRF tokens.
	formKey []byte
}

// New parses every template (a missing or broken one is an error, so a bad
// build fails at start, not on first use) and returns the UI.
func New(o Options) (*UI, error) {
	if o.Service == nil || o.Authenticator == nil {
		return nil, fmt.Errorf("ui: Service and Authenticator are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CookieName == "" {
		o.CookieName = auth.DefaultSessionCookie
	}
	if len(o.CSRFKey) == 0 {
		o.CSRFKey = make([]byte, 32)
		if _, err := rand.Read(o.CSRFKey); err != nil {
			return nil, fmt.Errorf("ui: csrf key: %w", err)
		}
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &UI{opts: o, svc: o.Service, log: o.Logger, tmpl: t, now: o.Now, formKey: subKey(o.CSRFKey, "keygate-ui-forms-v1")}, nil
}

// handler is a page handler that reports failure by returning an error;
// fail renders it as an HTML error page.
type handler func(c *gin.Context) error

// Mount registers the pages on r. GET|POST /ui/logout belong to the API
// (it revokes the session and honours PROXY_LOGOUT_URL); the UI links there.
func (u *UI) Mount(r gin.IRouter) {
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/ui/") })
	g := r.Group("/ui", securityHeaders)
	g.GET("/static/*file", u.static)

	pre := g.Group("", u.formCookie)
	pre.GET("/login", u.wrap(u.loginPage))
	pre.POST("/login", u.checkFormToken, u.wrap(u.loginSubmit))
	pre.GET("/onboarding", u.wrap(u.onboardingPage))
	pre.POST("/onboarding", u.checkFormToken, u.wrap(u.onboardingSubmit))
	pre.GET("/reset-password", u.wrap(u.resetPage))
	pre.POST("/reset-password", u.checkFormToken, u.wrap(u.resetSubmit))
	pre.GET("/forgot-password", u.wrap(u.forgotPage))
	pre.POST("/forgot-password", u.checkFormToken, u.wrap(u.forgotSubmit))

	in := g.Group("", u.requireSession, u.checkCSRF)
	in.GET("/", u.wrap(u.myKeys))
	in.POST("/keys/new", u.wrap(u.createKey))
	in.POST("/keys/delete", u.wrap(u.deleteKey))
	in.GET("/keys", u.wrap(u.allKeys))
	in.GET("/spend", u.wrap(u.spend))
	in.GET("/users", u.wrap(u.users))
	in.POST("/users/new", u.wrap(u.createUser))
	in.POST("/users/invite", u.wrap(u.inviteUser))
	in.POST("/users/delete", u.wrap(u.deleteUser))
	in.GET("/invitations", u.wrap(u.invitations))
	in.GET("/teams", u.wrap(u.teams))
	in.POST("/teams/new", u.wrap(u.createTeam))
	in.POST("/teams/delete", u.wrap(u.deleteTeam))
	in.POST("/teams/members/add", u.wrap(u.addMember))
	in.POST("/teams/members/remove", u.wrap(u.removeMember))
	in.GET("/password", u.wrap(u.passwordPage))
	in.POST("/password", u.wrap(u.passwordSubmit))
	in.GET("/audit", u.wrap(u.audit))
}

// wrap turns a handler into a Gin handler that renders failures.
func (u *UI) wrap(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			u.fail(c, err)
		}
	}
}
