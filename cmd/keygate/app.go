package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/upstream"
	"github.com/keygate/keygate/store/gormstore"
)

// built is the running application plus what must be closed after it.
type built struct {
	*app.App
	dialect string
	close   func()
	// sessions: logins are possible (an operator secret exists).
	sessions bool
}

// buildApp opens the database and maps the configuration onto the
// application's options; this is the only place config meets the rest.
// base is the public base URL (publicBase): the session issuer and the
// base of every link that leaves the server.
// The caller runs prepareDataDir first.
func buildApp(ctx context.Context, cfg *config.Config, log *slog.Logger, masterHash [sha256.Size]byte, base string) (*built, error) {
	so := gormstore.Options{
		DatabaseURL: cfg.Database.URL, SQLitePath: cfg.SQLitePath(),
		MaxOpenConns: cfg.Database.MaxOpenConns, MaxIdleConns: cfg.Database.MaxIdleConns,
		ConnMaxLifetime: cfg.Database.ConnMaxLifetime, Logger: log,
		Timeout: cfg.Database.Timeout, AcquireTimeout: cfg.Database.AcquireTimeout,
	}
	// On SQLite there is one instance and nothing to miss: fail-closed is
	// about replicas' notifications, so it applies to PostgreSQL only.
	failClosed := cfg.Auth.CacheFailClosed && cfg.Database.URL != ""
	if failClosed {
		// The cache is trusted only while the listener proves it is alive.
		so.ListenHeartbeat = app.FailClosedHeartbeat
	}
	st, err := gormstore.Open(ctx, so)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	secret, err := operatorSecret(cfg, st.Dialect(), log)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	providers, err := ssoProviders(ctx, cfg, base)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if len(providers) > 0 && ssoOpenToAll(cfg) {
		log.Warn("SSO is on with no ALLOWED_EMAIL_DOMAINS and no sso.role_mapping: every account at the identity provider " +
			"can sign in and is created as internal_user_viewer; set ALLOWED_EMAIL_DOMAINS or a role mapping with deny_if_unmapped")
	}
	ml, err := newMailer(cfg, log)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	a, err := app.New(ctx, app.Options{
		Store: st, Notifier: st, Logger: log, MasterKeyHash: masterHash,
		TrustedProxies: cfg.Server.TrustedProxies, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Secret: secret, Issuer: base, JWTAlgorithm: cfg.Auth.JWTAlgorithm, TokenTTL: cfg.Auth.TokenTTL,
		CacheTTL: cfg.Auth.CacheTTL, CacheFailClosed: failClosed, SessionTTL: cfg.Auth.SessionTTL, SigningKeyRotation: cfg.Auth.SigningKeyRotation,
		PasswordLoginDisabled: cfg.Auth.PasswordLoginDisabled, UIUsername: cfg.Auth.UIUsername, UIPassword: cfg.Auth.UIPassword,
		SecureCookies: secureCookies(cfg), LogoutURL: urlString(cfg.URLs.ProxyLogoutURL),
		LogoutAllowlist: cfg.URLs.LogoutRedirectAllowlist, MetricsToken: cfg.Metrics.Token,
		BaseURL: base, InvitationTTL: cfg.Auth.InvitationTTL, Mailer: ml, MFARequiredRoles: cfg.Auth.MFARequiredRoles,
		SSOProviders: providers, SSOPolicy: ssoPolicy(cfg), Forwarding: forwarding(cfg),
		LLMBaseURL: strings.TrimSuffix(urlString(cfg.URLs.LLMBaseURL), "/"),
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &built{App: a, dialect: st.Dialect(), close: func() { _ = st.Close() }, sessions: secret != ""}, nil
}

// operatorSecret returns KEYGATE_SECRET / LITELLM_SALT_KEY. On SQLite
// (one instance, zero configuration) a missing secret is generated once and
// kept in the data directory, next to the database, with mode 0600, so
// logins work out of the box; with PostgreSQL every replica must share it,
// so it must be configured.
func operatorSecret(cfg *config.Config, dialect string, log *slog.Logger) (string, error) {
	if cfg.Auth.Secret != "" {
		return cfg.Auth.Secret, nil
	}
	if dialect != gormstore.DialectSQLite {
		log.Warn("KEYGATE_SECRET (or LITELLM_SALT_KEY) is not set: password login and session tokens are disabled until it is")
		return "", nil
	}
	path := filepath.Join(cfg.Database.DataDir, "keygate.secret")
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 16 {
			return s, nil
		}
		return "", fmt.Errorf("%s is shorter than 16 characters; delete it or set KEYGATE_SECRET", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	s := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s (set KEYGATE_SECRET instead): %w", path, err)
	}
	log.Info("generated an operator secret for signing keys", "file", path)
	return s, nil
}

// publicBase is where everything that leaves the server points (links in
// mail and answers, the SSO redirect URI, the session issuer):
// PROXY_BASE_URL, else the address Keygate listens on (a wildcard host
// becomes localhost). It never comes from a request's Host header, which
// a client chooses.
func publicBase(cfg *config.Config, listenAddr string) string {
	if cfg.URLs.ProxyBaseURL != nil {
		return strings.TrimSuffix(cfg.URLs.ProxyBaseURL.String(), "/")
	}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil || port == "" || port == "0" {
		port = "4100"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if cfg.TLSEnabled() {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// issuerURL is publicBase before the server listens (admin commands).
func issuerURL(cfg *config.Config) string { return publicBase(cfg, cfg.Server.Addr) }

// ssoOpenToAll: nothing but the identity provider decides who may sign
// in by SSO.
func ssoOpenToAll(cfg *config.Config) bool {
	rm := cfg.SSO.RoleMapping
	return len(cfg.SSO.AllowedEmailDomains) == 0 && rm.Claim == "" && len(rm.Map) == 0 && !rm.DenyIfUnmapped &&
		cfg.SSO.Generic.RoleAttribute == ""
}

func secureCookies(cfg *config.Config) bool {
	return cfg.TLSEnabled() || (cfg.URLs.ProxyBaseURL != nil && cfg.URLs.ProxyBaseURL.Scheme == "https")
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// forwarding maps KEYGATE_UPSTREAM_* and model_prices onto the app.
func forwarding(cfg *config.Config) app.Forwarding {
	f := app.Forwarding{URL: cfg.Upstream.URL, Key: cfg.Upstream.Key, Timeout: cfg.Upstream.Timeout, Paths: cfg.Upstream.Paths,
		Prices: map[string]upstream.Price{}, SpoolDir: cfg.Database.DataDir, FailClosed: cfg.Upstream.FailClosed,
		EstimateMaxTokens: int64(cfg.Upstream.EstimateMaxTokens)}
	for model, p := range cfg.ModelPrices {
		f.Prices[model] = upstream.Price{InputPerMillion: p.InputPerMillion, OutputPerMillion: p.OutputPerMillion}
	}
	return f
}
