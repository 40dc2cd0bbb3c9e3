package config

import (
	"net/url"
	"strings"
	"time"
)

// EnvConfigFile names the YAML file when --config is not given. It is read
// by cmd/keygate, not by Load, and is exempt from the unknown-KEYGATE_ check.
const EnvConfigFile = "KEYGATE_CONFIG"

// envPrefix marks Keygate's own variables: unknown ones are typos.
const envPrefix = "KEYGATE_"

// reservedEnv reports KEYGATE_* variables that are not settings but are
// legitimately present: the config-file path and the test suites' switches
// (e.g. KEYGATE_TEST_POSTGRES, and KEYGATE_LITELLM_MIGRATIONS, where the
// importer's tests find LiteLLM's schema), which end-to-end runs pass to
// the binary.
func reservedEnv(name string) bool {
	if name == EnvConfigFile || strings.HasPrefix(name, "KEYGATE_TEST_") {
		return true
	}
	switch name {
	case "KEYGATE_LITELLM_MIGRATIONS", "KEYGATE_HYDRA_BIN", "KEYGATE_UPDATE_SCREENSHOTS", "KEYGATE_SCREENSHOT_DIR", "KEYGATE_DBTEST_HELPER":
		return true // the test suites' switches (README, "Tests")
	}
	return false
}

