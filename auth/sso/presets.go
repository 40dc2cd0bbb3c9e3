package sso

import (
	"context"
	"fmt"
	"strings"
)

// Issuers of the presets.
const (
	GoogleIssuer       = "https://accounts.google.com"
	microsoftAuthority = "https://login.microsoftonline.com"
)

// NewGoogle is the Google preset (GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET).
// Google has no end_session_endpoint, so EndSessionURL returns "".
func NewGoogle(ctx context.Context, clientID, secret, redirectURL string) (*Generic, error) {
	return NewGeneric(ctx, GenericOptions{
		Name: "google", DisplayName: "Google", ClientID: clientID, ClientSecret: secret,
		Issuer: GoogleIssuer, RedirectURL: redirectURL,
	})
}

// MicrosoftIssuer is the v2.0 issuer of an Entra ID tenant (a tenant id or
// domain, or "common", "organizations", "consumers").
func MicrosoftIssuer(tenant string) string {
	return microsoftAuthority + "/" + tenant + "/v2.0"
}

// multiTenant reports whether tenant names Microsoft's shared endpoints,
// whose tokens carry the user's own tenant in iss.
func multiTenant(tenant string) bool {
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// NewMicrosoft is the Microsoft Entra ID preset (MICROSOFT_CLIENT_ID /
// _SECRET / _TENANT). Groups come from the "groups" claim, then app roles
// from "roles". For the shared tenants (common, organizations) the issuer
// is checked per token as https://login.microsoftonline.com/<tid>/v2.0.
func NewMicrosoft(ctx context.Context, clientID, secret, tenant, redirectURL string) (*Generic, error) {
	if tenant == "" || strings.ContainsAny(tenant, "/?#") {
		return nil, fmt.Errorf("%w: microsoft: tenant %q is not valid", ErrConfig, tenant)
	}
	x := genericExtras{extraGroupsClaims: []string{"roles"}}
	if multiTenant(tenant) {
		x.issuerTemplate = MicrosoftIssuer("{tenantid}")
	}
	return newGeneric(ctx, GenericOptions{
		Name: "microsoft", DisplayName: "Microsoft", ClientID: clientID, ClientSecret: secret,
		Issuer: MicrosoftIssuer(tenant), RedirectURL: redirectURL,
	}, x)
}
