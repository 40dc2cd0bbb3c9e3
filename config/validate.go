package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Roles lists the role names role mappings may use, most privileged first.
func Roles() []string {
	return []string{RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer}
}

// Validate reports every problem of c at once (errors.Join, one line each,
// naming the variable and YAML key). It never quotes a secret value. Load
// calls it; call it again after changing a Config by hand.
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

// checker collects problems, labelled by setting name.
type checker struct {
	labels map[string]string
	errs   []error
}

func (v *checker) addf(name, format string, args ...any) {
	label, ok := v.labels[name]
	if !ok {
		label = name
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", label, fmt.Sprintf(format, args...)))
}

func (c *Config) problems() []error {
	v := &checker{labels: make(map[string]string)}
	for _, s := range settingTable() {
		v.labels[s.Name()] = s.label()
	}
	c.checkServer(v)
	c.checkDatabase(v)
	c.checkAuth(v)
	c.checkURLs(v)
	c.checkSSO(v)
	c.checkSMTP(v)
	c.checkUpstream(v)
	c.checkLog(v)
	return v.errs
}

func (v *checker) notNegative(name string, d time.Duration) {
	if d < 0 {
		v.addf(name, "must not be negative")
	}
}

func (v *checker) positive(name string, d time.Duration) {
	if d <= 0 {
		v.addf(name, "must be positive")
	}
}

func (c *Config) checkServer(v *checker) {
	s := c.Server
	if _, port, err := net.SplitHostPort(s.Addr); err != nil {
		v.addf("KEYGATE_ADDR", `%q is not host:port (e.g. "127.0.0.1:4100" or ":4100")`, s.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		v.addf("KEYGATE_ADDR", "port %q is not a number from 0 to 65535", port)
	}
	if s.TLSCertFile != "" && s.TLSKeyFile == "" {
		v.addf("KEYGATE_TLS_KEY_FILE", "must be set when KEYGATE_TLS_CERT_FILE is")
	}
	if s.TLSKeyFile != "" && s.TLSCertFile == "" {
		v.addf("KEYGATE_TLS_CERT_FILE", "must be set when KEYGATE_TLS_KEY_FILE is")
	}
	if s.ReadHeaderTimeout <= 0 {
		v.addf("KEYGATE_READ_HEADER_TIMEOUT", "must be positive (it bounds slow clients)")
	}
	v.notNegative("KEYGATE_READ_TIMEOUT", s.ReadTimeout)
	v.notNegative("KEYGATE_WRITE_TIMEOUT", s.WriteTimeout)
	v.notNegative("KEYGATE_IDLE_TIMEOUT", s.IdleTimeout)
	v.notNegative("KEYGATE_SHUTDOWN_TIMEOUT", s.ShutdownTimeout)
	v.notNegative("KEYGATE_SHUTDOWN_DELAY", s.ShutdownDelay)
	if s.MaxHeaderBytes <= 0 {
		v.addf("KEYGATE_MAX_HEADER_BYTES", "must be positive")
	}
	if s.MaxBodyBytes <= 0 {
		v.addf("KEYGATE_MAX_BODY_BYTES", "must be positive")
	}
	for _, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			v.addf("KEYGATE_TRUSTED_PROXIES", "%q is not an IP address or CIDR", p)
		}
	}
}

func (c *Config) checkDatabase(v *checker) {
	d := c.Database
	if d.URL != "" {
		u, err := url.Parse(d.URL)
		isURL := err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
		isDSN := !strings.Contains(d.URL, "://") && strings.Contains(d.URL, "=")
		if !isURL && !isDSN {
			// The value may hold a password, so it is not quoted.
			v.addf("DATABASE_URL", "must be a postgres:// URL or a key=value DSN; leave it empty for SQLite")
		}
	} else if strings.TrimSpace(d.DataDir) == "" {
		v.addf("KEYGATE_DATA_DIR", "must not be empty when DATABASE_URL is not set")
	}
	if d.MaxOpenConns < 1 {
		// No "unlimited": an unbounded pool can take every connection the
		// server allows (max_connections) from the other replicas.
		v.addf("KEYGATE_DB_MAX_OPEN_CONNS", "must be at least 1")
	}
	if d.MaxIdleConns < 0 {
		v.addf("KEYGATE_DB_MAX_IDLE_CONNS", "must not be negative")
	}
	v.notNegative("KEYGATE_DB_CONN_MAX_LIFETIME", d.ConnMaxLifetime)
	if d.Timeout <= 0 {
		v.addf("KEYGATE_DB_TIMEOUT", "must be positive (a database call without a bound can hang every request)")
	}
	if d.AcquireTimeout <= 0 {
		v.addf("KEYGATE_DB_ACQUIRE_TIMEOUT", "must be positive (a database call without a bound can hang every request)")
	}
}

