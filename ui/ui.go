// Package ui serves Keygate's web pages under /ui/: sign-in, onboarding,
// password reset, a user's keys and spend, and the admin pages (users,
// teams, invitations, all keys, audit log). Pages are rendered on the
// server from html/template files embedded in the binary; forms post back
// to the same service layer the JSON API uses, so the UI holds no rule of
// its own and is never the security boundary.
package ui

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/internal/websession"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// SessionOps is what the onboarding and password pages need (signing in
// and out is Options.Web's).
type SessionOps interface {
	ChangePassword(ctx context.Context, p auth.Principal, in service.PasswordChange) error
	PeekInvitation(ctx context.Context, id string) (service.Onboarding, error)
	ClaimInvitation(ctx context.Context, id, userID, password string) (service.LoginResult, error)
	ForgotPassword(ctx context.Context, email, clientIP string) error
	PeekReset(ctx context.Context, token string) (service.Onboarding, error)
	ResetPassword(ctx context.Context, token, password string) (service.LoginResult, error)
	// MailEnabled: reset links can be mailed (SMTP is set up).
	MailEnabled() bool
}

// KeyOps is what the key pages need.
type KeyOps interface {
	GenerateKey(ctx context.Context, p auth.Principal, in service.KeyRequest) (service.IssuedKey, error)
	ListKeys(ctx context.Context, p auth.Principal, in service.KeyListInput) ([]store.Key, int64, error)
	DeleteKeys(ctx context.Context, p auth.Principal, refs, aliases []string) error
	KeyInfo(ctx context.Context, p auth.Principal, ref string) (store.Key, error)
	UpdateKey(ctx context.Context, p auth.Principal, ref string, in service.KeyRequest) (store.Key, error)
	RegenerateKey(ctx context.Context, p auth.Principal, ref string, in service.KeyRequest) (service.IssuedKey, error)
	SetKeyBlocked(ctx context.Context, p auth.Principal, ref string, blocked bool) (store.Key, error)
	KeyStandings(ctx context.Context, p auth.Principal, hashes []string) (map[string]service.KeyStanding, error)
}

// UserOps is what the users page needs.
type UserOps interface {
	CreateUser(ctx context.Context, p auth.Principal, in service.NewUser) (service.CreatedUser, error)
	GetUser(ctx context.Context, p auth.Principal, userID string) (service.UserDetail, error)
	ListUsers(ctx context.Context, p auth.Principal, in service.UserListInput) ([]service.UserListItem, int64, error)
	DeleteUsers(ctx context.Context, p auth.Principal, ids []string) ([]string, error)
	UpdateUser(ctx context.Context, p auth.Principal, in service.UserUpdate) (service.UserDetail, error)
	CreateResetLink(ctx context.Context, p auth.Principal, userID string) (service.IssuedReset, error)
}

