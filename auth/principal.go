// Package auth resolves who is calling: it turns a credential found on a
// request (master key, API key, session JWT) into a Principal. The
// credential formats, hashing and token code live in the sub-packages
// (auth/apikey, auth/password, auth/session, auth/sso); this package holds
// the Principal, the Authenticator interface and the chain that tries each
// authenticator in turn.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"unsafe"

	"github.com/keygate/keygate/rbac"
)

// Method says how a principal authenticated.
type Method string

// Authentication methods.
const (
	MethodMasterKey Method = "master_key"
	MethodAPIKey    Method = "api_key"
	MethodSession   Method = "session"
)

// Principal is the resolved identity behind a request. Handlers and the
// service layer decide everything from it; they never look at raw
// credentials.
type Principal struct {
	Method Method
	// UserID is empty for the master key (whose actor id is MasterActorID)
	// and for ownerless API keys.
	UserID string
	Email  string
	// Role is the owner's current role; empty for an ownerless key, which
	// rbac then grants nothing.
	Role    rbac.Role
	TeamIDs []string
	// KeyHash, KeyAlias, KeyTeamID, KeyType: set when authenticated by an
	// API key.
	KeyHash   string
	KeyAlias  string
	KeyTeamID string
	KeyType   string
	// SessionID is set when authenticated by a session JWT.
	SessionID string
	// ViaCookie: the credential came from the session cookie, so
	// state-changing requests must carry a CSRF token.
	ViaCookie bool
	// Access holds what /auth/verify needs beyond identity (models,
	// budgets); nil for the master key.
	Access *Access
	// header caches the identity header values (HeaderValues), built once
	// when the principal is cached; shared, never modified.
	header *[5][]string
}

// HeaderValues returns the values of the identity headers a verified
// request carries onward — user id, role, key id (hash), team (the key's:
// a personal key or a session acts for no team) and key alias — as
// one-element slices ready for an http.Header. The slices are shared
// between requests: callers must not modify them.
func (p Principal) HeaderValues() [5][]string {
	if p.header != nil {
		return *p.header
	}
	return buildHeaderValues(p)
}

func buildHeaderValues(p Principal) [5][]string {
	return [5][]string{{p.UserID}, {string(p.Role)}, {p.KeyHash}, {p.KeyTeamID}, {p.KeyAlias}}
}

// withHeaderValues returns p carrying its identity header values, for
// principals that are cached and served many times.
func (p Principal) withHeaderValues() Principal {
	h := buildHeaderValues(p)
	p.header = &h
	return p
}

// Access is the state of a key, its owner and its team at authentication
// time, from which the access decision (internal/access) decides route,
// budget and model questions. Which lists and budgets are present follows
// LiteLLM's scoping: a personal key or a session carries the owner's
// models and budget; a team key carries the team's models and budget and
// the member's budget in the team instead.
type Access struct {
	KeyModels  []string
	UserModels []string
	TeamModels []string
	// Routes are the key's allowed_routes; empty means no limit.
	Routes  []string
	Budgets []Budget
	// RateLimits are the tpm/rpm limits that apply: the key's, its
	// owner's (across all the owner's keys) and its team's (across the
	// team's keys), as in LiteLLM.
	RateLimits []RateLimit
}

// RateLimit is one tokens-per-minute / requests-per-minute limit; nil
// means no limit of that kind.
type RateLimit struct {
	Scope    string // "key", "user" or "team"
	ID       string // BudgetID(Scope, ...): one bucket per key, user or team
	TPM, RPM *int64
}

func appendRateLimit(l []RateLimit, scope, id string, tpm, rpm *int64) []RateLimit {
	if tpm == nil && rpm == nil {
		return l
	}
	return append(l, RateLimit{Scope: scope, ID: id, TPM: tpm, RPM: rpm})
}

// Budget is one spend limit that applies to a request.
type Budget struct {
	Scope string // "key", "user", "team" or "team member"
	// ID names the budget across requests (BudgetID), for spend recorded
	// in place and for reservations.
	ID    string
	Spend float64
	Max   float64
	// ResetDue: the budget period has ended and its spend is about to be
	// reset, so it does not block.
	ResetDue bool
}

// BudgetID names a budget: the key's, a user's, a team's, or a member's
// budget in a team.
func BudgetID(scope, keyHash, userID, teamID string) string {
	switch scope {
	case "key":
		return "key:" + keyHash
	case "user":
		return "user:" + userID
	case "team":
		return "team:" + teamID
	case "team member":
		return "member:" + teamID + ":" + userID
	}
	return scope
}

// MasterActorID is the actor id recorded for changes made with the master
// key (LiteLLM's default_user_id).
const MasterActorID = "default_user_id"

// ActorID is the id written to created_by / audit for this principal.
func (p Principal) ActorID() string {
	switch {
	case p.Method == MethodMasterKey:
		return MasterActorID
	case p.UserID != "":
		return p.UserID
	case p.KeyHash != "":
		return "key:" + p.KeyHash
	default:
		return "anonymous"
	}
}

// Can reports whether the principal may exercise perm: its role must hold
// it and, for API keys, the key's type must allow it (an llm_api key of an
// admin cannot manage users), unless the key type itself grants it.
func (p Principal) Can(perm rbac.Permission) bool {
	if perm == rbac.PermSCIM {
		// Provisioning acts for the identity provider, not for a person:
		// the master key, or a key of type scim that belongs to nobody (a
		// person's key, even an admin's, never provisions).
		return p.Method == MethodMasterKey || (p.Method == MethodAPIKey && p.KeyType == rbac.KeyTypeSCIM && p.UserID == "")
	}
	if rbac.KeyTypeGrants(p.KeyType, perm) {
		return true
	}
	return rbac.Can(p.Role, perm) && rbac.KeyTypeAllows(p.KeyType, perm)
}

