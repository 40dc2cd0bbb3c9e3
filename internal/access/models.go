// Package access is Keygate's access decision: given an authenticated
// principal (with the state of its key, owner, team and membership, as
// auth loaded and cached it) and what a request asks for (route, models,
// estimated cost), allow it or say why not. /auth/verify, the forwarding
// proxy, the management API and the web UI all decide through Decide, and
// key creation and update narrow model lists with the same matcher, so no
// two places can disagree about what a rule means.
//
// The package is pure: no I/O, no clock of its own, no state.
package access

import "strings"

// LiteLLM's special model names (LiteLLM proxy/auth/auth_checks.py and
// the UI): every model, the team's models, no personal models.
const (
	AllProxyModels  = "all-proxy-models"
	AllTeamModels   = "all-team-models"
	NoDefaultModels = "no-default-models"
)

// Unrestricted reports whether list permits every model: it is empty, or
// it holds "*" or all-proxy-models.
func Unrestricted(list []string) bool {
	if len(list) == 0 {
		return true
	}
	for _, m := range list {
		if m == "*" || m == AllProxyModels {
			return true
		}
	}
	return false
}

// ModelAllowed reports whether list permits model. An unrestricted list
// permits everything; an entry containing '*' is a glob in which '*'
// matches any run of characters, '/' included ("openai/*",
// "claude-3-*"); any other entry must equal the model. The special names
// all-team-models and no-default-models match no model here: the first is
// resolved against the team by the caller, the second grants nothing.
func ModelAllowed(list []string, model string) bool {
	if Unrestricted(list) {
		return true
	}
	for _, m := range list {
		if m == model && m != AllTeamModels && m != NoDefaultModels {
			return true
		}
		if strings.Contains(m, "*") && glob(m, model) {
			return true
		}
	}
	return false
}

// Narrows reports whether every model that child permits is permitted by
// parent, and if not, names the first entry of child that is not covered
// ("" when child permits every model). An entry of child is covered when
// parent permits it read literally: a glob in parent that matches the text
// "openai/gpt-*" matches every model that glob can, because each '*' of the
// child is absorbed by a '*' of the parent.
func Narrows(parent, child []string) (string, bool) {
	if Unrestricted(parent) {
		return "", true
	}
	if Unrestricted(child) {
		return "", false
	}
	for _, c := range child {
		if c == AllTeamModels || c == NoDefaultModels {
			continue // grant nothing beyond what the team or nobody has
		}
		if !ModelAllowed(parent, c) {
			return c, false
		}
	}
	return "", true
}

// glob matches s against pattern, where '*' matches any run of bytes.
func glob(pattern, s string) bool {
	// Split on '*': the first part must prefix s, the last suffix it, and
	// the middle ones appear in order between them.
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