// TeamOps is what the teams page needs.
type TeamOps interface {
	CreateTeam(ctx context.Context, p auth.Principal, in service.NewTeam) (service.TeamDetail, error)
	ListTeams(ctx context.Context, p auth.Principal, userID string, page, size int) ([]service.TeamDetail, int64, error)
	DeleteTeams(ctx context.Context, p auth.Principal, ids []string) ([]string, error)
	AddMembers(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
	RemoveMember(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
	GetTeam(ctx context.Context, p auth.Principal, teamID string) (service.TeamDetail, error)
	UpdateTeam(ctx context.Context, p auth.Principal, in service.TeamUpdate) (service.TeamDetail, error)
	UpdateMember(ctx context.Context, p auth.Principal, in service.MemberChange) (service.TeamDetail, error)
}

// InvitationOps is what the invitation pages need.
type InvitationOps interface {
	CreateInvitation(ctx context.Context, p auth.Principal, in service.NewInvitation) (service.IssuedInvitation, error)
	ListInvitations(ctx context.Context, p auth.Principal, userID string, page, size int) ([]store.Invitation, int64, error)
	RevokeInvitation(ctx context.Context, p auth.Principal, idHash string) (store.Invitation, error)
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
	SCIMOps
	MFAOps
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
	// Web is the browser session: it resolves and renews the session
	// cookie, checks CSRF tokens and origins, signs in and out.
	Web *websession.Manager
	// SecureCookies marks the UI's own cookie (flash) Secure.
	SecureCookies bool
	// SSOProviders are offered on the login page.
	SSOProviders []SSOProvider
	// PasswordLoginDisabled hides the e-mail/password form (SSO only).
	PasswordLoginDisabled bool
	Now                   func() time.Time

	// BaseURL is PROXY_BASE_URL, for the SCIM base URL shown to admins;
	// empty means the request's own scheme and host.
	BaseURL string
	// LLMBaseURL is where applications send API calls with a key (the
	// OpenAI base URL), shown with every new key; empty means unknown,
	// and the page says how to configure it.
	LLMBaseURL string
}

// UI holds the page handlers.
type UI struct {
	opts Options
	svc  Service
	log  *slog.Logger
	tmpl *templates
	now  func() time.Time
}

// New checks that every page template is present (a missing one is an
// error, so a bad build fails at start) and returns the UI; pages are
// parsed on first use.
func New(o Options) (*UI, error) {
	if o.Service == nil || o.Web == nil {
		return nil, fmt.Errorf("ui: Service and Web are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &UI{opts: o, svc: o.Service, log: o.Logger, tmpl: t, now: o.Now}, nil
}

// handler is a page handler that reports failure by returning an error;
// fail renders it as an HTML error page.
type handler func(c *gin.Context) error

// Route is one page or form of the UI. Read the table (Routes) as the
// UI's access policy, as api's route table is the API's: a signed-in
// route names the permission its caller's role needs, and a test walks
// every route with every role. The service checks again, whatever the
// page offered.
type Route struct {
	Method string
	Path   string // under /ui
	// Perm is required of the signed-in caller. Public routes (sign-in,
	// onboarding, reset, sign-out) have none and run signed out.
	Perm   rbac.Permission
	Public bool
	h      handler
}

// Routes is the UI's route table.
func (u *UI) Routes() []Route {
	const get, post = http.MethodGet, http.MethodPost
	return []Route{
		{Method: get, Path: "/login", Public: true, h: u.loginPage},
		{Method: post, Path: "/login", Public: true, h: u.loginSubmit},
		{Method: get, Path: "/onboarding", Public: true, h: u.onboardingPage},
		{Method: post, Path: "/onboarding", Public: true, h: u.onboardingSubmit},
		{Method: get, Path: "/reset-password", Public: true, h: u.resetPage},
		{Method: post, Path: "/reset-password", Public: true, h: u.resetSubmit},
		{Method: get, Path: "/forgot-password", Public: true, h: u.forgotPage},
		{Method: post, Path: "/forgot-password", Public: true, h: u.forgotSubmit},
		// Sign-out checks the session's CSRF token itself, so that a
		// stale or expired cookie can still sign out.
		{Method: get, Path: "/logout", Public: true, h: u.logoutPage},
		{Method: post, Path: "/logout", Public: true, h: u.logoutSubmit},
		// The second step of a sign-in, and the setup the policy demands:
		// signed out, with the pending sign-in in its HttpOnly cookie.
		{Method: get, Path: "/login/mfa", Public: true, h: u.mfaStepPage},
		{Method: post, Path: "/login/mfa", Public: true, h: u.mfaStepSubmit},
		{Method: get, Path: "/mfa/setup", Public: true, h: u.enrollPage},
		{Method: post, Path: "/mfa/setup", Public: true, h: u.enrollSubmit},

		{Method: get, Path: "/", Perm: rbac.PermReadOwn, h: u.myKeys},
		{Method: post, Path: "/keys/new", Perm: rbac.PermKeyWriteOwn, h: u.createKey},
		{Method: post, Path: "/keys/delete", Perm: rbac.PermKeyWriteOwn, h: u.deleteKey},
		{Method: get, Path: "/keys", Perm: rbac.PermReadAll, h: u.allKeys},
		// Changing a key is its owner's or a proxy admin's; blocking one
		// a proxy admin's or its team admin's (the service decides).
		{Method: get, Path: "/keys/edit", Perm: rbac.PermKeyWriteOwn, h: u.keyEditPage},
		{Method: post, Path: "/keys/edit", Perm: rbac.PermKeyWriteOwn, h: u.keyEditSubmit},
		{Method: post, Path: "/keys/regenerate", Perm: rbac.PermKeyWriteOwn, h: u.regenerateKey},
		{Method: post, Path: "/keys/block", Perm: rbac.PermKeyWriteOwn, h: u.blockKey},
		{Method: get, Path: "/spend", Perm: rbac.PermReadOwn, h: u.spend},
		{Method: get, Path: "/users", Perm: rbac.PermReadAll, h: u.users},
		{Method: post, Path: "/users/new", Perm: rbac.PermUserWrite, h: u.createUser},
		{Method: post, Path: "/users/invite", Perm: rbac.PermInvitationWrite, h: u.inviteUser},
		{Method: post, Path: "/users/delete", Perm: rbac.PermUserWrite, h: u.deleteUser},
		{Method: get, Path: "/users/edit", Perm: rbac.PermUserWrite, h: u.userEditPage},
		{Method: post, Path: "/users/edit", Perm: rbac.PermUserWrite, h: u.userEditSubmit},
		{Method: post, Path: "/users/reset-link", Perm: rbac.PermUserWrite, h: u.resetLink},
		{Method: post, Path: "/getting-started/dismiss", Perm: rbac.PermReadOwn, h: u.dismissGettingStarted},
		{Method: get, Path: "/invitations", Perm: rbac.PermReadAll, h: u.invitations},
		{Method: post, Path: "/invitations/revoke", Perm: rbac.PermInvitationWrite, h: u.revokeInvitation},
		{Method: get, Path: "/teams", Perm: rbac.PermReadOwn, h: u.teams},
		{Method: post, Path: "/teams/new", Perm: rbac.PermTeamWrite, h: u.createTeam},
		{Method: post, Path: "/teams/delete", Perm: rbac.PermTeamWrite, h: u.deleteTeam},
		{Method: post, Path: "/teams/members/add", Perm: rbac.PermTeamMemberWrite, h: u.addMember},
		{Method: post, Path: "/teams/members/remove", Perm: rbac.PermTeamMemberWrite, h: u.removeMember},
		{Method: post, Path: "/teams/members/update", Perm: rbac.PermTeamMemberWrite, h: u.updateMember},
		{Method: get, Path: "/teams/edit", Perm: rbac.PermTeamWrite, h: u.teamEditPage},
		{Method: post, Path: "/teams/edit", Perm: rbac.PermTeamWrite, h: u.teamEditSubmit},
		{Method: get, Path: "/password", Perm: rbac.PermPasswordChangeOwn, h: u.passwordPage},
		{Method: post, Path: "/password", Perm: rbac.PermPasswordChangeOwn, h: u.passwordSubmit},
		// One's own second factors: every role, like one's password.
		{Method: get, Path: "/account/security", Perm: rbac.PermPasswordChangeOwn, h: u.security},
		{Method: post, Path: "/account/security/totp", Perm: rbac.PermPasswordChangeOwn, h: u.totpSetup},
		{Method: post, Path: "/account/security/totp/confirm", Perm: rbac.PermPasswordChangeOwn, h: u.totpConfirm},
		{Method: post, Path: "/account/security/totp/disable", Perm: rbac.PermPasswordChangeOwn, h: u.totpDisable},
		{Method: post, Path: "/account/security/passkeys/delete", Perm: rbac.PermPasswordChangeOwn, h: u.passkeyDelete},
		{Method: post, Path: "/account/security/recovery-codes", Perm: rbac.PermPasswordChangeOwn, h: u.recoveryCodes},
		{Method: post, Path: "/users/mfa-reset", Perm: rbac.PermUserWrite, h: u.resetUserMFA},
		{Method: get, Path: "/audit", Perm: rbac.PermReadAll, h: u.audit},
		{Method: get, Path: "/scim", Perm: rbac.PermReadAll, h: u.scim},
		{Method: post, Path: "/scim/tokens/new", Perm: rbac.PermUserWrite, h: u.createSCIMToken},
		{Method: post, Path: "/scim/tokens/rotate", Perm: rbac.PermUserWrite, h: u.rotateSCIMToken},
		{Method: post, Path: "/scim/tokens/revoke", Perm: rbac.PermUserWrite, h: u.revokeSCIMToken},
	}
}

// Mount registers the pages on r. Signed-out form posts need the
// double-submit token and the same origin; signed-in routes need a
// session, then (for posts) the session's CSRF token and the same
// origin, then the route's permission.
func (u *UI) Mount(r gin.IRouter) {
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/ui/") })
	r.GET("/ui", u.securityHeaders(), u.litellmInvitation, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/ui/") })
	g := r.Group("/ui", u.securityHeaders())
	g.GET("/static/*file", u.static)
	for _, rt := range u.Routes() {
		switch {
		case rt.Public && rt.Method == http.MethodPost && rt.Path != "/logout":
			g.Handle(rt.Method, rt.Path, u.checkFormToken, u.wrap(rt.h))
		case rt.Public:
			g.Handle(rt.Method, rt.Path, u.wrap(rt.h))
		case rt.Perm == "":
			panic("ui: route " + rt.Method + " " + rt.Path + " declares no permission")
		default:
			g.Handle(rt.Method, rt.Path, u.litellmInvitation, u.requireSession, u.checkCSRF, u.allow(rt), u.wrap(rt.h))
		}
	}
}

// allow refuses a signed-in caller whose role lacks the route's
// permission, or whom the access decision refuses (the same function the
// API's guard and /auth/verify call; for a browser session it applies any
// route limit).
func (u *UI) allow(rt Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principalOf(c)
		if !p.Can(rt.Perm) {
			u.fail(c, apperr.Forbidden("Your role (%s) may not open this page.", roleLabel(string(p.Role))))
			return
		}
		if err := service.Decide(p, access.Request{Method: c.Request.Method, Routes: access.RouteVariants(c.Request.URL.EscapedPath()),
			RouteKnown: true, Management: true}); err != nil {
			u.fail(c, err)
			return
		}
		c.Next()
	}
}

// wrap turns a handler into a Gin handler that renders failures.
func (u *UI) wrap(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			u.fail(c, err)
		}
	}
}
