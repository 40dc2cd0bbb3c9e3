package service

import (
	"strings"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
)

// CheckAccess applies budgets and model rules to an authenticated
// principal, for /auth/verify and the forwarding proxy alike: 429 when any
// budget is used up, 403 when model is not allowed by the key, its owner or
// its team. An empty model skips the model check.
func CheckAccess(p auth.Principal, model string) error {
	if !rbac.KeyTypeCallsModels(p.KeyType) {
		return apperr.Forbidden("This key is a SCIM provisioning token; it may only call /scim/v2.")
	}
	a := p.Access
	if a == nil {
		return nil
	}
	for _, b := range a.Budgets {
		if !b.ResetDue && b.Spend >= b.Max {
			e := apperr.Forbidden("Budget exceeded: the %s has spent %.4f of its %.4f budget.", b.Scope, b.Spend, b.Max)
			e.Kind = apperr.KindBudgetExceeded
			return e
		}
	}
	if model == "" {
		return nil
	}
	for _, list := range []struct {
		scope  string
		models []string
	}{{"key", a.KeyModels}, {"user", a.UserModels}, {"team", a.TeamModels}} {
		if !modelAllowed(list.models, model) {
			return apperr.Forbidden("Model %q is not allowed for this %s.", truncate(model, 80), list.scope)
		}
	}
	return nil
}

func modelAllowed(models []string, model string) bool {
	if len(models) == 0 {
		return true
	}
	for _, m := range models {
		if m == model || m == "*" || m == "all-proxy-models" {
			return true
		}
		if strings.HasSuffix(m, "/*") && strings.HasPrefix(model, strings.TrimSuffix(m, "*")) {
			return true
		}
	}
	return false
}
