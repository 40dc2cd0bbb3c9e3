package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
	"github.com/keygate/keygate/store"
)

// Why a key's requests are refused right now (KeyStanding.Refusal).
const (
	RefusedExpired      = "expired"
	RefusedKeyBlocked   = "key_blocked"
	RefusedOwnerBlocked = "owner_blocked"
	RefusedTeamBlocked  = "team_blocked"
	RefusedNotInTeam    = "not_in_team"
	RefusedGone         = "gone" // its owner or team was deleted
	RefusedBudget       = "budget"
	RefusedOther        = "other" // Message says why
)

// KeyStanding is what a key's next model call would meet: the limits that
// apply to it (the key's own and those it inherits from its owner, team
// and team membership) and, when it would be refused, why. It comes from
// the code that answers the key's requests (auth.KeyPrincipal, then
// access.Decide), so a page can never show a key as usable that the proxy
// refuses.
type KeyStanding struct {
	// Access holds the limits that apply; nil when authentication itself
	// refuses the key (blocked, expired, ...).
	Access *auth.Access
	// Refusal is "" when a call would be allowed, else one of Refused*.
	Refusal string
	// Budget is the used-up budget when Refusal is RefusedBudget.
	Budget auth.Budget
	// Message is the decision's own wording (RefusedBudget, RefusedOther).
	Message string
}

// maxStandings bounds one KeyStandings call (a page of keys).
const maxStandings = 200

// KeyStandings returns the standing of each key named by hash that p may
// see. The decision is asked about a model call naming no model: budgets,
// blocks, expiry and the key's type decide; which models a call names is
// the caller's to show from Access.
func (s *Service) KeyStandings(ctx context.Context, p auth.Principal, hashes []string) (map[string]KeyStanding, error) {
	if err := require(p, rbac.PermReadOwn); err != nil {
		return nil, err
	}
	if len(hashes) > maxStandings {
		return nil, apperr.InvalidParam("keys", "At most %d keys at once.", maxStandings)
	}
	now := s.Now()
	out := make(map[string]KeyStanding, len(hashes))
	for _, h := range hashes {
		ka, err := s.store.GetKeyAccess(ctx, h)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("service: key standing: %w", err)
		}
		if err := mayReadKey(ctx, s.store, p, ka.Key); err != nil {
			return nil, err
		}
		out[h] = standingOf(ka, now)
	}
	return out, nil
}

func standingOf(ka store.KeyAccess, now time.Time) KeyStanding {
	kp, err := auth.KeyPrincipal(ka, now)
	if err != nil {
		code := RefusedGone
		switch {
		case errors.Is(err, auth.ErrExpired):
			code = RefusedExpired
		case errors.Is(err, auth.ErrKeyBlocked):
			code = RefusedKeyBlocked
		case errors.Is(err, auth.ErrOwnerBlocked):
			code = RefusedOwnerBlocked
		case errors.Is(err, auth.ErrTeamBlocked):
			code = RefusedTeamBlocked
		case errors.Is(err, auth.ErrNotInTeam):
			code = RefusedNotInTeam
		}
		return KeyStanding{Refusal: code}
	}
	st := KeyStanding{Access: kp.Access}
	derr := access.Decide(kp, access.Request{Method: http.MethodPost, RouteKnown: true, ModelsKnown: true})
	if derr == nil {
		return st
	}
	st.Refusal, st.Message = RefusedOther, derr.Error()
	if e, ok := apperr.As(derr); ok {
		st.Message = e.Message
		if e.Kind == apperr.KindBudgetExceeded {
			st.Refusal = RefusedBudget
			for _, b := range kp.Access.Budgets {
				if !b.ResetDue && access.Exhausted(b) {
					st.Budget = b
					break
				}
			}
		}
	}
	return st
}
