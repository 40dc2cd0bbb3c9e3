package config

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateAcceptsDefaultsAndFullConfig(t *testing.T) {
	require.NoError(t, Default().Validate())
	c, err := load(t, "", allEnv())
	require.NoError(t, err)
	require.NoError(t, c.Validate())
}

func TestValidate(t *testing.T) {
	u := func(raw string) *url.URL {
		parsed, err := url.Parse(raw)
		require.NoError(t, err)
		return parsed
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // each must appear in the error
	}{
		{"addr without port", func(c *Config) { c.Server.Addr = "localhost" }, []string{"KEYGATE_ADDR (server.addr)", "not host:port"}},
		{"unknown MFA role", func(c *Config) { c.Auth.MFARequiredRoles = []string{"proxy_admin", "admin"} },
			[]string{"KEYGATE_MFA_REQUIRED_ROLES (auth.mfa_required_roles)", `"admin" is not a role`}},
		{"addr port out of range", func(c *Config) { c.Server.Addr = ":70000" }, []string{"KEYGATE_ADDR", "0 to 65535"}},
		{"TLS cert without key", func(c *Config) { c.Server.TLSCertFile = "/c.pem" }, []string{"KEYGATE_TLS_KEY_FILE", "KEYGATE_TLS_CERT_FILE is"}},
		{"TLS key without cert", func(c *Config) { c.Server.TLSKeyFile = "/k.pem" }, []string{"KEYGATE_TLS_CERT_FILE (server.tls_cert_file): must be set"}},
		{"zero header timeout", func(c *Config) { c.Server.ReadHeaderTimeout = 0 }, []string{"KEYGATE_READ_HEADER_TIMEOUT", "positive"}},
		{"negative write timeout", func(c *Config) { c.Server.WriteTimeout = -time.Second }, []string{"KEYGATE_WRITE_TIMEOUT", "negative"}},
		{"zero body limit", func(c *Config) { c.Server.MaxBodyBytes = 0 }, []string{"KEYGATE_MAX_BODY_BYTES"}},
		{"negative header limit", func(c *Config) { c.Server.MaxHeaderBytes = -1 }, []string{"KEYGATE_MAX_HEADER_BYTES"}},
		{"bad trusted proxy", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, []string{"KEYGATE_TRUSTED_PROXIES", `"proxy.local"`}},
		{"mysql database", func(c *Config) { c.Database.URL = "mysql://u:p@h/db" }, []string{"DATABASE_URL", "postgres://"}},
		{"empty data dir", func(c *Config) { c.Database.DataDir = "" }, []string{"KEYGATE_DATA_DIR"}},
		{"negative pool", func(c *Config) { c.Database.MaxOpenConns = -1; c.Database.MaxIdleConns = -2 }, []string{"KEYGATE_DB_MAX_OPEN_CONNS", "KEYGATE_DB_MAX_IDLE_CONNS"}},
		// README once said 0 meant an unlimited pool; the store took 10.
		{"zero pool", func(c *Config) { c.Database.MaxOpenConns = 0 }, []string{"KEYGATE_DB_MAX_OPEN_CONNS", "at least 1"}},
		{"negative lifetime", func(c *Config) { c.Database.ConnMaxLifetime = -time.Minute }, []string{"KEYGATE_DB_CONN_MAX_LIFETIME"}},
		{"master key without sk-", func(c *Config) { c.Auth.MasterKey = "master" }, []string{"LITELLM_MASTER_KEY (auth.master_key)", `must start with "sk-"`}},
		{"master key only prefix", func(c *Config) { c.Auth.MasterKey = "sk-" }, []string{"LITELLM_MASTER_KEY", "after"}},
		{"master key with space", func(c *Config) { c.Auth.MasterKey = "sk-a b" }, []string{"LITELLM_MASTER_KEY", "whitespace"}},
		{"short secret", func(c *Config) { c.Auth.Secret = "short" }, []string{"KEYGATE_SECRET", "16"}},
		{"password without user", func(c *Config) { c.Auth.UIPassword = "pw"; c.Auth.UIUsername = "" }, []string{"UI_USERNAME"}},
		{"token outlives session", func(c *Config) { c.Auth.TokenTTL = 48 * time.Hour }, []string{"KEYGATE_TOKEN_TTL", "longer than the session"}},
		{"zero session", func(c *Config) { c.Auth.SessionTTL = 0 }, []string{"LITELLM_UI_SESSION_DURATION", "positive"}},
		{"zero cache TTL", func(c *Config) { c.Auth.CacheTTL = 0 }, []string{"KEYGATE_CACHE_TTL", "from 1s to 1h"}},
		{"sub-second cache TTL", func(c *Config) { c.Auth.CacheTTL = 500 * time.Millisecond }, []string{"KEYGATE_CACHE_TTL", "from 1s to 1h"}},
		{"day-long cache TTL", func(c *Config) { c.Auth.CacheTTL = 24 * time.Hour }, []string{"KEYGATE_CACHE_TTL", "from 1s to 1h"}},
		{"unknown JWT alg", func(c *Config) { c.Auth.JWTAlgorithm = "HS256" }, []string{"KEYGATE_JWT_ALGORITHM", `"HS256"`}},
		{"rotation shorter than token", func(c *Config) { c.Auth.SigningKeyRotation = time.Minute }, []string{"KEYGATE_SIGNING_KEY_ROTATION", "longer than KEYGATE_TOKEN_TTL"}},
		{"zero invitation TTL", func(c *Config) { c.Auth.InvitationTTL = 0 }, []string{"KEYGATE_INVITATION_TTL"}},
		{"password login off without SSO", func(c *Config) { c.Auth.PasswordLoginDisabled = true }, []string{"KEYGATE_PASSWORD_LOGIN_DISABLED", "no SSO provider"}},
		{"relative base URL", func(c *Config) { c.URLs.ProxyBaseURL = u("/keygate") }, []string{"PROXY_BASE_URL", "absolute http(s)"}},
		{"ftp base URL", func(c *Config) { c.URLs.ProxyBaseURL = u("ftp://example.com") }, []string{"PROXY_BASE_URL"}},
		{"base URL with query", func(c *Config) { c.URLs.ProxyBaseURL = u("https://example.com/?a=1") }, []string{"PROXY_BASE_URL", "query"}},
		{"relative LLM base URL", func(c *Config) { c.URLs.LLMBaseURL = u("/v1") }, []string{"KEYGATE_LLM_BASE_URL", "absolute http(s)"}},
		{"LLM base URL with credentials", func(c *Config) { c.URLs.LLMBaseURL = u("https://me:pw@llm.example.com/v1") }, []string{"KEYGATE_LLM_BASE_URL", "credentials"}},
		{"LLM base URL with query", func(c *Config) { c.URLs.LLMBaseURL = u("https://llm.example.com/v1?a=1") }, []string{"KEYGATE_LLM_BASE_URL", "query"}},
		{"logout URL without host", func(c *Config) { c.URLs.ProxyLogoutURL = u("https:///path") }, []string{"PROXY_LOGOUT_URL", "host"}},
		{"bad allowlist entry", func(c *Config) { c.URLs.LogoutRedirectAllowlist = []string{"example.com"} }, []string{"KEYGATE_LOGOUT_REDIRECT_ALLOWLIST"}},
		{"generic client id without issuer or endpoints", func(c *Config) {
			c.SSO.Generic.ClientID = "kg"
			c.SSO.Generic.TokenEndpoint = "https://idp.example.com/token"
		}, []string{"GENERIC_CLIENT_ID", "GENERIC_AUTHORIZATION_ENDPOINT, GENERIC_USERINFO_ENDPOINT"}},
		{"generic settings without client id", func(c *Config) { c.SSO.Generic.Issuer = "https://idp.example.com" }, []string{"GENERIC_CLIENT_ID", "GENERIC_ISSUER is"}},
		{"generic issuer over plain http", func(c *Config) {
			c.SSO.Generic.ClientID = "kg"
			c.SSO.Generic.Issuer = "http://idp.example.com"
		}, []string{"GENERIC_ISSUER", "https"}},
		{"generic scope without openid", func(c *Config) {
			c.SSO.Generic.ClientID = "kg"
			c.SSO.Generic.Issuer = "https://idp.example.com"
			c.SSO.Generic.Scope = "email"
		}, []string{"GENERIC_SCOPE", "openid"}},
		{"generic empty attributes", func(c *Config) {
			c.SSO.Generic.ClientID = "kg"
			c.SSO.Generic.Issuer = "https://idp.example.com"
			c.SSO.Generic.UserIDAttribute = ""
			c.SSO.Generic.EmailAttribute = ""
		}, []string{"GENERIC_USER_ID_ATTRIBUTE", "GENERIC_USER_EMAIL_ATTRIBUTE"}},
		{"google id without secret", func(c *Config) { c.SSO.Google.ClientID = "g" }, []string{"GOOGLE_CLIENT_SECRET"}},
		{"microsoft without tenant", func(c *Config) {
			c.SSO.Microsoft.ClientID = "m"
			c.SSO.Microsoft.ClientSecret = "s"
		}, []string{"MICROSOFT_TENANT", "MICROSOFT_CLIENT_ID is"}},
		{"bad email domain", func(c *Config) { c.SSO.AllowedEmailDomains = []string{"user@example.com", "localhost"} }, []string{`"user@example.com"`, `"localhost"`}},
		{"unknown mapped role", func(c *Config) {
			c.SSO.RoleMapping = RoleMapping{Claim: "groups", Map: map[string]string{"admins": "admin"}, DefaultRole: RoleInternalUser}
		}, []string{"sso.role_mapping", `"admin" is not one of`}},
		{"unknown default role", func(c *Config) { c.SSO.RoleMapping.DefaultRole = "guest" }, []string{"sso.role_mapping", `default_role "guest"`}},
		{"map without claim", func(c *Config) { c.SSO.RoleMapping.Map = map[string]string{"a": RoleProxyAdmin} }, []string{"claim must be set"}},
		{"no default role and no deny", func(c *Config) { c.SSO.RoleMapping.DefaultRole = "" }, []string{"default_role must be set"}},
		{"SMTP host without sender", func(c *Config) { c.SMTP.Host = "smtp.example.com" }, []string{"SMTP_SENDER_EMAIL", "SMTP_HOST is"}},
		{"SMTP bad sender", func(c *Config) { c.SMTP.SenderEmail = "not an address" }, []string{"SMTP_SENDER_EMAIL", "not an email address"}},
		{"SMTP port zero", func(c *Config) { c.SMTP.Port = 0 }, []string{"SMTP_PORT"}},
		{"SMTP unknown TLS mode", func(c *Config) { c.SMTP.TLS = "maybe" }, []string{"SMTP_TLS", `"maybe"`}},
		{"SMTP user without password", func(c *Config) {
			c.SMTP.Host, c.SMTP.SenderEmail, c.SMTP.Username = "smtp.example.com", "a@example.com", "u"
		}, []string{"SMTP_PASSWORD"}},
		{"SMTP password in clear text", func(c *Config) {
			c.SMTP.Host, c.SMTP.SenderEmail, c.SMTP.Username, c.SMTP.Password = "smtp.example.com", "a@example.com", "u", "p"
			c.SMTP.TLS = SMTPTLSNone
		}, []string{"SMTP_TLS", "clear text"}},
		{"upstream key without URL", func(c *Config) { c.Upstream.Key = "sk-up" }, []string{"KEYGATE_UPSTREAM_URL", "KEYGATE_UPSTREAM_KEY is"}},
		{"upstream bad URL", func(c *Config) { c.Upstream.URL = u("litellm:4000") }, []string{"KEYGATE_UPSTREAM_URL"}},
		{"upstream relative path", func(c *Config) { c.Upstream.Paths = []string{"v1"} }, []string{"KEYGATE_UPSTREAM_PATHS", `"v1"`}},
		{"upstream without paths", func(c *Config) { c.Upstream.URL = u("http://litellm:4000"); c.Upstream.Paths = nil }, []string{"KEYGATE_UPSTREAM_PATHS", "empty"}},
		{"negative upstream timeout", func(c *Config) { c.Upstream.Timeout = -1 }, []string{"KEYGATE_UPSTREAM_TIMEOUT"}},
		{"bad log level", func(c *Config) { c.Log.Level = "trace" }, []string{"KEYGATE_LOG_LEVEL", `"trace"`}},
		{"bad log format", func(c *Config) { c.Log.Format = "xml" }, []string{"KEYGATE_LOG_FORMAT"}},
		{"negative price", func(c *Config) {
			c.ModelPrices = map[string]ModelPrice{"gpt": {InputPerMillion: -1}, "nan": {OutputPerMillion: math.NaN()}}
		}, []string{`model_prices: "gpt"`, `model_prices: "nan"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			err := c.Validate()
			require.Error(t, err)
			for _, want := range tt.want {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestValidateAllowsLoopbackHTTPForTestIdPs(t *testing.T) {
	c := Default()
	c.SSO.Generic.ClientID = "kg"
	c.SSO.Generic.Issuer = "http://127.0.0.1:9999"
	require.NoError(t, c.Validate())
	c.SSO.Generic.Issuer = "http://localhost:9999/realms/x"
	require.NoError(t, c.Validate())

	c = Default()
	c.SMTP = SMTP{Host: "127.0.0.1", Port: 1025, Username: "u", Password: "p", TLS: SMTPTLSNone, SenderEmail: "kg@example.com"}
	require.NoError(t, c.Validate())
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Server.TLSCertFile = "/c.pem"
	c.Auth.MasterKey = "nope"
	c.Auth.JWTAlgorithm = "none"
	c.SMTP.Host = "smtp.example.com"
	c.Log.Level = "loud"
	err := c.Validate()
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 5, err.Error())
}