// settingTable is the single source of truth for names, YAML keys,
// defaults and how each value is parsed. It is built per call because the
// package keeps no globals.
func settingTable() []setting {
	return []setting{
		// Server.
		stringVar(def("KEYGATE_ADDR", "server.addr", "127.0.0.1:4100",
			"listen address, host:port; the default answers this machine only (use :4100 or 0.0.0.0:4100 for every interface) on a port beside LiteLLM's 4000"),
			func(c *Config) *string { return &c.Server.Addr }),
		stringVar(def("KEYGATE_TLS_CERT_FILE", "server.tls_cert_file", "", "PEM certificate; with the key file, serve HTTPS"),
			func(c *Config) *string { return &c.Server.TLSCertFile }),
		stringVar(def("KEYGATE_TLS_KEY_FILE", "server.tls_key_file", "", "PEM private key for the certificate"),
			func(c *Config) *string { return &c.Server.TLSKeyFile }),
		durationVar(def("KEYGATE_READ_HEADER_TIMEOUT", "server.read_header_timeout", "10s", "time to read request headers (slow-client guard, > 0)"),
			func(c *Config) *time.Duration { return &c.Server.ReadHeaderTimeout }),
		durationVar(def("KEYGATE_READ_TIMEOUT", "server.read_timeout", "60s", "time to read a whole request; 0 = no limit"),
			func(c *Config) *time.Duration { return &c.Server.ReadTimeout }),
		durationVar(def("KEYGATE_WRITE_TIMEOUT", "server.write_timeout", "10m", "time to write a response; long because completions stream; 0 = no limit"),
			func(c *Config) *time.Duration { return &c.Server.WriteTimeout }),
		durationVar(def("KEYGATE_IDLE_TIMEOUT", "server.idle_timeout", "120s", "keep-alive idle time; 0 = no limit"),
			func(c *Config) *time.Duration { return &c.Server.IdleTimeout }),
		durationVar(def("KEYGATE_SHUTDOWN_TIMEOUT", "server.shutdown_timeout", "30s", "grace period for in-flight requests on shutdown"),
			func(c *Config) *time.Duration { return &c.Server.ShutdownTimeout }),
		durationVar(def("KEYGATE_SHUTDOWN_DELAY", "server.shutdown_delay", "5s", "on shutdown, time readiness answers 503 before the listener closes (load balancers stop sending); 0 = none"),
			func(c *Config) *time.Duration { return &c.Server.ShutdownDelay }),
		bytesVar(def("KEYGATE_MAX_HEADER_BYTES", "server.max_header_bytes", "64KiB", "largest request header block"),
			func(c *Config) *int { return &c.Server.MaxHeaderBytes }),
		bytesVar(def("KEYGATE_MAX_BODY_BYTES", "server.max_body_bytes", "1MiB", "largest management/UI request body"),
			func(c *Config) *int64 { return &c.Server.MaxBodyBytes }),
		listVar(def("KEYGATE_TRUSTED_PROXIES", "server.trusted_proxies", "", "comma-separated IPs/CIDRs of your reverse proxies: their X-Forwarded-For, and on /auth/verify their X-Original-URI, X-Forwarded-Uri and X-Keygate-Model, are believed; empty = none"),
			func(c *Config) *[]string { return &c.Server.TrustedProxies }, nil),

		// Database.
		stringVar(def("DATABASE_URL", "database.url", "", "PostgreSQL URL or DSN; empty = SQLite file keygate.db in the data dir"),
			func(c *Config) *string { return &c.Database.URL }).secret().redactWith(redactDSN),
		stringVar(def("KEYGATE_DATA_DIR", "database.data_dir", "keygate-data", "directory of the SQLite file and the generated keygate.secret (created 0700)"),
			func(c *Config) *string { return &c.Database.DataDir }),
		intVar(def("KEYGATE_DB_MAX_OPEN_CONNS", "database.max_open_conns", "20", "connection pool size (at least 1; 2 or more on PostgreSQL); half of it, at least one connection, may run key lookups at once"),
			func(c *Config) *int { return &c.Database.MaxOpenConns }),
		intVar(def("KEYGATE_DB_MAX_IDLE_CONNS", "database.max_idle_conns", "10", "idle connections kept open"),
			func(c *Config) *int { return &c.Database.MaxIdleConns }),
		durationVar(def("KEYGATE_DB_CONN_MAX_LIFETIME", "database.conn_max_lifetime", "30m", "connection recycle age; 0 = forever"),
			func(c *Config) *time.Duration { return &c.Database.ConnMaxLifetime }),
		durationVar(def("KEYGATE_DB_TIMEOUT", "database.timeout", "2s", "bound on every database statement (lock waits included); past it the request answers 503"),
			func(c *Config) *time.Duration { return &c.Database.Timeout }),
		durationVar(def("KEYGATE_DB_ACQUIRE_TIMEOUT", "database.acquire_timeout", "2s", "bound on waiting for a pooled database connection; past it the request answers 503"),
			func(c *Config) *time.Duration { return &c.Database.AcquireTimeout }),

		// Auth.
		stringVar(def("LITELLM_MASTER_KEY", "auth.master_key", "", `admin API key; must start with "sk-"`),
			func(c *Config) *string { return &c.Auth.MasterKey }).secret().alias("KEYGATE_MASTER_KEY"),
		stringVar(def("KEYGATE_SECRET", "auth.secret", "", "encrypts signing keys at rest; >= 16 characters; same on all replicas"),
			func(c *Config) *string { return &c.Auth.Secret }).secret().alias("LITELLM_SALT_KEY"),
		stringVar(def("UI_USERNAME", "auth.ui_username", "admin", "bootstrap admin user name (created when UI_PASSWORD is set)"),
			func(c *Config) *string { return &c.Auth.UIUsername }),
		stringVarNorm(def("UI_PASSWORD", "auth.ui_password", "", "bootstrap admin password (taken verbatim)"),
			func(c *Config) *string { return &c.Auth.UIPassword }, verbatim).secret(),
		durationVar(def("LITELLM_UI_SESSION_DURATION", "auth.session_ttl", "24h", `login session lifetime ("24h", "30d")`),
			func(c *Config) *time.Duration { return &c.Auth.SessionTTL }).alias("KEYGATE_SESSION_TTL"),
		durationVar(def("KEYGATE_TOKEN_TTL", "auth.token_ttl", "15m", "session JWT lifetime; re-issued while the session lives"),
			func(c *Config) *time.Duration { return &c.Auth.TokenTTL }),
		durationVar(def("KEYGATE_CACHE_TTL", "auth.cache_ttl", "30s", "how long an answer about a key or session is cached (invalidated at once on every change; the bound for a replica cut off from the database)"),
			func(c *Config) *time.Duration { return &c.Auth.CacheTTL }),
		boolVar(def("KEYGATE_CACHE_FAIL_CLOSED", "auth.cache_fail_closed", "false", "while this replica cannot hear other replicas' changes (PostgreSQL listener down), answer no key or session from the cache: read the database, and refuse (503) when it cannot be reached either"),
			func(c *Config) *bool { return &c.Auth.CacheFailClosed }),
		stringVarNorm(def("KEYGATE_JWT_ALGORITHM", "auth.jwt_algorithm", JWTAlgorithmES256, "session JWT signature: ES256 or RS256"),
			func(c *Config) *string { return &c.Auth.JWTAlgorithm }, upperTrim),
		durationVar(def("KEYGATE_SIGNING_KEY_ROTATION", "auth.signing_key_rotation", "30d", "age at which the JWT signing key is replaced"),
			func(c *Config) *time.Duration { return &c.Auth.SigningKeyRotation }),
		boolVar(def("KEYGATE_PASSWORD_LOGIN_DISABLED", "auth.password_login_disabled", "false", "refuse password logins (SSO only)"),
			func(c *Config) *bool { return &c.Auth.PasswordLoginDisabled }),
		durationVar(def("KEYGATE_INVITATION_TTL", "auth.invitation_ttl", "168h", "invitation link validity"),
			func(c *Config) *time.Duration { return &c.Auth.InvitationTTL }),
		listVar(def("KEYGATE_MFA_REQUIRED_ROLES", "auth.mfa_required_roles", "", "comma-separated roles that must have a second factor (TOTP or passkey) to sign in with a password, e.g. proxy_admin,proxy_admin_viewer; SSO users are exempt"),
			func(c *Config) *[]string { return &c.Auth.MFARequiredRoles }, lowerTrim),

		// Public URLs.
		urlVar(def("PROXY_BASE_URL", "urls.proxy_base_url", "", "public base URL of every link that leaves the server (reset and invitation links, SSO redirect_uri); empty = from KEYGATE_ADDR"),
			func(c *Config) **url.URL { return &c.URLs.ProxyBaseURL }),
		urlVar(def("KEYGATE_LLM_BASE_URL", "urls.llm_base_url", "", "the LLM proxy's base URL as applications use it (OpenAI base_url, e.g. https://llm.example.com/v1), shown with every new key; empty = PROXY_BASE_URL + /v1 in forwarding mode, else not shown"),
			func(c *Config) **url.URL { return &c.URLs.LLMBaseURL }),
		urlVar(def("PROXY_LOGOUT_URL", "urls.proxy_logout_url", "", "where the browser goes after logout"),
			func(c *Config) **url.URL { return &c.URLs.ProxyLogoutURL }),
		listVar(def("KEYGATE_LOGOUT_REDIRECT_ALLOWLIST", "urls.logout_redirect_allowlist", "", "comma-separated absolute URLs whose scheme, host, port (and path prefix) a logout ?redirect= may name"),
			func(c *Config) *[]string { return &c.URLs.LogoutRedirectAllowlist }, nil),

		// SSO: generic OIDC.
		stringVar(def("GENERIC_CLIENT_ID", "sso.generic.client_id", "", "generic OIDC client id; enables the provider"),
			func(c *Config) *string { return &c.SSO.Generic.ClientID }),
		stringVar(def("GENERIC_CLIENT_SECRET", "sso.generic.client_secret", "", "generic OIDC client secret"),
			func(c *Config) *string { return &c.SSO.Generic.ClientSecret }).secret(),
		stringVar(def("GENERIC_ISSUER", "sso.generic.issuer", "", "issuer URL; endpoints and keys by discovery"),
			func(c *Config) *string { return &c.SSO.Generic.Issuer }),
		stringVar(def("GENERIC_AUTHORIZATION_ENDPOINT", "sso.generic.authorization_endpoint", "", "authorization endpoint (without issuer)"),
			func(c *Config) *string { return &c.SSO.Generic.AuthorizationEndpoint }),
		stringVar(def("GENERIC_TOKEN_ENDPOINT", "sso.generic.token_endpoint", "", "token endpoint (without issuer)"),
			func(c *Config) *string { return &c.SSO.Generic.TokenEndpoint }),
		stringVar(def("GENERIC_USERINFO_ENDPOINT", "sso.generic.userinfo_endpoint", "", "userinfo endpoint (without issuer)"),
			func(c *Config) *string { return &c.SSO.Generic.UserinfoEndpoint }),
		stringVar(def("GENERIC_SCOPE", "sso.generic.scope", "openid email profile", "space-separated scopes"),
			func(c *Config) *string { return &c.SSO.Generic.Scope }),
		stringVar(def("GENERIC_USER_ID_ATTRIBUTE", "sso.generic.user_id_attribute", "sub", "claim holding the stable user id (LiteLLM's default preferred_username is mutable)"),
			func(c *Config) *string { return &c.SSO.Generic.UserIDAttribute }),
		stringVar(def("GENERIC_USER_EMAIL_ATTRIBUTE", "sso.generic.email_attribute", "email", "claim holding the email"),
			func(c *Config) *string { return &c.SSO.Generic.EmailAttribute }),
		stringVar(def("GENERIC_USER_DISPLAY_NAME_ATTRIBUTE", "sso.generic.display_name_attribute", "name", "claim holding the display name"),
			func(c *Config) *string { return &c.SSO.Generic.DisplayNameAttribute }),
		stringVar(def("GENERIC_USER_ROLE_ATTRIBUTE", "sso.generic.role_attribute", "", "claim holding a role; its values must be role names unless sso.role_mapping maps them"),
			func(c *Config) *string { return &c.SSO.Generic.RoleAttribute }),

		// SSO: Google and Microsoft.
		stringVar(def("GOOGLE_CLIENT_ID", "sso.google.client_id", "", "Google OAuth client id; enables Google sign-in"),
			func(c *Config) *string { return &c.SSO.Google.ClientID }),
		stringVar(def("GOOGLE_CLIENT_SECRET", "sso.google.client_secret", "", "Google OAuth client secret"),
			func(c *Config) *string { return &c.SSO.Google.ClientSecret }).secret(),
		stringVar(def("MICROSOFT_CLIENT_ID", "sso.microsoft.client_id", "", "Entra ID client id; enables Microsoft sign-in"),
			func(c *Config) *string { return &c.SSO.Microsoft.ClientID }),
		stringVar(def("MICROSOFT_CLIENT_SECRET", "sso.microsoft.client_secret", "", "Entra ID client secret"),
			func(c *Config) *string { return &c.SSO.Microsoft.ClientSecret }).secret(),
		stringVar(def("MICROSOFT_TENANT", "sso.microsoft.tenant", "", "Entra ID tenant id (required with the client id)"),
			func(c *Config) *string { return &c.SSO.Microsoft.Tenant }),

		// SSO: who may log in and as what.
		listVar(def("ALLOWED_EMAIL_DOMAINS", "sso.allowed_email_domains", "", "comma-separated email domains allowed to sign in by SSO; empty = any"),
			func(c *Config) *[]string { return &c.SSO.AllowedEmailDomains }, normalizeDomain),
		stringVar(def("PROXY_ADMIN_ID", "sso.proxy_admin_id", "", "SSO user id made proxy_admin on login"),
			func(c *Config) *string { return &c.SSO.ProxyAdminID }),
		boolVar(def("KEYGATE_SSO_TEAMS_FROM_GROUPS", "sso.teams_from_groups", "false", "set team memberships from the IdP groups claim"),
			func(c *Config) *bool { return &c.SSO.TeamsFromGroups }),
		roleMappingSetting(),

		// SMTP.
		stringVar(def("SMTP_HOST", "smtp.host", "", "mail server; empty = no mail"),
			func(c *Config) *string { return &c.SMTP.Host }),
		intVar(def("SMTP_PORT", "smtp.port", "587", "mail server port"),
			func(c *Config) *int { return &c.SMTP.Port }),
		stringVar(def("SMTP_USERNAME", "smtp.username", "", "SMTP AUTH user"),
			func(c *Config) *string { return &c.SMTP.Username }),
		stringVarNorm(def("SMTP_PASSWORD", "smtp.password", "", "SMTP AUTH password (taken verbatim)"),
			func(c *Config) *string { return &c.SMTP.Password }, verbatim).secret(),
		stringVarNorm(def("SMTP_TLS", "smtp.tls", SMTPTLSStartTLS, "starttls, tls (implicit) or none; true/false as in LiteLLM"),
			func(c *Config) *string { return &c.SMTP.TLS }, normalizeSMTPTLS),
		stringVar(def("SMTP_SENDER_EMAIL", "smtp.sender_email", "", "From address of invitation mail"),
			func(c *Config) *string { return &c.SMTP.SenderEmail }),

		// Upstream forwarding.
		urlVar(def("KEYGATE_UPSTREAM_URL", "upstream.url", "", "LLM proxy to forward /v1/* to; empty = no forwarding"),
			func(c *Config) **url.URL { return &c.Upstream.URL }),
		stringVar(def("KEYGATE_UPSTREAM_KEY", "upstream.key", "", "key sent to the upstream in place of the client's"),
			func(c *Config) *string { return &c.Upstream.Key }).secret(),
		durationVar(def("KEYGATE_UPSTREAM_TIMEOUT", "upstream.timeout", "10m", "upstream request timeout; 0 = no limit"),
			func(c *Config) *time.Duration { return &c.Upstream.Timeout }),
		listVar(def("KEYGATE_UPSTREAM_PATHS", "upstream.paths", "/v1/,/chat/completions,/completions,/embeddings,/models", "comma-separated path prefixes forwarded upstream (with KEYGATE_UPSTREAM_URL)"),
			func(c *Config) *[]string { return &c.Upstream.Paths }, nil),
		intVar(def("KEYGATE_ESTIMATE_MAX_TOKENS", "upstream.estimate_max_tokens", "1024", "output tokens assumed, when reserving a forwarded call's cost against budgets, for a call without max_tokens"),
			func(c *Config) *int { return &c.Upstream.EstimateMaxTokens }),
		boolVar(def("KEYGATE_FAIL_CLOSED", "upstream.fail_closed", "false", "refuse metered forwarding (503) while spend cannot be written to the database; false = spool it to the data dir and replay it"),
			func(c *Config) *bool { return &c.Upstream.FailClosed }),

		// Logging and metrics.
		stringVarNorm(def("KEYGATE_LOG_LEVEL", "log.level", "info", "debug, info, warn or error"),
			func(c *Config) *string { return &c.Log.Level }, lowerTrim),
		stringVarNorm(def("KEYGATE_LOG_FORMAT", "log.format", "text", "text or json"),
			func(c *Config) *string { return &c.Log.Format }, lowerTrim),
		stringVar(def("KEYGATE_METRICS_TOKEN", "metrics.token", "", "bearer token required on /metrics; empty = served without a token (labels carry no user data; keep it off the internet)"),
			func(c *Config) *string { return &c.Metrics.Token }).secret(),

		modelPricesSetting(),
	}
}

func lowerTrim(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
func upperTrim(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// verbatim keeps passwords exactly as given: a password may end in a space.
func verbatim(s string) string { return s }
