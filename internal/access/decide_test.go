package access_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
)

// principal builders for the table below.
func personal(a auth.Access) auth.Principal {
	return auth.Principal{Method: auth.MethodAPIKey, UserID: "u", Role: "internal_user", KeyHash: "k", Access: &a}
}

func teamKey(a auth.Access) auth.Principal {
	p := personal(a)
	p.KeyTeamID = "t"
	return p
}

func budget(scope string, spend, max float64) auth.Budget {
	return auth.Budget{Scope: scope, Spend: spend, Max: max}
}

func llm(models ...string) access.Request {
	return access.Request{Method: "POST", Route: "/v1/chat/completions", Models: models, ModelsKnown: true}
}

// TestDecisionTable is README's "Access decision" table, row by row.
func TestDecisionTable(t *testing.T) {
	const ok, forbidden, budgetExceeded = -1, apperr.KindForbidden, apperr.KindBudgetExceeded
	adminKey := func(routes ...string) auth.Principal {
		p := personal(auth.Access{Routes: routes})
		p.Role = "proxy_admin"
		return p
	}
	cases := []struct {
		name string
		p    auth.Principal
		r    access.Request
		want apperr.Kind
	}{
		{"master key: everything", auth.Principal{Method: auth.MethodMasterKey}, llm("anything"), ok},
		{"no limits", personal(auth.Access{}), llm("gpt-4o"), ok},

		// 1. route limits, every role, every route
		{"route limit allows its route", adminKey("/v1/embeddings"), access.Request{Method: "POST", Route: "/v1/embeddings", ModelsKnown: true}, ok},
		{"route limit allows routes below it", adminKey("/v1/embeddings"), access.Request{Method: "POST", Route: "/v1/embeddings/x", ModelsKnown: true}, ok},
		{"route limit is not a string prefix", adminKey("/v1/embeddings"), access.Request{Method: "POST", Route: "/v1/embeddingsx", ModelsKnown: true}, forbidden},
		{"route limit refuses other model routes", adminKey("/v1/embeddings"), llm("gpt-4o"), forbidden},
		{"route limit binds an admin on management routes", adminKey("/v1/embeddings"), access.Request{Method: "GET", Route: "/user/list", Management: true}, forbidden},
		{"route group llm_api_routes", adminKey("llm_api_routes"), llm("gpt-4o"), ok},
		{"route group excludes management", adminKey("llm_api_routes"), access.Request{Method: "GET", Route: "/user/list", Management: true}, forbidden},
		{"route group management_routes", adminKey("management_routes"), access.Request{Method: "GET", Route: "/user/list", Management: true}, ok},
		{"route group info_routes", adminKey("info_routes"), access.Request{Method: "GET", Route: "/key/info", Management: true}, ok},
		{"wildcard route", adminKey("/v1/*"), llm("gpt-4o"), ok},
		{"param route", adminKey("/openai/deployments/{model}/chat/completions"), access.Request{Method: "POST", Route: "/openai/deployments/gpt-4o/chat/completions", Models: []string{"gpt-4o"}, ModelsKnown: true}, ok},
		{"dot segments refused", adminKey("/v1/embeddings"), access.Request{Method: "POST", Route: "/v1/embeddings/../chat/completions", ModelsKnown: true}, forbidden},
		{"encoded slash refused", adminKey("/v1/embeddings"), access.Request{Method: "POST", Route: "/v1/embeddings%2F..%2Fchat", ModelsKnown: true}, forbidden},
		{"unknown route with a route limit", adminKey("/v1/embeddings"), access.Request{Method: "GET", ModelsKnown: true}, forbidden},

		// 2. Keygate's own routes: only route limits
		{"management route ignores budgets", personal(auth.Access{Budgets: []auth.Budget{budget("key", 5, 1)}}), access.Request{Method: "GET", Route: "/key/info", Management: true}, ok},
		{"management route ignores models", personal(auth.Access{KeyModels: []string{"a"}}), access.Request{Method: "POST", Route: "/key/generate", Management: true}, ok},

		// 3. budgets
		{"key budget used up", personal(auth.Access{Budgets: []auth.Budget{budget("key", 1, 1)}}), llm("m"), budgetExceeded},
		{"key budget left", personal(auth.Access{Budgets: []auth.Budget{budget("key", 0.5, 1)}}), llm("m"), ok},
		{"budget period over: reset pending", personal(auth.Access{Budgets: []auth.Budget{{Scope: "key", Spend: 5, Max: 1, ResetDue: true}}}), llm("m"), ok},
		{"estimated cost beyond what is left", personal(auth.Access{Budgets: []auth.Budget{budget("key", 0.5, 1)}}), access.Request{Method: "POST", Route: "/v1/chat/completions", Models: []string{"m"}, ModelsKnown: true, Cost: 0.6}, budgetExceeded},
		{"estimated cost within what is left", personal(auth.Access{Budgets: []auth.Budget{budget("key", 0.5, 1)}}), access.Request{Method: "POST", Route: "/v1/chat/completions", Models: []string{"m"}, ModelsKnown: true, Cost: 0.4}, ok},
		{"owner's budget (personal key)", personal(auth.Access{Budgets: []auth.Budget{budget("user", 2, 1)}}), llm("m"), budgetExceeded},
		// LiteLLM's comparisons: key and member budgets end at spend == max,
		// user and team budgets only beyond it.
		{"key budget spent exactly", personal(auth.Access{Budgets: []auth.Budget{budget("key", 1, 1)}}), llm("m"), budgetExceeded},
		{"member budget spent exactly", teamKey(auth.Access{Budgets: []auth.Budget{budget("team member", 1, 1)}}), llm("m"), budgetExceeded},
		{"user budget spent exactly", personal(auth.Access{Budgets: []auth.Budget{budget("user", 1, 1)}}), llm("m"), ok},
		{"team budget spent exactly", teamKey(auth.Access{Budgets: []auth.Budget{budget("team", 1, 1)}}), llm("m"), ok},
		{"team budget spent exactly, request would cost more", teamKey(auth.Access{Budgets: []auth.Budget{budget("team", 1, 1)}}),
			access.Request{Method: "POST", Route: "/v1/chat/completions", Models: []string{"m"}, ModelsKnown: true, Cost: 0.01}, budgetExceeded},
		{"team's budget (team key)", teamKey(auth.Access{Budgets: []auth.Budget{budget("team", 2, 1)}}), llm("m"), budgetExceeded},
		{"member's budget in the team", teamKey(auth.Access{Budgets: []auth.Budget{budget("team member", 2, 1)}}), llm("m"), budgetExceeded},

		// 4. models
		{"key list allows", personal(auth.Access{KeyModels: []string{"a"}}), llm("a"), ok},
		{"key list refuses", personal(auth.Access{KeyModels: []string{"a"}}), llm("b"), forbidden},
		{"owner list refuses (personal key)", personal(auth.Access{UserModels: []string{"a"}}), llm("b"), forbidden},
		{"team list refuses (team key)", teamKey(auth.Access{TeamModels: []string{"a"}}), llm("b"), forbidden},
		{"every named model must pass", personal(auth.Access{KeyModels: []string{"a"}}), llm("a", "b"), forbidden},
		{"restricted, model unknown", personal(auth.Access{KeyModels: []string{"a"}}), access.Request{Method: "POST", Route: "/v1/chat/completions"}, forbidden},
		{"unrestricted, model unknown", personal(auth.Access{}), access.Request{Method: "POST", Route: "/v1/chat/completions"}, ok},
		{"glob", personal(auth.Access{UserModels: []string{"openai/*"}}), llm("openai/gpt-4o"), ok},
		{"glob refuses other providers", personal(auth.Access{UserModels: []string{"openai/*"}}), llm("anthropic/claude"), forbidden},
		{"all-proxy-models", personal(auth.Access{KeyModels: []string{"all-proxy-models"}, UserModels: []string{"*"}}), llm("x"), ok},
		{"all-team-models on a team key: the team's list", teamKey(auth.Access{KeyModels: []string{"all-team-models"}, TeamModels: []string{"a"}}), llm("a"), ok},
		{"all-team-models on a team key refuses outside the team's", teamKey(auth.Access{KeyModels: []string{"all-team-models"}, TeamModels: []string{"a"}}), llm("b"), forbidden},
		{"all-team-models on a personal key: nothing", personal(auth.Access{KeyModels: []string{"all-team-models"}}), llm("a"), forbidden},
		{"no-default-models: no personal model", personal(auth.Access{UserModels: []string{"no-default-models"}}), llm("a"), forbidden},
		{"no-default-models does not bind team keys", teamKey(auth.Access{TeamModels: []string{"a"}}), llm("a"), ok},
	}
	for _, c := range cases {
		err := access.Decide(c.p, c.r)
		if c.want == ok {
			require.NoError(t, err, c.name)
			continue
		}
		require.Error(t, err, c.name)
		e, isPublic := apperr.As(err)
		require.True(t, isPublic, c.name)
		require.Equal(t, c.want, e.Kind, c.name)
	}
}

