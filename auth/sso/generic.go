package sso

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// GenericOptions configures a generic OpenID Connect provider. The names
// follow LiteLLM's GENERIC_* environment variables.
type GenericOptions struct {
	// Name is the provider's key in URLs ([a-z0-9_-], e.g. "okta").
	Name string
	// DisplayName is shown on the login button (defaults to Name).
	DisplayName  string
	ClientID     string
	ClientSecret string
	// Issuer (GENERIC_ISSUER) turns on discovery; endpoints set below then
	// override the discovered ones. Without it, AuthorizationEndpoint,
	// TokenEndpoint and JWKSURL are required, and the ID token's iss is
	// not checked (the JWKS, i.e. the signing keys, is then the anchor).
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	UserinfoEndpoint      string
	JWKSURL               string
	// EndSessionEndpoint overrides (or, without discovery, supplies) the
	// RP-initiated logout endpoint.
	EndSessionEndpoint string
	// Scopes requested; "openid" is always added. Default: openid email
	// profile.
	Scopes []string
	// RedirectURL is Keygate's /sso/callback URL, registered at the IdP.
	RedirectURL string
	// UserIDAttribute is the claim used as Identity.Subject (default "sub").
	UserIDAttribute string
	// EmailAttribute is the claim used as Identity.Email (default "email").
	EmailAttribute string
	// NameAttribute is the claim used as Identity.Name (default "name",
	// falling back to given_name + family_name).
	NameAttribute string
	// GroupsClaim is the claim read into Identity.Groups (default
	// "groups"); a string or a list of strings.
	GroupsClaim string
	// HTTPClient is used for discovery, JWKS, token and userinfo calls
	// (default: a client with a 15 s timeout).
	HTTPClient *http.Client
}

// genericExtras are knobs only presets set.
type genericExtras struct {
	// issuerTemplate ("…/{tenantid}/v2.0") replaces the exact issuer
	// check for multi-tenant Microsoft endpoints: iss must equal the
	// template with the token's tid.
	issuerTemplate string
	// extraGroupsClaims are read after GroupsClaim (Entra app roles).
	extraGroupsClaims []string
}

// safeAlgs are the asymmetric algorithms ID tokens may be signed with; a
// provider advertising HS256 or none does not widen this list.
func safeAlgs() []string {
	return []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
		oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}
}

// Generic is an OpenID Connect provider; Google and Microsoft are presets
// of it.
type Generic struct {
	name, display  string
	clientID       string
	issuer         string // expected iss; "" when unchecked or templated
	issuerTemplate string
	oauth          oauth2.Config
	provider       *oidc.Provider
	verifier       *oidc.IDTokenVerifier
	logoutVerifier *oidc.IDTokenVerifier // signature, iss, aud only
	endSession     string
	userIDAttr     string
	emailAttr      string
	nameAttr       string
	groupsClaims   []string
	client         *http.Client
}

