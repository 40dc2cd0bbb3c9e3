package sso

import (
	"fmt"
	"sort"
	"strings"

	"github.com/keygate/keygate/rbac"
)

// RoleMapping maps the values of one claim to Keygate roles (the YAML
// config's sso.role_mapping). It is evaluated at every login, so removing
// a user from a group downgrades them next time.
type RoleMapping struct {
	// Claim whose values are looked up (e.g. "groups", "roles"); empty
	// means Identity.Groups.
	Claim string
	// Map from claim value (exact, case-sensitive: group ids are opaque)
	// to role.
	Map map[string]string
	// DefaultRole when nothing maps (default internal_user_viewer).
	DefaultRole string
	// DenyIfUnmapped refuses the login when nothing maps.
	DenyIfUnmapped bool
}

// Explanation says how MapRole chose a role, for /sso/explain.
type Explanation struct {
	Claim        string `json:"claim"`
	MatchedValue string `json:"matched_value,omitempty"`
	Rule         string `json:"rule"`
	Default      bool   `json:"default"`
}

// Validate checks every role named by the mapping, so a typo (LiteLLM
// #33690: internal_user_view_only) fails at startup, not silently.
func (m RoleMapping) Validate() error {
	if m.DefaultRole != "" && !rbac.Role(m.DefaultRole).Valid() {
		return fmt.Errorf("%w: role mapping: unknown default role %q", ErrConfig, m.DefaultRole)
	}
	for v, r := range m.Map {
		if !rbac.Role(r).Valid() {
			return fmt.Errorf("%w: role mapping: %q maps to unknown role %q", ErrConfig, v, r)
		}
	}
	return nil
}

// MapRole picks the role for id: of all claim values that map, the most
// privileged role wins (ties broken by the lexically smallest value, so the
// explanation is stable). When none maps, DefaultRole — or ErrDenied if
// DenyIfUnmapped.
func MapRole(cfg RoleMapping, id Identity) (rbac.Role, Explanation, error) {
	if err := cfg.Validate(); err != nil {
		return "", Explanation{}, err
	}
	claim := cfg.Claim
	values := id.Groups
	if claim == "" {
		claim = "groups"
	} else {
		values = listClaim(id.Claims[claim])
	}
	values = append([]string(nil), values...)
	sort.Strings(values)

	var best rbac.Role
	var matched string
	for _, v := range values {
		r, ok := cfg.Map[v]
		if ok && rbac.Rank(rbac.Role(r)) > rbac.Rank(best) {
			best, matched = rbac.Role(r), v
		}
	}
	if best != "" {
		return best, Explanation{
			Claim: claim, MatchedValue: matched, Rule: fmt.Sprintf("%s contains %q → %s", claim, matched, best),
		}, nil
	}
	if cfg.DenyIfUnmapped {
		return "", Explanation{Claim: claim, Rule: "no value of " + claim + " is mapped; deny_if_unmapped"},
			fmt.Errorf("%w (claim %q)", ErrDenied, claim)
	}
	def := rbac.Role(cfg.DefaultRole)
	if def == "" {
		def = rbac.RoleInternalUserViewer
	}
	return def, Explanation{Claim: claim, Rule: "no value of " + claim + " is mapped; default role " + string(def), Default: true}, nil
}

// EmailDomainAllowed reports whether email's domain is exactly one of
// allowed (case-insensitive; a leading "@" in an entry is ignored). An
// empty list allows every domain; a malformed address is never allowed.
// Only exact matches count: "evil-example.com" and "example.com.evil.io"
// do not match "example.com", and neither does a subdomain.
func EmailDomainAllowed(email string, allowed []string) bool {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n<>,;") {
		return false
	}
	domain := strings.TrimSuffix(strings.ToLower(email[at+1:]), ".")
	if domain == "" || strings.Contains(domain, "@") {
		return false
	}
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		a = strings.TrimSuffix(strings.ToLower(strings.TrimPrefix(strings.TrimSpace(a), "@")), ".")
		if a != "" && a == domain {
			return true
		}
	}
	return false
}