func TestModelMatcher(t *testing.T) {
	allowed := map[string][]string{
		"openai/*":         {"openai/gpt-4o", "openai/"},
		"claude-3-*":       {"claude-3-opus", "claude-3-"},
		"*-mini":           {"gpt-4o-mini"},
		"a*b*c":            {"abc", "aXbYc", "abbc"},
		"gpt-4o":           {"gpt-4o"},
		"*":                {"anything"},
		"all-proxy-models": {"anything"},
	}
	refused := map[string][]string{
		"openai/*":          {"openai", "anthropic/x", "xopenai/y"},
		"claude-3-*":        {"claude-2"},
		"*-mini":            {"gpt-4o"},
		"a*b*c":             {"acb", "ab", "bc"},
		"gpt-4o":            {"gpt-4o-mini", "GPT-4O"},
		"no-default-models": {"no-default-models", "x"},
		"all-team-models":   {"all-team-models"},
	}
	for pat, ms := range allowed {
		for _, m := range ms {
			require.True(t, access.ModelAllowed([]string{pat}, m), "%s should allow %s", pat, m)
		}
	}
	for pat, ms := range refused {
		for _, m := range ms {
			require.False(t, access.ModelAllowed([]string{pat}, m), "%s should refuse %s", pat, m)
		}
	}
	narrows := []struct {
		parent, child []string
		ok            bool
	}{
		{nil, []string{"x"}, true},
		{[]string{"openai/*"}, []string{"openai/gpt-4o"}, true},
		{[]string{"openai/*"}, []string{"openai/gpt-*"}, true},
		{[]string{"openai/*"}, []string{"openai*"}, false},
		{[]string{"openai/*"}, []string{"*"}, false},
		{[]string{"openai/*"}, []string{"all-proxy-models"}, false},
		{[]string{"a"}, nil, false},
		{[]string{"a", "b"}, []string{"b"}, true},
		{[]string{"a*b"}, []string{"a*"}, false},
		{[]string{"*a*"}, []string{"a*"}, true},
		{[]string{"a"}, []string{"all-team-models"}, true},
	}
	for _, n := range narrows {
		_, ok := access.Narrows(n.parent, n.child)
		require.Equal(t, n.ok, ok, "Narrows(%v, %v)", n.parent, n.child)
	}
}