// NewGeneric configures a provider, fetching the discovery document when
// Issuer is set.
func NewGeneric(ctx context.Context, opts GenericOptions) (*Generic, error) {
	return newGeneric(ctx, opts, genericExtras{})
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func newGeneric(ctx context.Context, opts GenericOptions, x genericExtras) (*Generic, error) {
	switch {
	case !validName(opts.Name):
		return nil, fmt.Errorf("%w: provider name %q must be 1-64 of [a-z0-9_-]", ErrConfig, opts.Name)
	case opts.ClientID == "":
		return nil, fmt.Errorf("%w: %s: client id is required", ErrConfig, opts.Name)
	}
	if u, err := url.Parse(opts.RedirectURL); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("%w: %s: redirect URL %q must be absolute", ErrConfig, opts.Name, opts.RedirectURL)
	}
	g := &Generic{
		name: opts.Name, display: cmpOr(opts.DisplayName, opts.Name), clientID: opts.ClientID,
		userIDAttr: cmpOr(opts.UserIDAttribute, "sub"), emailAttr: cmpOr(opts.EmailAttribute, "email"),
		nameAttr: cmpOr(opts.NameAttribute, "name"), client: opts.HTTPClient,
		issuerTemplate: x.issuerTemplate,
	}
	g.groupsClaims = append([]string{cmpOr(opts.GroupsClaim, "groups")}, x.extraGroupsClaims...)
	if g.client == nil {
		g.client = &http.Client{Timeout: 15 * time.Second}
	}
	ctx = oidc.ClientContext(ctx, g.client)

	cfg := oidc.ProviderConfig{
		IssuerURL: opts.Issuer, AuthURL: opts.AuthorizationEndpoint, TokenURL: opts.TokenEndpoint,
		UserInfoURL: opts.UserinfoEndpoint, JWKSURL: opts.JWKSURL,
	}
	g.endSession = opts.EndSessionEndpoint
	if opts.Issuer != "" {
		dctx := ctx
		if x.issuerTemplate != "" {
			// Multi-tenant discovery documents name the template, not
			// the URL they are served from; iss is checked per token.
			dctx = oidc.InsecureIssuerURLContext(ctx, x.issuerTemplate)
		}
		p, err := oidc.NewProvider(dctx, opts.Issuer)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: discovery from %s: %w", ErrConfig, opts.Name, opts.Issuer, err)
		}
		var d struct {
			oidc.ProviderConfig
			EndSession string `json:"end_session_endpoint"`
		}
		if err := p.Claims(&d); err != nil {
			return nil, fmt.Errorf("%w: %s: discovery document: %w", ErrConfig, opts.Name, err)
		}
		cfg.IssuerURL = cmpOr(x.issuerTemplate, opts.Issuer)
		cfg.AuthURL = cmpOr(cfg.AuthURL, d.AuthURL)
		cfg.TokenURL = cmpOr(cfg.TokenURL, d.TokenURL)
		cfg.UserInfoURL = cmpOr(cfg.UserInfoURL, d.UserInfoURL)
		cfg.JWKSURL = cmpOr(cfg.JWKSURL, d.JWKSURL)
		g.endSession = cmpOr(g.endSession, d.EndSession)
	}
	switch {
	case cfg.AuthURL == "" || cfg.TokenURL == "":
		return nil, fmt.Errorf("%w: %s: set GENERIC_ISSUER (discovery) or both GENERIC_AUTHORIZATION_ENDPOINT and GENERIC_TOKEN_ENDPOINT",
			ErrConfig, opts.Name)
	case cfg.JWKSURL == "":
		// ID tokens are only ever accepted with a verified signature.
		return nil, fmt.Errorf("%w: %s: no JWKS URL to verify ID token signatures: set GENERIC_ISSUER (discovery) or GENERIC_JWKS_URL",
			ErrConfig, opts.Name)
	}
	g.provider = cfg.NewProvider(ctx)
	if x.issuerTemplate == "" {
		g.issuer = opts.Issuer
	}
	vc := oidc.Config{ClientID: opts.ClientID, SupportedSigningAlgs: safeAlgs(), SkipIssuerCheck: g.issuer == ""}
	g.verifier = g.provider.Verifier(&vc)
	lvc := vc
	lvc.SkipExpiryCheck = true // exp is optional in logout tokens
	g.logoutVerifier = g.provider.Verifier(&lvc)

	scopes := opts.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	g.oauth = oauth2.Config{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, RedirectURL: opts.RedirectURL,
		Endpoint: g.provider.Endpoint(), Scopes: scopes,
	}
	return g, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Name implements Provider.
func (g *Generic) Name() string { return g.name }

// DisplayName implements Provider.
func (g *Generic) DisplayName() string { return g.display }

// LoginURL implements Provider.
func (g *Generic) LoginURL(state, nonce, pkceVerifier string) string {
	return g.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkceVerifier))
}

// EndSessionURL implements Provider. client_id is sent too, so providers
// can match post_logout_redirect_uri even without a hint.
func (g *Generic) EndSessionURL(idTokenHint, postLogoutRedirect string) string {
	if g.endSession == "" {
		return ""
	}
	u, err := url.Parse(g.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	q.Set("client_id", g.clientID)
	u.RawQuery = q.Encode()
	return u.String()
}

// checkIssuer applies the multi-tenant issuer rule when one is set (the
// exact-issuer case is already checked by the verifier).
func (g *Generic) checkIssuer(iss string, claims map[string]any) error {
	if g.issuerTemplate == "" {
		return nil
	}
	tid, _ := claims["tid"].(string)
	if !validTenantID(tid) {
		return fmt.Errorf("%w: multi-tenant token without a valid tid", ErrInvalidToken)
	}
	if want := strings.ReplaceAll(g.issuerTemplate, "{tenantid}", tid); iss != want {
		return fmt.Errorf("%w: issuer %q does not match tenant issuer %q", ErrInvalidToken, iss, want)
	}
	return nil
}

// validTenantID accepts what Entra tenant ids are (GUIDs) and domain-like
// names, nothing that could reshape the issuer URL.
func validTenantID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
