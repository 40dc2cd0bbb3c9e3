// Package sso is Keygate's OpenID Connect relying party: it builds the
// authorization request (code flow, PKCE S256, state, nonce), exchanges the
// code, verifies the ID token and turns it into a plain Identity, builds
// RP-initiated logout URLs and verifies back-channel logout tokens. It also
// holds the pure decisions around an SSO login: sealing the flow state into
// a cookie, mapping claims to a role and checking the e-mail domain.
//
// It knows nothing of HTTP routes, users or sessions; the handlers that link
// an Identity to a user live elsewhere.
package sso

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can tell a hostile or broken response from a misconfiguration.
var (
	// ErrConfig: the provider is misconfigured (or its discovery failed).
	ErrConfig = errors.New("sso: provider configuration")
	// ErrExchange: the token endpoint refused the code (replayed, expired,
	// PKCE mismatch, bad client credentials) or could not be reached.
	ErrExchange = errors.New("sso: code exchange failed")
	// ErrInvalidToken: an ID token or logout token failed verification.
	ErrInvalidToken = errors.New("sso: invalid token")
	// ErrInvalidState: a flow-state cookie is forged, corrupt or expired.
	ErrInvalidState = errors.New("sso: invalid flow state")
	// ErrDenied: role mapping found no role and is set to deny.
	ErrDenied = errors.New("sso: login denied: no role mapped")
)

// Identity is what a successful login says about the user. Users are
// linked by (Issuer, Subject), never by Email alone.
type Identity struct {
	// Provider is the Keygate name of the provider that logged the user in.
	Provider string
	Issuer   string
	Subject  string
	Email    string
	// EmailVerified is the IdP's word that Email belongs to the user; an
	// unverified e-mail must never link to an existing account.
	EmailVerified bool
	Name          string
	Groups        []string
	// Claims are the ID token's claims merged with userinfo's (the ID
	// token wins where both have a claim).
	Claims map[string]any
	// IDToken is the raw ID token, kept only as id_token_hint for logout.
	// It is a credential: never log it.
	IDToken string
	// SID is the IdP session id ("sid"), matched by back-channel logout.
	SID string
}

// LogoutClaims is what a verified back-channel logout token names: the
// sessions to end are those of Subject at Issuer, or the one with SID.
type LogoutClaims struct {
	Issuer  string
	Subject string
	SID     string
	// JTI identifies the token; a caller that wants replay protection
	// remembers it until Expires.
	JTI     string
	Expires time.Time
}

// Provider is one configured OpenID provider.
type Provider interface {
	// Name is the provider's key in URLs and config (e.g. "google").
	Name() string
	// DisplayName is shown on the login button.
	DisplayName() string
	// LoginURL is the authorization request for a flow started with
	// NewFlow: state and nonce as given, PKCE S256 from pkceVerifier.
	LoginURL(state, nonce, pkceVerifier string) string
	// Exchange redeems code and returns the verified identity. nonce and
	// pkceVerifier are the values the flow was started with.
	Exchange(ctx context.Context, code, pkceVerifier, nonce string) (Identity, error)
	// EndSessionURL is the RP-initiated logout URL, or "" when the
	// provider has no end_session_endpoint.
	EndSessionURL(idTokenHint, postLogoutRedirect string) string
	// VerifyLogoutToken verifies an OIDC back-channel logout token.
	VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error)
}
