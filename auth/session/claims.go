package session

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Scopes carried in the scope claim. LiteLLM's JWT auth treats a token
// whose scope contains ScopeProxyAdmin as a proxy admin.
const (
	ScopeOpenID     = "openid"
	ScopeProxyAdmin = "litellm_proxy_admin"
	// roleProxyAdmin mirrors rbac.RoleProxyAdmin; the claim is a plain
	// string so this package stays independent of the role table.
	roleProxyAdmin = "proxy_admin"
)

// Claims is what a verified session token says. Times are in UTC.
type Claims struct {
	Issuer    string
	Subject   string // user id
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	ID        string // jti
	SessionID string // sid: the session row to check for revocation
	Email     string
	Role      string
	// LoginMethod is "password", "passkey" or "sso".
	LoginMethod string
	// AMR says how the user proved who they are (RFC 8176: "pwd", "otp",
	// "hwk", "swk", "mfa"); empty for SSO sessions.
	AMR    []string
	Groups []string // team ids
	Scope  string   // space separated
}

// HasScope reports whether the space-separated scope claim contains s.
func (c Claims) HasScope(s string) bool {
	return s != "" && slices.Contains(strings.Fields(c.Scope), s)
}

// scopeFor is the scope claim for role.
func scopeFor(role string) string {
	if role == roleProxyAdmin {
		return ScopeOpenID + " " + ScopeProxyAdmin
	}
	return ScopeOpenID
}

// wireClaims is the JSON form of a token's payload.
type wireClaims struct {
	jwt.RegisteredClaims
	SessionID   string   `json:"sid,omitempty"`
	Email       string   `json:"email,omitempty"`
	Role        string   `json:"role,omitempty"`
	LoginMethod string   `json:"login_method,omitempty"`
	AMR         []string `json:"amr,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Scope       string   `json:"scope,omitempty"`
}

// Validate is called by the jwt validator after the standard checks: a
// session token without subject, session or id is not one Keygate minted.
func (w wireClaims) Validate() error {
	switch {
	case w.Subject == "":
		return errors.New("missing sub")
	case w.SessionID == "":
		return errors.New("missing sid")
	case w.ID == "":
		return errors.New("missing jti")
	case w.IssuedAt == nil:
		return errors.New("missing iat")
	}
	return nil
}

func (w *wireClaims) claims() Claims {
	c := Claims{
		Issuer: w.Issuer, Subject: w.Subject, Audience: []string(w.Audience), ID: w.ID,
		SessionID: w.SessionID, Email: w.Email, Role: w.Role, LoginMethod: w.LoginMethod, AMR: w.AMR,
		Groups: w.Groups, Scope: w.Scope,
	}
	if w.ExpiresAt != nil {
		c.ExpiresAt = w.ExpiresAt.UTC()
	}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.UTC()
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.UTC()
	}
	return c
}

// clone copies the slices so a cached value cannot be changed by a caller.
func (c Claims) clone() Claims {
	c.Audience = slices.Clone(c.Audience)
	c.Groups = slices.Clone(c.Groups)
	c.AMR = slices.Clone(c.AMR)
	return c
}

// maxTokenLen matches the credential length the auth package accepts;
// longer input is rejected before any parsing.
const maxTokenLen = 8192

// LooksLikeJWT reports whether s has the shape of a compact JWS: three
// non-empty base64url segments separated by dots. It parses nothing, so
// the authenticator chain can route a credential cheaply (API keys
// contain no dots).
func LooksLikeJWT(s string) bool {
	if len(s) > maxTokenLen {
		return false
	}
	dots, seg := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if seg == 0 || dots == 2 {
				return false
			}
			dots, seg = dots+1, 0
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			seg++
		default:
			return false
		}
	}
	return dots == 2 && seg > 0
}
