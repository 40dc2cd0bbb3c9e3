package service

import (
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
)

const (
	maxIDLen    = 255
	maxAliasLen = 255
	maxModels   = 1000
)

func validID(param, id string) error {
	if id == "" {
		return apperr.InvalidParam(param, "%s must not be empty.", param)
	}
	if len(id) > maxIDLen {
		return apperr.InvalidParam(param, "%s is longer than %d characters.", param, maxIDLen)
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return apperr.InvalidParam(param, "%s must not contain spaces or control characters.", param)
		}
	}
	return nil
}

func validAlias(param, s string) error {
	if len(s) > maxAliasLen {
		return apperr.InvalidParam(param, "%s is longer than %d characters.", param, maxAliasLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return apperr.InvalidParam(param, "%s must not contain control characters.", param)
		}
	}
	return nil
}

// validEmail accepts a bare address (no display name) of sane length.
func validEmail(param, s string) error {
	if len(s) > 254 {
		return apperr.InvalidParam(param, "%s is too long.", param)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return apperr.InvalidParam(param, "%s is not a valid e-mail address.", param)
	}
	return nil
}

func validRole(param, role string) (rbac.Role, error) {
	r := rbac.Role(role)
	if !r.Valid() {
		return "", apperr.InvalidParam(param, "Unknown role %q; valid roles are proxy_admin, proxy_admin_viewer, internal_user, internal_user_viewer.", truncate(role, 40))
	}
	return r, nil
}

func validTeamRole(param, role string) (rbac.TeamRole, error) {
	if role == "" {
		return rbac.TeamRoleUser, nil
	}
	r := rbac.TeamRole(role)
	if !r.Valid() {
		return "", apperr.InvalidParam(param, "Unknown team role %q; valid team roles are admin and user.", truncate(role, 40))
	}
	return r, nil
}

func validBudget(param string, v *float64) error {
	if v == nil {
		return nil
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 {
		return apperr.InvalidParam(param, "%s must be a non-negative number.", param)
	}
	return nil
}

func validLimit(param string, v *int64) error {
	if v != nil && *v < 0 {
		return apperr.InvalidParam(param, "%s must not be negative.", param)
	}
	return nil
}

func validModels(param string, models []string) error {
	if len(models) > maxModels {
		return apperr.InvalidParam(param, "%s lists more than %d models.", param, maxModels)
	}
	for _, m := range models {
		if strings.TrimSpace(m) == "" || len(m) > maxAliasLen {
			return apperr.InvalidParam(param, "%s contains an empty or over-long model name.", param)
		}
	}
	return nil
}

// ParseDuration parses LiteLLM's duration strings ("30s", "30m", "30h",
// "30d", "2w", "1mo"). A month is counted as 30 days, as LiteLLM does for
// budget resets.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && i < 7 && in[i] >= '0' && in[i] <= '9' {
		i++
	}
	units := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
		"w": 7 * 24 * time.Hour, "mo": 30 * 24 * time.Hour}
	unit, ok := units[in[i:]]
	n, err := strconv.Atoi(in[:i])
	if i == 0 || i > 6 || !ok || err != nil {
		return 0, apperr.Invalid("Invalid duration %q: use a number followed by s, m, h, d, w or mo (e.g. \"30d\").", truncate(s, 40))
	}
	if n <= 0 {
		return 0, apperr.Invalid("Invalid duration %q: must be positive.", truncate(s, 40))
	}
	// Checked before multiplying: 999999d would overflow time.Duration
	// and wrap around to a date in the past.
	if int64(n) > int64(MaxDuration/unit) {
		return 0, apperr.Invalid("Invalid duration %q: at most ten years (3650d).", truncate(s, 40))
	}
	return time.Duration(n) * unit, nil
}

// MaxDuration is the longest duration accepted anywhere (key expiry,
// budget periods): ten years.
const MaxDuration = 3650 * 24 * time.Hour

func validDuration(param string, s *string) error {
	if s == nil || *s == "" {
		return nil
	}
	if _, err := ParseDuration(*s); err != nil {
		e, _ := apperr.As(err)
		e.Param = param
		return e
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
