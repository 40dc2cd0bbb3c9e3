package config

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultsWithEmptyEnv(t *testing.T) {
	c, err := load(t, "", nil)
	require.NoError(t, err)
	require.Equal(t, Default(), c)

	require.Equal(t, "127.0.0.1:4100", c.Server.Addr)
	require.Equal(t, 10*time.Second, c.Server.ReadHeaderTimeout)
	require.Equal(t, 60*time.Second, c.Server.ReadTimeout)
	require.Equal(t, 10*time.Minute, c.Server.WriteTimeout)
	require.Equal(t, 120*time.Second, c.Server.IdleTimeout)
	require.Equal(t, 30*time.Second, c.Server.ShutdownTimeout)
	require.Equal(t, 5*time.Second, c.Server.ShutdownDelay)
	require.Equal(t, 64<<10, c.Server.MaxHeaderBytes)
	require.Equal(t, int64(1<<20), c.Server.MaxBodyBytes)
	require.Empty(t, c.Server.TrustedProxies)
	require.False(t, c.TLSEnabled())

	require.Empty(t, c.Database.URL)
	require.Equal(t, "keygate-data", c.Database.DataDir)
	require.Equal(t, filepath.Join("keygate-data", "keygate.db"), c.SQLitePath(), "data lives in its own directory, not the working directory")
	require.Equal(t, 20, c.Database.MaxOpenConns)
	require.Equal(t, 10, c.Database.MaxIdleConns)
	require.Equal(t, 30*time.Minute, c.Database.ConnMaxLifetime)
	require.Equal(t, 2*time.Second, c.Database.Timeout)
	require.Equal(t, 2*time.Second, c.Database.AcquireTimeout)

	require.Empty(t, c.Auth.MasterKey)
	require.Empty(t, c.Auth.Secret)
	require.Equal(t, "admin", c.Auth.UIUsername)
	require.Equal(t, 24*time.Hour, c.Auth.SessionTTL)
	require.Equal(t, 15*time.Minute, c.Auth.TokenTTL)
	require.Equal(t, 30*time.Second, c.Auth.CacheTTL)
	require.False(t, c.Auth.CacheFailClosed)
	require.Equal(t, JWTAlgorithmES256, c.Auth.JWTAlgorithm)
	require.Equal(t, 30*24*time.Hour, c.Auth.SigningKeyRotation)
	require.False(t, c.Auth.PasswordLoginDisabled)
	require.Equal(t, 168*time.Hour, c.Auth.InvitationTTL)

	require.Nil(t, c.URLs.ProxyBaseURL)
	require.Nil(t, c.URLs.ProxyLogoutURL)

	require.False(t, c.SSO.Generic.Enabled())
	require.False(t, c.SSO.Google.Enabled())
	require.False(t, c.SSO.Microsoft.Enabled())
	require.Equal(t, "openid email profile", c.SSO.Generic.Scope)
	require.Equal(t, "sub", c.SSO.Generic.UserIDAttribute)
	require.Equal(t, "email", c.SSO.Generic.EmailAttribute)
	require.Equal(t, RoleMapping{DefaultRole: RoleInternalUserViewer}, c.SSO.RoleMapping, "SSO sign-up gets the least privileged role")

	require.Equal(t, 587, c.SMTP.Port)
	require.Equal(t, SMTPTLSStartTLS, c.SMTP.TLS)
	require.Nil(t, c.Upstream.URL)
	require.Equal(t, 10*time.Minute, c.Upstream.Timeout)
	require.Equal(t, []string{"/v1/", "/chat/completions", "/completions", "/embeddings", "/models"}, c.Upstream.Paths)
	require.Equal(t, "info", c.Log.Level)
	require.Equal(t, "text", c.Log.Format)
	require.Empty(t, c.Metrics.Token)
	require.Empty(t, c.ModelPrices)
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// allEnv sets every variable Keygate reads to a valid non-default value.
func allEnv() map[string]string {
	return map[string]string{
		"KEYGATE_ADDR":                        "127.0.0.1:8080",
		"KEYGATE_TLS_CERT_FILE":               "/tls/cert.pem",
		"KEYGATE_TLS_KEY_FILE":                "/tls/key.pem",
		"KEYGATE_READ_HEADER_TIMEOUT":         "5s",
		"KEYGATE_READ_TIMEOUT":                "2m",
		"KEYGATE_WRITE_TIMEOUT":               "0",
		"KEYGATE_IDLE_TIMEOUT":                "90s",
		"KEYGATE_SHUTDOWN_TIMEOUT":            "45s",
		"KEYGATE_MAX_HEADER_BYTES":            "32KiB",
		"KEYGATE_MAX_BODY_BYTES":              "2MiB",
		"KEYGATE_TRUSTED_PROXIES":             "10.0.0.0/8, 192.168.1.1",
		"DATABASE_URL":                        "postgres://kg:pw@db:5432/keygate?sslmode=disable",
		"KEYGATE_DATA_DIR":                    "/var/lib/keygate",
		"KEYGATE_DB_MAX_OPEN_CONNS":           "50",
		"KEYGATE_DB_MAX_IDLE_CONNS":           "5",
		"KEYGATE_DB_CONN_MAX_LIFETIME":        "1h",
		"LITELLM_MASTER_KEY":                  "sk-master-1234",
		"KEYGATE_SECRET":                      "0123456789abcdef0123",
		"UI_USERNAME":                         "root",
		"UI_PASSWORD":                         " pass word ",
		"LITELLM_UI_SESSION_DURATION":         "30d",
		"KEYGATE_TOKEN_TTL":                   "10m",
		"KEYGATE_CACHE_TTL":                   "5s",
		"KEYGATE_CACHE_FAIL_CLOSED":           "true",
		"KEYGATE_JWT_ALGORITHM":               "rs256",
		"KEYGATE_SIGNING_KEY_ROTATION":        "2w",
		"KEYGATE_PASSWORD_LOGIN_DISABLED":     "True",
		"KEYGATE_INVITATION_TTL":              "3d",
		"KEYGATE_MFA_REQUIRED_ROLES":          "Proxy_Admin, proxy_admin_viewer",
		"PROXY_BASE_URL":                      "https://keygate.example.com/base",
		"PROXY_LOGOUT_URL":                    "https://example.com/bye",
		"KEYGATE_LLM_BASE_URL":                "https://llm.example.com/v1",
		"KEYGATE_LOGOUT_REDIRECT_ALLOWLIST":   "https://app.example.com/, https://docs.example.com",
		"GENERIC_CLIENT_ID":                   "kg-client",
		"GENERIC_CLIENT_SECRET":               "generic-secret",
		"GENERIC_ISSUER":                      "https://idp.example.com",
		"GENERIC_AUTHORIZATION_ENDPOINT":      "https://idp.example.com/auth",
		"GENERIC_TOKEN_ENDPOINT":              "https://idp.example.com/token",
		"GENERIC_USERINFO_ENDPOINT":           "https://idp.example.com/userinfo",
		"GENERIC_SCOPE":                       "openid email profile groups",
		"GENERIC_USER_ID_ATTRIBUTE":           "oid",
		"GENERIC_USER_EMAIL_ATTRIBUTE":        "mail",
		"GENERIC_USER_DISPLAY_NAME_ATTRIBUTE": "preferred_username",
		"GENERIC_USER_ROLE_ATTRIBUTE":         "role",
		"GOOGLE_CLIENT_ID":                    "google-id",
		"GOOGLE_CLIENT_SECRET":                "google-secret",
		"MICROSOFT_CLIENT_ID":                 "ms-id",
		"MICROSOFT_CLIENT_SECRET":             "ms-secret",
		"MICROSOFT_TENANT":                    "tenant-1",
		"ALLOWED_EMAIL_DOMAINS":               "Example.com, @corp.example.org",
		"PROXY_ADMIN_ID":                      "admin-sub",
		"KEYGATE_SSO_TEAMS_FROM_GROUPS":       "yes",
		"SMTP_HOST":                           "smtp.example.com",
		"SMTP_PORT":                           "465",
		"SMTP_USERNAME":                       "mailer",
		"SMTP_PASSWORD":                       "mail-pw",
		"SMTP_TLS":                            "tls",
		"SMTP_SENDER_EMAIL":                   "Keygate <noreply@example.com>",
		"KEYGATE_UPSTREAM_URL":                "http://litellm:4000",
		"KEYGATE_UPSTREAM_KEY":                "sk-upstream",
		"KEYGATE_UPSTREAM_TIMEOUT":            "5m",
		"KEYGATE_UPSTREAM_PATHS":              "/v1/,/chat/completions",
		"KEYGATE_LOG_LEVEL":                   "DEBUG",
		"KEYGATE_LOG_FORMAT":                  "json",
		"KEYGATE_METRICS_TOKEN":               "metrics-token-123",
		"KEYGATE_SHUTDOWN_DELAY":              "3s",
		"KEYGATE_DB_TIMEOUT":                  "1500ms",
		"KEYGATE_DB_ACQUIRE_TIMEOUT":          "4s",
		"KEYGATE_FAIL_CLOSED":                 "true",
		"KEYGATE_ESTIMATE_MAX_TOKENS":         "2048",
	}
}

func TestEveryEnvVarParsed(t *testing.T) {
	env := allEnv()
	for _, s := range Settings() {
		if s.Env != "" {
			require.Contains(t, env, s.Env, "allEnv must exercise every setting")
		}
	}
	got, err := load(t, "", env)
	require.NoError(t, err)

	want := Default()
	want.Server = Server{
		Addr: "127.0.0.1:8080", TLSCertFile: "/tls/cert.pem", TLSKeyFile: "/tls/key.pem",
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 2 * time.Minute, WriteTimeout: 0,
		IdleTimeout: 90 * time.Second, ShutdownTimeout: 45 * time.Second, ShutdownDelay: 3 * time.Second,
		MaxHeaderBytes: 32 << 10, MaxBodyBytes: 2 << 20,
		TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"},
	}
	want.Database = Database{
		URL:     "postgres://kg:pw@db:5432/keygate?sslmode=disable",
		DataDir: "/var/lib/keygate", MaxOpenConns: 50, MaxIdleConns: 5, ConnMaxLifetime: time.Hour,
		Timeout: 1500 * time.Millisecond, AcquireTimeout: 4 * time.Second,
	}
	want.Auth = Auth{
		MasterKey: "sk-master-1234", Secret: "0123456789abcdef0123",
		UIUsername: "root", UIPassword: " pass word ",
		SessionTTL: 30 * 24 * time.Hour, TokenTTL: 10 * time.Minute, CacheTTL: 5 * time.Second, CacheFailClosed: true,
		JWTAlgorithm: JWTAlgorithmRS256, SigningKeyRotation: 14 * 24 * time.Hour,
		PasswordLoginDisabled: true, InvitationTTL: 72 * time.Hour,
		MFARequiredRoles: []string{"proxy_admin", "proxy_admin_viewer"},
	}
	want.URLs = URLs{
		ProxyBaseURL:            mustURL(t, "https://keygate.example.com/base"),
		LLMBaseURL:              mustURL(t, "https://llm.example.com/v1"),
		ProxyLogoutURL:          mustURL(t, "https://example.com/bye"),
		LogoutRedirectAllowlist: []string{"https://app.example.com/", "https://docs.example.com"},
	}
	want.SSO.Generic = GenericOIDC{
		ClientID: "kg-client", ClientSecret: "generic-secret", Issuer: "https://idp.example.com",
		AuthorizationEndpoint: "https://idp.example.com/auth", TokenEndpoint: "https://idp.example.com/token",
		UserinfoEndpoint: "https://idp.example.com/userinfo", Scope: "openid email profile groups",
		UserIDAttribute: "oid", EmailAttribute: "mail", DisplayNameAttribute: "preferred_username",
		RoleAttribute: "role",
	}
	want.SSO.Google = OAuthClient{ClientID: "google-id", ClientSecret: "google-secret"}
	want.SSO.Microsoft = Microsoft{ClientID: "ms-id", ClientSecret: "ms-secret", Tenant: "tenant-1"}
	want.SSO.AllowedEmailDomains = []string{"example.com", "corp.example.org"}
	want.SSO.ProxyAdminID = "admin-sub"
	want.SSO.TeamsFromGroups = true
	want.SMTP = SMTP{
		Host: "smtp.example.com", Port: 465, Username: "mailer", Password: "mail-pw",
		TLS: SMTPTLSImplicit, SenderEmail: "Keygate <noreply@example.com>",
	}
	want.Upstream = Upstream{
		URL: mustURL(t, "http://litellm:4000"), Key: "sk-upstream", Timeout: 5 * time.Minute,
		Paths: []string{"/v1/", "/chat/completions"}, FailClosed: true, EstimateMaxTokens: 2048,
	}
	want.Log = Log{Level: "debug", Format: "json"}
	want.Metrics = Metrics{Token: "metrics-token-123"}
	require.Equal(t, want, got)
	require.Empty(t, got.SQLitePath(), "PostgreSQL configured")
	require.True(t, got.TLSEnabled())
}

func TestEnvValueForms(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"LiteLLM boolean SMTP_TLS false", map[string]string{"SMTP_TLS": "False"},
			func(t *testing.T, c *Config) { require.Equal(t, SMTPTLSNone, c.SMTP.TLS) }},
		{"LiteLLM boolean SMTP_TLS true", map[string]string{"SMTP_TLS": "True"},
			func(t *testing.T, c *Config) { require.Equal(t, SMTPTLSStartTLS, c.SMTP.TLS) }},
		{"session duration in LiteLLM seconds", map[string]string{"LITELLM_UI_SESSION_DURATION": "7200"},
			func(t *testing.T, c *Config) { require.Equal(t, 2*time.Hour, c.Auth.SessionTTL) }},
		{"session duration hr", map[string]string{"LITELLM_UI_SESSION_DURATION": "12hr"},
			func(t *testing.T, c *Config) { require.Equal(t, 12*time.Hour, c.Auth.SessionTTL) }},
		{"empty variable is unset", map[string]string{"KEYGATE_ADDR": "", "SMTP_PORT": ""},
			func(t *testing.T, c *Config) {
				require.Equal(t, "127.0.0.1:4100", c.Server.Addr)
				require.Equal(t, 587, c.SMTP.Port)
			}},
		{"plain byte counts", map[string]string{"KEYGATE_MAX_BODY_BYTES": "4096"},
			func(t *testing.T, c *Config) { require.Equal(t, int64(4096), c.Server.MaxBodyBytes) }},
		{"data dir decides the SQLite path", map[string]string{"KEYGATE_DATA_DIR": "/data"},
			func(t *testing.T, c *Config) { require.Equal(t, "/data/keygate.db", c.SQLitePath()) }},
		{"key=value DSN", map[string]string{"DATABASE_URL": "host=db user=kg dbname=keygate"},
			func(t *testing.T, c *Config) { require.Equal(t, "host=db user=kg dbname=keygate", c.Database.URL) }},
		{"unknown LiteLLM variables are ignored", map[string]string{
			"LITELLM_LICENSE": "x", "STORE_MODEL_IN_DB": "True", "LITELLM_LOG": "DEBUG", "SERVER_ROOT_PATH": "/x",
		}, func(t *testing.T, c *Config) { require.Equal(t, Default(), c) }},
		{"reserved KEYGATE_ variables are not typos", map[string]string{
			"KEYGATE_CONFIG": "/etc/keygate.yaml", "KEYGATE_TEST_POSTGRES": "1", "KEYGATE_LITELLM_MIGRATIONS": "/x",
			"KEYGATE_HYDRA_BIN": "/x", "KEYGATE_UPDATE_SCREENSHOTS": "1", "KEYGATE_SCREENSHOT_DIR": "/x", "KEYGATE_DBTEST_HELPER": "1",
		}, func(t *testing.T, c *Config) { require.Equal(t, Default(), c) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "", tt.env)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestAliases(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "KEYGATE_MASTER_KEY alone", env: map[string]string{"KEYGATE_MASTER_KEY": "sk-kg"},
			check: func(t *testing.T, c *Config) { require.Equal(t, "sk-kg", c.Auth.MasterKey) }},
		{name: "both master keys equal", env: map[string]string{"KEYGATE_MASTER_KEY": "sk-same", "LITELLM_MASTER_KEY": "sk-same"},
			check: func(t *testing.T, c *Config) { require.Equal(t, "sk-same", c.Auth.MasterKey) }},
		{name: "master keys differ", env: map[string]string{"KEYGATE_MASTER_KEY": "sk-one", "LITELLM_MASTER_KEY": "sk-two"},
			wantErr: []string{"LITELLM_MASTER_KEY", "KEYGATE_MASTER_KEY", "different"}},
		{name: "LITELLM_SALT_KEY alone", env: map[string]string{"LITELLM_SALT_KEY": "salt-0123456789abcdef"},
			check: func(t *testing.T, c *Config) { require.Equal(t, "salt-0123456789abcdef", c.Auth.Secret) }},
		{name: "secrets differ", env: map[string]string{"LITELLM_SALT_KEY": "salt-0123456789abcdef", "KEYGATE_SECRET": "other-0123456789abcdef"},
			wantErr: []string{"KEYGATE_SECRET", "LITELLM_SALT_KEY", "different"}},
		{name: "KEYGATE_SESSION_TTL alone", env: map[string]string{"KEYGATE_SESSION_TTL": "8h"},
			check: func(t *testing.T, c *Config) { require.Equal(t, 8*time.Hour, c.Auth.SessionTTL) }},
		{name: "session TTLs differ", env: map[string]string{"KEYGATE_SESSION_TTL": "8h", "LITELLM_UI_SESSION_DURATION": "24h"},
			wantErr: []string{"LITELLM_UI_SESSION_DURATION", "KEYGATE_SESSION_TTL"}},
		{name: "alias with bad value names the alias", env: map[string]string{"KEYGATE_MASTER_KEY": "nope"},
			wantErr: []string{"LITELLM_MASTER_KEY", `"sk-"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "", tt.env)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				for _, v := range tt.env {
					require.NotContains(t, err.Error(), v, "secret value echoed")
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestUnknownKeygateVariable(t *testing.T) {
	_, err := load(t, "", map[string]string{"KEYGATE_ADR": ":5000", "KEYGATE_LOGLEVEL": "debug", "KEYGATE_FROBNICATE": "1"})
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "KEYGATE_ADR: unknown variable (did you mean KEYGATE_ADDR?)")
	require.Contains(t, msg, "KEYGATE_LOGLEVEL: unknown variable (did you mean KEYGATE_LOG_LEVEL?)")
	require.Contains(t, msg, "KEYGATE_FROBNICATE: unknown variable")
	require.NotContains(t, msg, ":5000")
}

func TestEnvErrorsAreCollected(t *testing.T) {
	_, err := load(t, "", map[string]string{
		"KEYGATE_TOKEN_TTL":               "soon",
		"SMTP_PORT":                       "twenty-five",
		"KEYGATE_LOG_LEVEL":               "verbose",
		"KEYGATE_DB_MAX_OPEN_CONNS":       "-1",
		"KEYGATE_TLS_CERT_FILE":           "/cert.pem",
		"KEYGATE_PASSWORD_LOGIN_DISABLED": "perhaps",
	})
	require.Error(t, err)
	multi, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "want an errors.Join error")
	names := map[string]bool{}
	for _, e := range multi.Unwrap() {
		name, _, _ := strings.Cut(e.Error(), "=")
		name, _, _ = strings.Cut(name, ":")
		name, _, _ = strings.Cut(name, " ")
		names[name] = true
	}
	for _, want := range []string{"KEYGATE_TOKEN_TTL", "SMTP_PORT", "KEYGATE_LOG_LEVEL", "KEYGATE_DB_MAX_OPEN_CONNS", "KEYGATE_TLS_KEY_FILE", "KEYGATE_PASSWORD_LOGIN_DISABLED"} {
		require.True(t, names[want], "missing %s in %v", want, names)
	}
	require.GreaterOrEqual(t, len(names), 3)
	require.Contains(t, err.Error(), `KEYGATE_TOKEN_TTL="soon": not a duration`)
}
