package service

import (
	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
)

// Decide is the one access decision (internal/access.Decide): route
// limits, budgets and model rules for an authenticated principal. The JSON
// API's guard, /auth/verify, the forwarding proxy and the web UI all call
// it; it is a plain function so the hot path pays for no service state.
func Decide(p auth.Principal, r access.Request) error { return access.Decide(p, r) }
