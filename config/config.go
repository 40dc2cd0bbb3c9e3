// Package config holds Keygate's configuration: the typed Config, its
// built-in defaults, loading from an optional YAML file and the environment,
// and Validate, which reports every problem at once.
//
// Environment variables use LiteLLM's names where LiteLLM has one (so a
// LiteLLM .env file works unchanged) and KEYGATE_* names for the rest. The
// single table in Settings is the source of truth for names, YAML keys,
// defaults and documentation; Load, Default and Redacted are all driven by it.
//
// The package imports nothing of Keygate's: cmd/keygate maps a Config onto
// each package's own options.
package config

import (
	"net/url"
	"path/filepath"
	"time"
)

// Config is Keygate's complete, parsed configuration. Build one with Load
// (or Default for tests) rather than by hand, so defaults are filled in.
type Config struct {
	Server   Server
	Database Database
	Auth     Auth
	URLs     URLs
	SSO      SSO
	SMTP     SMTP
	Upstream Upstream
	Log      Log
	Metrics  Metrics
	// ModelPrices maps a model name to its price, for spend metering on the
	// forwarding path. YAML only (model_prices).
	ModelPrices map[string]ModelPrice
}

// Server is the HTTP listener.
type Server struct {
	Addr        string // KEYGATE_ADDR
	TLSCertFile string // KEYGATE_TLS_CERT_FILE; TLS is on when both files are set
	TLSKeyFile  string // KEYGATE_TLS_KEY_FILE
	// ReadHeaderTimeout bounds slow-header (slowloris) clients; never zero.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout is generous because forwarded completions stream for
	// minutes; 0 disables it.
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration // graceful-shutdown drain time
	// ShutdownDelay is how long readiness answers 503 before the listener
	// closes, so that load balancers stop sending first.
	ShutdownDelay  time.Duration
	MaxHeaderBytes int
	MaxBodyBytes   int64 // limit for management API / UI request bodies
	// TrustedProxies lists IPs or CIDRs whose X-Forwarded-For is believed.
	// Empty: none, the client address is the TCP peer.
	TrustedProxies []string
}

// Database selects SQLite (URL empty) or PostgreSQL.
type Database struct {
	URL             string // DATABASE_URL; empty → SQLite file in DataDir
	DataDir         string // KEYGATE_DATA_DIR
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// Timeout bounds every database statement (server-side statement and
	// lock timeouts on PostgreSQL, the busy timeout on SQLite, and a
	// client-side deadline either way); AcquireTimeout bounds the wait for
	// a connection from the pool.
	Timeout        time.Duration
	AcquireTimeout time.Duration
}

// Auth holds credentials and token lifetimes.
type Auth struct {
	// MasterKey is the admin API credential (LITELLM_MASTER_KEY or
	// KEYGATE_MASTER_KEY). Unlike LiteLLM it is never a password or a
	// signing secret.
	MasterKey string
	// Secret encrypts signing keys at rest (KEYGATE_SECRET or
	// LITELLM_SALT_KEY).
	Secret     string
	UIUsername string // bootstrap admin, created when UIPassword is set
	UIPassword string
	// SessionTTL is how long a login lasts; TokenTTL how long one session
	// JWT lasts before it is re-issued from the live session.
	SessionTTL time.Duration
	TokenTTL   time.Duration
	// CacheTTL is how long an answer about a key or session is cached: the
	// most a replica that cannot hear other replicas' invalidations (its
	// database link down) can answer from a revoked credential's entry.
	CacheTTL time.Duration
	// CacheFailClosed: while the change listener is down, cached answers
	// about keys and sessions are not used (KEYGATE_CACHE_FAIL_CLOSED).
	CacheFailClosed       bool
	JWTAlgorithm          string // JWTAlgorithmES256 or JWTAlgorithmRS256
	SigningKeyRotation    time.Duration
	PasswordLoginDisabled bool
	InvitationTTL         time.Duration
	// MFARequiredRoles must have a second factor to sign in with a
	// password (KEYGATE_MFA_REQUIRED_ROLES); SSO users are exempt.
	MFARequiredRoles []string
}

// JWT signing algorithms accepted for Auth.JWTAlgorithm.
const (
	JWTAlgorithmES256 = "ES256"
	JWTAlgorithmRS256 = "RS256"
)

// URLs are the public addresses Keygate builds links and redirects from.
type URLs struct {
	// ProxyBaseURL is the public base URL: SSO redirect_uri, invitation
	// links, post-login redirects. Nil when unset.
	ProxyBaseURL *url.URL
	// LLMBaseURL is where applications send their calls with a key (the
	// OpenAI base URL), shown with every new key. Nil when unset.
	LLMBaseURL *url.URL
	// ProxyLogoutURL is where the UI sends the browser after logout.
	ProxyLogoutURL *url.URL
	// LogoutRedirectAllowlist lists absolute URLs a logout request may ask
	// to be redirected to: scheme, host and port must match one exactly
	// (and the path start with its path); anything else falls back to
	// ProxyLogoutURL, so logout is not an open redirect.
	LogoutRedirectAllowlist []string
}

