package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/keygate/keygate/auth/sso"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/service"
)

// ssoProviders builds every configured identity provider. Discovery runs
// now, so a wrong GENERIC_ISSUER fails start-up with a clear message
// instead of failing the first user.
func ssoProviders(ctx context.Context, cfg *config.Config, base string) ([]sso.Provider, error) {
	redirect := base + "/sso/callback"
	var out []sso.Provider
	if g := cfg.SSO.Generic; g.Enabled() {
		opts := sso.GenericOptions{Name: "generic", DisplayName: "SSO", ClientID: g.ClientID, ClientSecret: g.ClientSecret,
			Issuer: g.Issuer, AuthorizationEndpoint: g.AuthorizationEndpoint, TokenEndpoint: g.TokenEndpoint,
			UserinfoEndpoint: g.UserinfoEndpoint, RedirectURL: redirect, UserIDAttribute: g.UserIDAttribute,
			EmailAttribute: g.EmailAttribute, NameAttribute: g.DisplayNameAttribute}
		if g.Scope != "" {
			opts.Scopes = strings.Fields(g.Scope)
		}
		if g.Issuer != "" {
			opts.DisplayName = hostOf(g.Issuer)
		}
		p, err := sso.NewGeneric(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("generic OIDC provider (GENERIC_ISSUER / GENERIC_*_ENDPOINT): %w", err)
		}
		out = append(out, p)
	}
	if cfg.SSO.Google.Enabled() {
		p, err := sso.NewGoogle(ctx, cfg.SSO.Google.ClientID, cfg.SSO.Google.ClientSecret, redirect)
		if err != nil {
			return nil, fmt.Errorf("Google provider (GOOGLE_CLIENT_ID): %w", err)
		}
		out = append(out, p)
	}
	if m := cfg.SSO.Microsoft; m.Enabled() {
		p, err := sso.NewMicrosoft(ctx, m.ClientID, m.ClientSecret, m.Tenant, redirect)
		if err != nil {
			return nil, fmt.Errorf("Microsoft provider (MICROSOFT_CLIENT_ID / MICROSOFT_TENANT): %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

func ssoPolicy(cfg *config.Config) service.SSOPolicy {
	rm := cfg.SSO.RoleMapping
	pol := service.SSOPolicy{RoleMapping: sso.RoleMapping{Claim: rm.Claim, Map: rm.Map, DefaultRole: rm.DefaultRole,
		DenyIfUnmapped: rm.DenyIfUnmapped}, AllowedEmailDomains: cfg.SSO.AllowedEmailDomains,
		ProxyAdminID: cfg.SSO.ProxyAdminID, TeamsFromGroups: cfg.SSO.TeamsFromGroups}
	if pol.RoleMapping.Claim == "" && cfg.SSO.Generic.RoleAttribute != "" && len(pol.RoleMapping.Map) == 0 {
		// GENERIC_USER_ROLE_ATTRIBUTE (LiteLLM): the claim holds a role
		// name; only the four real roles are honoured.
		pol.RoleMapping.Claim = cfg.SSO.Generic.RoleAttribute
		pol.RoleMapping.Map = map[string]string{}
		for _, r := range config.Roles() {
			pol.RoleMapping.Map[r] = r
		}
	}
	return pol
}

func newMailer(cfg *config.Config, log *slog.Logger) (service.Mailer, error) {
	if cfg.SMTP.Host == "" {
		return nil, nil
	}
	m, err := mail.New(mail.Options{Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username,
		Password: cfg.SMTP.Password, TLS: cfg.SMTP.TLS, From: cfg.SMTP.SenderEmail, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("SMTP settings: %w", err)
	}
	return app.Mailer(m), nil
}