func TestModelsInBody(t *testing.T) {
	cases := []struct {
		ct, body string
		models   []string
		known    bool
	}{
		{"application/json", `{"model":"a"}`, []string{"a"}, true},
		{"", `  {"model":"a","model":"b"}`, []string{"a", "b"}, true},
		{"text/plain", `{"mod\u0065l":"a"}`, []string{"a"}, true},
		{"application/json", `{"model":null}`, nil, true},
		{"application/json", `{"model":7}`, nil, false},
		{"application/json", `{"model":"a"} {"model":"b"}`, nil, false},
		{"application/json", `{"model":"a"`, nil, false},
		{"application/json", `["model","a"]`, nil, false},
		{"application/json", `{"messages":[{"model":"nested"}]}`, nil, true},
		{"application/x-www-form-urlencoded", `model=a&model=b`, []string{"a", "b"}, true},
		{"text/plain", `hello`, nil, false},
		{"application/json", ``, nil, true},
		{"multipart/form-data", `x`, nil, false},
	}
	for _, c := range cases {
		models, known := access.ModelsInBody(c.ct, []byte(c.body))
		require.Equal(t, c.known, known, "%s %q", c.ct, c.body)
		require.Equal(t, c.models, models, "%s %q", c.ct, c.body)
	}
	require.Equal(t, []string{"gpt-4o"}, access.ModelsInURL("/openai/deployments/gpt-4o/chat/completions", nil))
	require.Equal(t, []string{"vertex_ai/gemini"}, access.ModelsInURL("/openai/deployments/vertex_ai/gemini/chat/completions", nil))
	require.Equal(t, []string{"gemini-pro"}, access.ModelsInURL("/v1beta/models/gemini-pro:generateContent", nil))
	require.Equal(t, []string{"openai/gpt-4o"}, access.ModelsInURL("/v1/models/openai/gpt-4o", nil))
	require.Nil(t, access.ModelsInURL("/v1/chat/completions", nil))
}

// TestRefusalReasons: each refusal names LiteLLM's error type, which
// forwarding mode answers with (README "LiteLLM status mapping").
func TestRefusalReasons(t *testing.T) {
	reason := func(p auth.Principal, r access.Request) string {
		e, ok := apperr.As(access.Decide(p, r))
		require.True(t, ok)
		return e.Reason
	}
	require.Equal(t, access.ReasonKeyModel, reason(personal(auth.Access{KeyModels: []string{"a"}}), llm("b")))
	require.Equal(t, access.ReasonUserModel, reason(personal(auth.Access{UserModels: []string{"a"}}), llm("b")))
	require.Equal(t, access.ReasonKeyModel, reason(personal(auth.Access{UserModels: []string{"no-default-models"}}), llm("b")),
		"LiteLLM's can_user_call_model answers key_model_access_denied for no-default-models")
	require.Equal(t, access.ReasonTeamModel, reason(teamKey(auth.Access{TeamModels: []string{"a"}}), llm("b")))
	require.Equal(t, access.ReasonRoute, reason(personal(auth.Access{Routes: []string{"/v1/embeddings"}}), llm("a")))
	require.Equal(t, access.ReasonModelUnset, reason(personal(auth.Access{KeyModels: []string{"a"}}), access.Request{Method: "POST", Route: "/v1/chat/completions"}))
}