func (c *Config) checkAuth(v *checker) {
	a := c.Auth
	if a.MasterKey != "" {
		switch {
		case !strings.HasPrefix(a.MasterKey, "sk-"):
			v.addf("LITELLM_MASTER_KEY", `must start with "sk-"`)
		case len(a.MasterKey) == len("sk-"):
			v.addf("LITELLM_MASTER_KEY", `must have characters after "sk-"`)
		case strings.IndexFunc(a.MasterKey, unicode.IsSpace) >= 0:
			v.addf("LITELLM_MASTER_KEY", "must not contain whitespace")
		}
	}
	if a.Secret != "" && utf8.RuneCountInString(a.Secret) < 16 {
		v.addf("KEYGATE_SECRET", "must be at least 16 characters")
	}
	if a.UIPassword != "" && strings.TrimSpace(a.UIUsername) == "" {
		v.addf("UI_USERNAME", "must not be empty when UI_PASSWORD is set")
	}
	v.positive("LITELLM_UI_SESSION_DURATION", a.SessionTTL)
	v.positive("KEYGATE_TOKEN_TTL", a.TokenTTL)
	if a.TokenTTL > 0 && a.SessionTTL > 0 && a.TokenTTL > a.SessionTTL {
		v.addf("KEYGATE_TOKEN_TTL", "must not be longer than the session (LITELLM_UI_SESSION_DURATION)")
	}
	if a.CacheTTL < time.Second || a.CacheTTL > time.Hour {
		v.addf("KEYGATE_CACHE_TTL", "must be from 1s to 1h (it bounds how long a revoked key can be answered from a cut-off replica's cache)")
	}
	if a.JWTAlgorithm != JWTAlgorithmES256 && a.JWTAlgorithm != JWTAlgorithmRS256 {
		v.addf("KEYGATE_JWT_ALGORITHM", "%q is not ES256 or RS256", a.JWTAlgorithm)
	}
	v.positive("KEYGATE_SIGNING_KEY_ROTATION", a.SigningKeyRotation)
	if a.SigningKeyRotation > 0 && a.SigningKeyRotation <= a.TokenTTL {
		v.addf("KEYGATE_SIGNING_KEY_ROTATION", "must be longer than KEYGATE_TOKEN_TTL")
	}
	v.positive("KEYGATE_INVITATION_TTL", a.InvitationTTL)
	for _, r := range a.MFARequiredRoles {
		if !slices.Contains(Roles(), r) {
			v.addf("KEYGATE_MFA_REQUIRED_ROLES", "%q is not a role (%s)", r, strings.Join(Roles(), ", "))
		}
	}
	if a.PasswordLoginDisabled && !c.SSO.Generic.Enabled() && !c.SSO.Google.Enabled() && !c.SSO.Microsoft.Enabled() {
		v.addf("KEYGATE_PASSWORD_LOGIN_DISABLED", "no SSO provider is configured, so nobody could log in to the UI")
	}
}

// checkHTTPURL checks an absolute http(s) URL; with tlsOnly, plain http is
// allowed only to loopback (local test IdPs), never across a network.
func (v *checker) checkHTTPURL(name string, u *url.URL, tlsOnly bool) {
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		v.addf(name, "must be an absolute http(s) URL")
	case u.Host == "":
		v.addf(name, "must include a host")
	case u.User != nil:
		v.addf(name, "must not contain credentials")
	case tlsOnly && u.Scheme == "http" && !isLoopback(u.Hostname()):
		v.addf(name, "must use https (http only for localhost)")
	}
}