// SSO configures the identity providers and how their users map to Keygate.
type SSO struct {
	Generic   GenericOIDC
	Google    OAuthClient
	Microsoft Microsoft
	// AllowedEmailDomains, when not empty, restricts SSO logins to these
	// (lower-cased) email domains.
	AllowedEmailDomains []string
	// ProxyAdminID is the SSO user id that is made proxy_admin on login.
	ProxyAdminID string
	// RoleMapping maps an IdP claim to Keygate roles. YAML only.
	RoleMapping RoleMapping
	// TeamsFromGroups makes the IdP's groups claim set team memberships.
	TeamsFromGroups bool
}

// GenericOIDC is any OpenID Connect provider. With Issuer set the endpoints
// come from discovery; without it all three endpoints must be given.
type GenericOIDC struct {
	ClientID              string
	ClientSecret          string
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	UserinfoEndpoint      string
	Scope                 string // space separated
	UserIDAttribute       string
	EmailAttribute        string
	DisplayNameAttribute  string
	RoleAttribute         string
}

// Enabled reports whether a generic OIDC provider is configured.
func (g GenericOIDC) Enabled() bool { return g.ClientID != "" }

// OAuthClient is a provider that needs only client credentials (Google).
type OAuthClient struct {
	ClientID     string
	ClientSecret string
}

// Enabled reports whether the provider is configured.
func (o OAuthClient) Enabled() bool { return o.ClientID != "" }

// Microsoft is Entra ID; Tenant is required so that "any Microsoft account"
// is never the accidental default.
type Microsoft struct {
	ClientID     string
	ClientSecret string
	Tenant       string
}

// Enabled reports whether the provider is configured.
func (m Microsoft) Enabled() bool { return m.ClientID != "" }

// RoleMapping decides a user's role from an IdP claim at SSO login, so a
// role is never taken verbatim from a claim the user might control.
type RoleMapping struct {
	// Claim names the claim to read (a string or a list of strings, e.g.
	// "groups"). Empty disables mapping.
	Claim string `yaml:"claim"`
	// Map maps a claim value to a role. When a list claim matches several
	// values, the most privileged role wins.
	Map map[string]string `yaml:"map"`
	// DefaultRole is given when no value matches (and on first login when
	// Claim is empty).
	DefaultRole string `yaml:"default_role"`
	// DenyIfUnmapped refuses the login when no value matches, instead of
	// giving DefaultRole.
	DenyIfUnmapped bool `yaml:"deny_if_unmapped"`
}

// The four global roles, as LiteLLM spells them. Duplicated from rbac
// because config imports nothing of Keygate's; a test in cmd may compare.
const (
	RoleProxyAdmin         = "proxy_admin"
	RoleProxyAdminViewer   = "proxy_admin_viewer"
	RoleInternalUser       = "internal_user"
	RoleInternalUserViewer = "internal_user_viewer"
)

// SMTP is the mail server for invitation mail. Host empty disables mail.
type SMTP struct {
	Host        string
	Port        int
	Username    string
	Password    string
	TLS         string // SMTPTLSStartTLS, SMTPTLSImplicit or SMTPTLSNone
	SenderEmail string
}

// SMTP TLS modes. SMTP_TLS also accepts LiteLLM's booleans: true means
// starttls, false means none.
const (
	SMTPTLSStartTLS = "starttls"
	SMTPTLSImplicit = "tls"
	SMTPTLSNone     = "none"
)

// Upstream is the LLM proxy Keygate may forward /v1/* to. URL nil disables
// forwarding.
type Upstream struct {
	URL     *url.URL
	Key     string // sent upstream instead of the client's key
	Timeout time.Duration
	Paths   []string // path prefixes forwarded upstream
	// FailClosed refuses metered forwarding (503) while spend cannot be
	// written to the database, instead of spooling it to disk.
	FailClosed bool
	// EstimateMaxTokens is the output bound assumed, when reserving a
	// call's cost against its budgets, for a call that sets none.
	EstimateMaxTokens int
}

// Log configures the process logger.
type Log struct {
	Level  string // debug, info, warn or error
	Format string // text or json
}

// Metrics protects /metrics; with Token empty it is served without a token.
type Metrics struct {
	Token string
}

// ModelPrice is a model's price in USD per million tokens.
type ModelPrice struct {
	InputPerMillion  float64 `yaml:"input_per_million"`
	OutputPerMillion float64 `yaml:"output_per_million"`
}

// SQLitePath is the SQLite database file used when Database.URL is empty,
// and "" when PostgreSQL is configured.
func (c *Config) SQLitePath() string {
	if c.Database.URL != "" {
		return ""
	}
	return filepath.Join(c.Database.DataDir, "keygate.db")
}

// TLSEnabled reports whether the server should serve HTTPS.
func (c *Config) TLSEnabled() bool {
	return c.Server.TLSCertFile != "" && c.Server.TLSKeyFile != ""
}
