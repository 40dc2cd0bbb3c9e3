package access

import (
	"net/http"
	"strings"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
)

// Request is what a credential is being used for.
type Request struct {
	// Method is the client's request method (for /auth/verify, that of the
	// request the proxy asks about).
	Method string
	// MethodClaims are methods a request names without being believed (an
	// untrusted proxy's X-Original-Method, a second method header): like
	// claimed routes they can only narrow — the request is model-bearing
	// if it is so under any of them, and a read only if each is safe.
	MethodClaims []string
	// MethodUnsure: Method may not be the client's — a forward-auth
	// subrequest without a trusted proxy's method header, which nginx's
	// auth_request and Traefik send as GET whatever the client used. A
	// route that names its model in a body is then model-bearing whatever
	// Method says.
	MethodUnsure bool
	// Routes are every path the request may be taken for, each in every
	// form an upstream may read it (RouteVariants); each must pass. Routes
	// a proxy only claimed (from a source Keygate does not trust) are in
	// the list too: they can only narrow.
	Routes []string
	// RouteKnown: at least one of Routes comes from a source the decision
	// believes (the request itself, Envoy's path, a trusted proxy's header).
	// Without it, a key limited to some routes is refused.
	RouteKnown bool
	// Management: the route is one of Keygate's own (management API, UI);
	// only route limits apply, not budgets or model rules.
	Management bool
	// Models are every model the request names (body, query, path, a
	// trusted proxy's header); each must be allowed.
	Models []string
	// ModelsKnown: Models is complete. False when the body could not be
	// read, or the route is model-bearing and nothing trustworthy named a
	// model, so a credential limited to some models is refused.
	ModelsKnown bool
	// Cost is the estimated cost of the request in USD; a budget must have
	// at least this much left (0: the spend must be below the budget).
	Cost float64
}

// Decide allows or refuses a request of an authenticated principal. The
// rules, in order (README "Access decision" shows them as a table):
//
//  1. Route limits (a key's allowed_routes) apply to every role, on every
//     route; a route outside them is 403.
//  2. On Keygate's own routes nothing else applies.
//  3. Budgets: the key's; the owner's for a personal key or a session; the
//     team's and the member's budget in the team for a team key. One that
//     is used up (or cannot cover Cost) is 429 budget_exceeded.
//  4. Models: every model named must be allowed by the key's list and by
//     the owner's (personal key, session) or the team's (team key) list; a
//     credential with any list whose request's models are not known is
//     refused. 403.
//
// Blocked, expired and unknown credentials, and team keys whose owner left
// the team, never get here: authentication refuses them (401).
func Decide(p auth.Principal, r Request) error {
	if p.Method == auth.MethodMasterKey {
		return nil
	}
	a := p.Access
	if a != nil && len(a.Routes) > 0 {
		if !r.RouteKnown {
			e := apperr.Forbidden("This key is limited to the routes %v and the proxy did not say which route was called.", a.Routes)
			e.Reason = ReasonRoute
			return e
		}
		for _, route := range r.Routes {
			if !RouteAllowed(a.Routes, route) {
				e := apperr.Forbidden("This key may not call %s: it is limited to the routes %v.", truncate(route, 120), a.Routes)
				e.Reason = ReasonRoute
				return e
			}
		}
	}
	if r.Management {
		return nil
	}
	if err := upstreamRouteAllowed(p, r); err != nil {
		return err
	}
	if a == nil {
		return nil
	}
	for _, b := range a.Budgets {
		if b.ResetDue {
			continue
		}
		if Exhausted(b) || (r.Cost > 0 && b.Spend+r.Cost > b.Max) {
			e := apperr.Forbidden("Budget exceeded: the %s has spent %.4f of its %.4f budget.", b.Scope, b.Spend, b.Max)
			e.Kind = apperr.KindBudgetExceeded
			return e
		}
	}
	lists := modelLists(p)
	if !Restricted(p) {
		return nil
	}
	if r.mayWrite() && anyRoute(r.Routes, UploadRoute) {
		e := apperr.Forbidden("Batch and file uploads name their models inside the uploaded file, which Keygate cannot check; this credential may use only some models.")
		e.Reason = ReasonModelUnset
		return e
	}
	if r.mayWrite() && anyRoute(r.Routes, HiddenModelRoute) {
		e := apperr.Forbidden("This route runs a model it names in a nested field or takes from an earlier call (a realtime session, a run or video being continued), which Keygate does not read; this credential may use only some models.")
		e.Reason = ReasonModelUnset
		return e
	}
	if !r.ModelsKnown {
		e := apperr.Forbidden("Cannot tell which model this request uses; this credential may use only some models.")
		e.Reason = ReasonModelUnset
		return e
	}
	for _, m := range r.Models {
		for _, l := range lists {
			if !ModelAllowed(l.models, m) {
				e := apperr.Forbidden("Model %q is not allowed for this %s.", truncate(m, 80), l.scope)
				e.Reason = l.reason
				return e
			}
		}
	}
	return nil
}