func (v *checker) checkURLString(name, raw string, tlsOnly bool) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.addf(name, "not a valid URL")
		return
	}
	v.checkHTTPURL(name, u, tlsOnly)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c *Config) checkURLs(v *checker) {
	if u := c.URLs.ProxyBaseURL; u != nil {
		v.checkHTTPURL("PROXY_BASE_URL", u, false)
		if u.RawQuery != "" || u.Fragment != "" {
			v.addf("PROXY_BASE_URL", "must not have a query or fragment")
		}
	}
	if u := c.URLs.LLMBaseURL; u != nil {
		v.checkHTTPURL("KEYGATE_LLM_BASE_URL", u, false)
		if u.RawQuery != "" || u.Fragment != "" {
			v.addf("KEYGATE_LLM_BASE_URL", "must not have a query or fragment (clients append paths to it)")
		}
	}
	if u := c.URLs.ProxyLogoutURL; u != nil {
		v.checkHTTPURL("PROXY_LOGOUT_URL", u, false)
	}
	for _, raw := range c.URLs.LogoutRedirectAllowlist {
		v.checkURLString("KEYGATE_LOGOUT_REDIRECT_ALLOWLIST", raw, false)
	}
}

func (c *Config) checkSSO(v *checker) {
	g := c.SSO.Generic
	others := map[string]string{
		"GENERIC_CLIENT_SECRET":          g.ClientSecret,
		"GENERIC_ISSUER":                 g.Issuer,
		"GENERIC_AUTHORIZATION_ENDPOINT": g.AuthorizationEndpoint,
		"GENERIC_TOKEN_ENDPOINT":         g.TokenEndpoint,
		"GENERIC_USERINFO_ENDPOINT":      g.UserinfoEndpoint,
	}
	if !g.Enabled() {
		for _, name := range slices.Sorted(maps.Keys(others)) {
			if others[name] != "" {
				v.addf("GENERIC_CLIENT_ID", "must be set when %s is", name)
				break
			}
		}
	} else {
		if g.Issuer == "" {
			var missing []string
			for _, name := range []string{"GENERIC_AUTHORIZATION_ENDPOINT", "GENERIC_TOKEN_ENDPOINT", "GENERIC_USERINFO_ENDPOINT"} {
				if others[name] == "" {
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				v.addf("GENERIC_CLIENT_ID", "is set but GENERIC_ISSUER is not, and without discovery %s must be set", strings.Join(missing, ", "))
			}
		} else if !slices.Contains(strings.Fields(g.Scope), "openid") {
			v.addf("GENERIC_SCOPE", `must include "openid" when GENERIC_ISSUER is set`)
		}
		if strings.TrimSpace(g.Scope) == "" {
			v.addf("GENERIC_SCOPE", "must not be empty")
		}
		if g.UserIDAttribute == "" {
			v.addf("GENERIC_USER_ID_ATTRIBUTE", "must not be empty")
		}
		if g.EmailAttribute == "" {
			v.addf("GENERIC_USER_EMAIL_ATTRIBUTE", "must not be empty")
		}
	}
	v.checkURLString("GENERIC_ISSUER", g.Issuer, true)
	v.checkURLString("GENERIC_AUTHORIZATION_ENDPOINT", g.AuthorizationEndpoint, true)
	v.checkURLString("GENERIC_TOKEN_ENDPOINT", g.TokenEndpoint, true)
	v.checkURLString("GENERIC_USERINFO_ENDPOINT", g.UserinfoEndpoint, true)

	v.pair("GOOGLE_CLIENT_ID", c.SSO.Google.ClientID, "GOOGLE_CLIENT_SECRET", c.SSO.Google.ClientSecret)
	m := c.SSO.Microsoft
	v.pair("MICROSOFT_CLIENT_ID", m.ClientID, "MICROSOFT_CLIENT_SECRET", m.ClientSecret)
	v.pair("MICROSOFT_CLIENT_ID", m.ClientID, "MICROSOFT_TENANT", m.Tenant)

	for _, d := range c.SSO.AllowedEmailDomains {
		if strings.ContainsAny(d, "@/: \t") || !strings.Contains(d, ".") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
			v.addf("ALLOWED_EMAIL_DOMAINS", "%q is not a domain name", d)
		}
	}
	c.checkRoleMapping(v)
}