// InTeam reports whether the principal's user belongs to team id.
func (p Principal) InTeam(id string) bool {
	for _, t := range p.TeamIDs {
		if t == id {
			return true
		}
	}
	return false
}

// Errors returned by authenticators. internal/httperr maps them to 401/503.
var (
	// ErrNoCredential: the request carries no credential at all.
	ErrNoCredential = errors.New("auth: no credential")
	// ErrNotMine: this authenticator does not recognise the credential's
	// format; the chain tries the next one.
	ErrNotMine = errors.New("auth: credential not handled")
	// ErrInvalid: the credential is unknown, malformed or its signature
	// is wrong.
	ErrInvalid = errors.New("auth: invalid credential")
	// ErrExpired: the credential was valid but has expired.
	ErrExpired = errors.New("auth: credential expired")
	// ErrBlocked: the key or its owner is blocked or disabled.
	ErrBlocked = errors.New("auth: credential blocked")
	// ErrUnavailable: the answer needs the database, which is down.
	ErrUnavailable = errors.New("auth: backing store unavailable")
)

// Credential is a secret presented by a request.
type Credential struct {
	Secret string
	// FromCookie is true when Secret came from the session cookie.
	FromCookie bool
	// Fresh: the request changes state, so the credential's standing is
	// read from the database, never from the cache. A replica that cannot
	// hear other replicas answers checks from its cache for a while
	// (README, "Caching"); a revoked credential must not use that window
	// to mint credentials or change roles that outlive it.
	Fresh bool
	// sum caches SHA-256(Secret): the master-key check, the API-key
	// lookup and the session token's signature cache all need it, and
	// Chain computes it once per request. It is held by value so the
	// credential stays on the caller's stack.
	sum    [sha256.Size]byte
	hasSum bool
}

// ChangesState reports whether a request of this method may change state,
// so that its credential is checked Fresh: anything but GET, HEAD and
// OPTIONS.
func ChangesState(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// SHA256 returns SHA-256(Secret), computed at most once per credential
// that went through Chain.
func (c Credential) SHA256() [sha256.Size]byte {
	if c.hasSum {
		return c.sum
	}
	return sumString(c.Secret)
}

// sumString is SHA-256 of s without copying s into a new byte slice (a
// credential is longer than the 32 bytes Go converts on the stack, so
// []byte(s) would allocate on every request). Sum256 only reads its
// input, so viewing the string's bytes is safe.
func sumString(s string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Authenticator turns a credential into a principal, or returns ErrNotMine
// when the credential is not of its kind.
type Authenticator interface {
	Authenticate(ctx context.Context, c Credential) (Principal, error)
}

// Chain tries each authenticator in order; the first that does not answer
// ErrNotMine decides.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (ch Chain) Authenticate(ctx context.Context, c Credential) (Principal, error) {
	if c.Secret == "" {
		return Principal{}, ErrNoCredential
	}
	c.sum, c.hasSum = sumString(c.Secret), true
	for _, a := range ch {
		p, err := a.Authenticate(ctx, c)
		if errors.Is(err, ErrNotMine) {
			continue
		}
		return p, err
	}
	return Principal{}, ErrInvalid
}

// CredentialHeaders are the request headers that may carry an API key or
// session JWT, in the order they are consulted; in canonical form, so the
// header map is indexed directly.
func CredentialHeaders() []string {
	return []string{"Authorization", "X-Litellm-Api-Key", "X-Api-Key", "Api-Key"}
}

// maxCredentialLen bounds what is accepted from a header; longer values are
// not credentials Keygate issues and are rejected without further work.
const maxCredentialLen = 8192

// CredentialFromRequest extracts the credential from the headers (Bearer
// or a bare key) or, failing that, from the named session cookie.
func CredentialFromRequest(r *http.Request, cookieName string) Credential {
	for _, h := range CredentialHeaders() {
		var v string
		if vs := r.Header[h]; len(vs) > 0 {
			v = strings.TrimSpace(vs[0])
		}
		if v == "" {
			continue
		}
		if h == "Authorization" {
			scheme, rest, ok := strings.Cut(v, " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				v = strings.TrimSpace(rest)
			} else if strings.EqualFold(v, "Bearer") {
				v = ""
			}
		}
		if v == "" || len(v) > maxCredentialLen {
			return Credential{Secret: ""}
		}
		return Credential{Secret: v}
	}
	if cookieName != "" {
		if v, ok := cookieValue(r.Header, cookieName); ok {
			if v = strings.TrimSpace(v); v != "" && len(v) <= maxCredentialLen {
				return Credential{Secret: v, FromCookie: true}
			}
		}
	}
	return Credential{}
}

// maxCookies is net/http's limit on the cookies of one request (GODEBUG
// httpcookiemaxnum, default 3000): beyond it Request.Cookie finds none.
const maxCookies = 3000

// cookieValue is (*http.Request).Cookie(name).Value by the same rules (the
// first well-formed cookie of that name, surrounding double quotes
// stripped, none at all past maxCookies), without building a Cookie and a
// slice per request: the session cookie is read on every request a
// browser sends through the proxy. name must be a valid cookie name.
func cookieValue(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies {
		return "", false
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// validCookieValue: net/http's cookie-octet rule.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