type scopedList struct {
	scope  string
	models []string
	// reason is LiteLLM's error type for a refusal by this list.
	reason string
}

// Reasons (apperr.Error.Reason) of the refusals, as LiteLLM names them:
// ProxyErrorTypes.get_model_access_error_type_for_object; a user's
// no-default-models is key_model_access_denied there (can_user_call_model).
const (
	ReasonRoute      = "route_not_allowed"
	ReasonKeyModel   = "key_model_access_denied"
	ReasonTeamModel  = "team_model_access_denied"
	ReasonUserModel  = "user_model_access_denied"
	ReasonModelUnset = "model_not_established"
)

// modelLists returns the lists that must all allow a model. A key's
// all-team-models means "whatever the team allows" on a team key and
// nothing on a personal key.
func modelLists(p auth.Principal) [3]scopedList {
	a := p.Access
	key := a.KeyModels
	for _, m := range key {
		if m == AllTeamModels {
			key = []string{NoDefaultModels} // allows no model; rare, so the allocation is fine
			if p.KeyTeamID != "" {
				key = nil
			}
			break
		}
	}
	user := ReasonUserModel
	for _, m := range a.UserModels {
		if m == NoDefaultModels {
			user = ReasonKeyModel
		}
	}
	// An array, not a slice: the hot path calls this per request and
	// must not allocate.
	return [3]scopedList{{"key", key, ReasonKeyModel}, {"user", a.UserModels, user}, {"team", a.TeamModels, ReasonTeamModel}}
}

// upstreamRouteAllowed applies who may call which of the upstream proxy's
// routes: its LLM routes to credentials that may call models (per role and
// key type); anything else — the proxy's own admin API (LiteLLM's /key/*,
// /user/*, /config/*, /global/spend, ...) — only to proxy admins, and to
// admin viewers for reads. Keygate vouches for a request with its identity
// headers, and deployments often hand the upstream an admin credential,
// so it must never vouch for a non-admin there.
func upstreamRouteAllowed(p auth.Principal, r Request) error {
	safe := safeMethod(r.Method)
	for _, m := range r.MethodClaims {
		safe = safe && safeMethod(m)
	}
	for _, route := range r.Routes {
		if LLMRoute(route) {
			continue
		}
		role, kt := p.Role, p.KeyType
		adminType := kt == "" || kt == rbac.KeyTypeDefault || kt == rbac.KeyTypeManagement
		switch {
		case role == rbac.RoleProxyAdmin && adminType:
		case safe && rbac.Can(role, rbac.PermReadAll) && (adminType || kt == rbac.KeyTypeReadOnly):
		default:
			return apperr.Forbidden("%s is an administration route of the LLM proxy: only proxy admins may call it through Keygate.", truncate(route, 120))
		}
	}
	switch p.KeyType {
	case "", rbac.KeyTypeDefault, rbac.KeyTypeLLMAPI:
		return nil
	case rbac.KeyTypeReadOnly:
		if safe && !r.ModelBearing() {
			return nil
		}
		return apperr.Forbidden("A read_only key may only read; this request calls a model or changes something.")
	case rbac.KeyTypeManagement:
		if len(r.Routes) > 0 && !anyLLMRoute(r.Routes) {
			return nil
		}
		return apperr.Forbidden("A management key may not call models.")
	case rbac.KeyTypeSCIM:
		return apperr.Forbidden("This key is a SCIM provisioning token; it may only call /scim/v2.")
	}
	return apperr.Forbidden("A %s key may not call the LLM proxy.", truncate(p.KeyType, 40))
}

