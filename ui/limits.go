package ui

import (
	"errors"
	"strings"

	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/service"
)

// limitLine is one inherited limit shown under a key's own budget.
type limitLine struct {
	Text string
	Over bool
}

// whose names a key's owner from the viewer's side.
func whose(mine bool) (subject, possessive string) {
	if mine {
		return "You", "Your"
	}
	return "Its owner", "Its owner's"
}

// budgetLabel names a budget that applies to a key.
func budgetLabel(scope string, mine bool) string {
	_, poss := whose(mine)
	switch scope {
	case "key":
		return "The key's budget"
	case "user":
		return poss + " budget"
	case "team":
		return "The team's budget"
	case "team member":
		return poss + " budget in the team"
	}
	return "The " + scope + " budget"
}

// standingView turns the service's standing of a key into what its row
// shows: the models each level allows, the budgets it inherits and, when
// its requests are refused now, why — in words, from the decision's own
// figures.
func standingView(st service.KeyStanding, found, mine bool, ownModels []string) (models string, limits []limitLine, refusal string) {
	models = joinList(ownModels, "All models")
	if !found {
		return models, nil, ""
	}
	subj, poss := whose(mine)
	if a := st.Access; a != nil {
		var parts []string
		if !access.Unrestricted(a.KeyModels) {
			parts = append(parts, "Key: "+strings.Join(a.KeyModels, ", "))
		}
		if !access.Unrestricted(a.UserModels) {
			parts = append(parts, subj+" may use: "+strings.Join(a.UserModels, ", "))
		}
		if !access.Unrestricted(a.TeamModels) {
			parts = append(parts, "Team: "+strings.Join(a.TeamModels, ", "))
		}
		models = "All models"
		if len(parts) > 0 {
			models = "Models — " + strings.Join(parts, " · ")
		}
		for _, b := range a.Budgets {
			if b.Scope == "key" {
				continue // the row's own budget bar
			}
			limits = append(limits, limitLine{Text: budgetLabel(b.Scope, mine) + ": " + money(b.Spend) + " of " + money(b.Max),
				Over: !b.ResetDue && access.Exhausted(b)})
		}
	}
	switch st.Refusal {
	case "":
	case service.RefusedExpired:
		refusal = "The key has expired."
	case service.RefusedKeyBlocked:
		refusal = "The key is blocked."
	case service.RefusedOwnerBlocked:
		refusal = poss + " account is blocked."
		if mine {
			refusal = "Your account is blocked."
		}
	case service.RefusedTeamBlocked:
		refusal = "Its team is blocked."
	case service.RefusedNotInTeam:
		if mine {
			refusal = "You are no longer a member of its team."
		} else {
			refusal = "Its owner is no longer a member of its team."
		}
	case service.RefusedGone:
		refusal = "Its owner or its team no longer exists."
	case service.RefusedBudget:
		refusal = budgetLabel(st.Budget.Scope, mine) + " of " + money(st.Budget.Max) + " is used up (" + money(st.Budget.Spend) + " spent)."
	default:
		refusal = st.Message
	}
	if refusal != "" {
		refusal = "Requests are refused now: " + lowerFirst(refusal)
	}
	return models, limits, refusal
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// scopeMessage words a key that would exceed its holder's limits
// (service.ScopeError) for the person filling in the form; ok is false
// for any other error.
func scopeMessage(err error, mine bool) (string, bool) {
	var se *service.ScopeError
	if !errors.As(err, &se) {
		return "", false
	}
	holder := "your"
	if se.Holder == "team" {
		holder = "the team's"
	} else if !mine {
		holder = "the owner's"
	}
	switch se.Field {
	case "models":
		allowed := strings.Join(se.Allowed, ", ")
		if se.Model == "" {
			return "A key cannot allow every model here: " + holder + " models are " + allowed + ". Leave Models empty to allow all of them.", true
		}
		return "“" + se.Model + "” is not one of " + holder + " models (" + allowed + "). Leave Models empty to allow all of them.", true
	case "max_budget":
		return "The budget can be at most " + money(se.Limit) + ", " + holder + " own budget.", true
	}
	return "The key would allow more than " + holder + " limits.", true
}