// pair reports one of two settings that only make sense together.
func (v *checker) pair(aName, a, bName, b string) {
	if a != "" && b == "" {
		v.addf(bName, "must be set when %s is", aName)
	}
	if b != "" && a == "" {
		v.addf(aName, "must be set when %s is", bName)
	}
}

func (c *Config) checkRoleMapping(v *checker) {
	rm := c.SSO.RoleMapping
	const name = "sso.role_mapping"
	if rm.Claim == "" && (len(rm.Map) > 0 || rm.DenyIfUnmapped) {
		v.addf(name, "claim must be set when map or deny_if_unmapped is")
	}
	for _, value := range slices.Sorted(maps.Keys(rm.Map)) {
		if role := rm.Map[value]; !slices.Contains(Roles(), role) {
			v.addf(name, "map[%q]: %q is not one of %s", value, role, strings.Join(Roles(), ", "))
		}
	}
	switch {
	case rm.DefaultRole == "" && !rm.DenyIfUnmapped:
		v.addf(name, "default_role must be set unless deny_if_unmapped is true")
	case rm.DefaultRole != "" && !slices.Contains(Roles(), rm.DefaultRole):
		v.addf(name, "default_role %q is not one of %s", rm.DefaultRole, strings.Join(Roles(), ", "))
	}
}

func (c *Config) checkSMTP(v *checker) {
	s := c.SMTP
	if s.Port < 1 || s.Port > 65535 {
		v.addf("SMTP_PORT", "must be from 1 to 65535")
	}
	if !slices.Contains([]string{SMTPTLSStartTLS, SMTPTLSImplicit, SMTPTLSNone}, s.TLS) {
		v.addf("SMTP_TLS", "%q is not starttls, tls or none", s.TLS)
	}
	if s.SenderEmail != "" {
		if _, err := mail.ParseAddress(s.SenderEmail); err != nil {
			v.addf("SMTP_SENDER_EMAIL", "%q is not an email address", s.SenderEmail)
		}
	}
	if s.Host == "" {
		return
	}
	if s.SenderEmail == "" {
		v.addf("SMTP_SENDER_EMAIL", "must be set when SMTP_HOST is")
	}
	v.pair("SMTP_USERNAME", s.Username, "SMTP_PASSWORD", s.Password)
	if s.Password != "" && s.TLS == SMTPTLSNone && !isLoopback(s.Host) {
		v.addf("SMTP_TLS", "is none, which would send SMTP_PASSWORD in clear text to a remote server")
	}
}

func (c *Config) checkUpstream(v *checker) {
	u := c.Upstream
	if u.URL != nil {
		v.checkHTTPURL("KEYGATE_UPSTREAM_URL", u.URL, false)
		if len(u.Paths) == 0 {
			v.addf("KEYGATE_UPSTREAM_PATHS", "must not be empty when KEYGATE_UPSTREAM_URL is set")
		}
	} else if u.Key != "" {
		v.addf("KEYGATE_UPSTREAM_URL", "must be set when KEYGATE_UPSTREAM_KEY is")
	}
	v.notNegative("KEYGATE_UPSTREAM_TIMEOUT", u.Timeout)
	if u.EstimateMaxTokens < 1 || u.EstimateMaxTokens > 10_000_000 {
		v.addf("KEYGATE_ESTIMATE_MAX_TOKENS", "must be between 1 and 10000000, got %d", u.EstimateMaxTokens)
	}
	for _, p := range u.Paths {
		if !strings.HasPrefix(p, "/") {
			v.addf("KEYGATE_UPSTREAM_PATHS", "%q must start with /", p)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(c.ModelPrices)) {
		p := c.ModelPrices[m]
		if strings.TrimSpace(m) == "" {
			v.addf("model_prices", "model names must not be empty")
		}
		if !finite(p.InputPerMillion) || !finite(p.OutputPerMillion) || p.InputPerMillion < 0 || p.OutputPerMillion < 0 {
			v.addf("model_prices", "%q: prices must be finite and not negative", m)
		}
	}
}

func (c *Config) checkLog(v *checker) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.addf("KEYGATE_LOG_LEVEL", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		v.addf("KEYGATE_LOG_FORMAT", "%q is not text or json", c.Log.Format)
	}
}

// finite reports whether f is a usable price.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