func anyLLMRoute(routes []string) bool { return anyRoute(routes, LLMRoute) }

// AdminWrite reports whether r may change something through the upstream
// proxy's own admin API: a route that is not an LLM route, with a method
// that is not a read by the same reckoning as upstreamRouteAllowed's (a
// method the request cannot vouch for is taken at its word there too,
// README "/auth/verify"). Such a request is vouched for only after the
// credential is read from the database (auth.Credential.Fresh), as a write
// to Keygate's own API is.
func AdminWrite(r Request) bool {
	if r.Management {
		return false
	}
	// The method first: it is cheap, and forward-auth subrequests are
	// mostly GETs with no method claimed.
	safe := safeMethod(r.Method)
	for _, m := range r.MethodClaims {
		safe = safe && safeMethod(m)
	}
	return !safe && anyRoute(r.Routes, func(route string) bool { return !LLMRoute(route) })
}

func anyRoute(routes []string, is func(string) bool) bool {
	for _, r := range routes {
		if is(r) {
			return true
		}
	}
	return false
}

// mayWrite reports whether the request may have been sent with a method
// other than GET, HEAD or OPTIONS: its own, a claimed one, or (unsure)
// whatever the client used.
func (r Request) mayWrite() bool {
	if r.MethodUnsure || !safeMethod(r.Method) {
		return true
	}
	for _, m := range r.MethodClaims {
		if !safeMethod(m) {
			return true
		}
	}
	return false
}

// ModelBearing reports whether the request names (or must name) its model
// on any of its routes (none known: the route "") under any method it may
// have been sent with: Method, every claimed method and, when Method is
// unsure, POST on a known route. (Without a route and a trusted method,
// a GET is taken as a GET: the deploy examples always send the route.)
func (r Request) ModelBearing() bool {
	routes := r.Routes
	if len(routes) == 0 {
		routes = []string{""}
	}
	for _, route := range routes {
		if ModelBearing(r.Method, route) || (r.MethodUnsure && route != "" && ModelBearing(http.MethodPost, route)) {
			return true
		}
		for _, m := range r.MethodClaims {
			if ModelBearing(m, route) {
				return true
			}
		}
	}
	return false
}

func safeMethod(m string) bool {
	switch strings.ToUpper(m) {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// Restricted reports whether any model list limits p.
func Restricted(p auth.Principal) bool {
	if p.Access == nil {
		return false
	}
	for _, l := range modelLists(p) {
		if !Unrestricted(l.models) {
			return true
		}
	}
	return false
}

// ModelAllowedFor reports whether p may use model (for filtering a model
// list shown to p).
func ModelAllowedFor(p auth.Principal, model string) bool {
	if p.Access == nil {
		return true
	}
	for _, l := range modelLists(p) {
		if !ModelAllowed(l.models, model) {
			return false
		}
	}
	return true
}

// Identity is what a verified request carries onward (the X-Keygate-*
// headers): who, with which role, which key, which team.
type Identity struct {
	UserID, Role, KeyID, TeamID, KeyAlias string
}

// IdentityOf returns p's identity. The team is the key's team: a personal
// key or a session acts for no team, whatever teams its user is in.
func IdentityOf(p auth.Principal) Identity {
	return Identity{UserID: p.UserID, Role: string(p.Role), KeyID: p.KeyHash, TeamID: p.KeyTeamID, KeyAlias: p.KeyAlias}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Exhausted applies LiteLLM's comparison for each scope (auth_checks.py):
// a key's and a team member's budget is used up at spend >= max_budget, a
// user's and a team's only once spend > max_budget.
func Exhausted(b auth.Budget) bool {
	if b.Scope == "user" || b.Scope == "team" {
		return b.Spend > b.Max
	}
	return b.Spend >= b.Max
}
