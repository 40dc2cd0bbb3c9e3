package access_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/rbac"
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

func withRole(p auth.Principal, role string) auth.Principal {
	p.Role = rbac.Role(role)
	return p
}

func withType(p auth.Principal, t string) auth.Principal {
	p.KeyType = t
	return p
}

func budget(scope string, spend, max float64) auth.Budget {
	return auth.Budget{Scope: scope, Spend: spend, Max: max}
}

func llm(models ...string) access.Request {
	return access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true, Models: models, ModelsKnown: true}
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
		{"route limit allows its route", adminKey("/v1/embeddings"), access.Request{Method: "POST", Routes: []string{"/v1/embeddings"}, RouteKnown: true, ModelsKnown: true}, ok},
		{"route limit allows routes below it", adminKey("/v1/embeddings"), access.Request{Method: "POST", Routes: []string{"/v1/embeddings/x"}, RouteKnown: true, ModelsKnown: true}, ok},
		{"route limit is not a string prefix", adminKey("/v1/embeddings"), access.Request{Method: "POST", Routes: []string{"/v1/embeddingsx"}, RouteKnown: true, ModelsKnown: true}, forbidden},
		{"route limit refuses other model routes", adminKey("/v1/embeddings"), llm("gpt-4o"), forbidden},
		{"route limit binds an admin on management routes", adminKey("/v1/embeddings"), access.Request{Method: "GET", Routes: []string{"/user/list"}, RouteKnown: true, Management: true}, forbidden},
		{"route group llm_api_routes", adminKey("llm_api_routes"), llm("gpt-4o"), ok},
		{"route group excludes management", adminKey("llm_api_routes"), access.Request{Method: "GET", Routes: []string{"/user/list"}, RouteKnown: true, Management: true}, forbidden},
		{"route group management_routes", adminKey("management_routes"), access.Request{Method: "GET", Routes: []string{"/user/list"}, RouteKnown: true, Management: true}, ok},
		{"route group info_routes", adminKey("info_routes"), access.Request{Method: "GET", Routes: []string{"/key/info"}, RouteKnown: true, Management: true}, ok},
		{"wildcard route", adminKey("/v1/*"), llm("gpt-4o"), ok},
		{"param route", adminKey("/openai/deployments/{model}/chat/completions"), access.Request{Method: "POST", Routes: []string{"/openai/deployments/gpt-4o/chat/completions"}, RouteKnown: true, Models: []string{"gpt-4o"}, ModelsKnown: true}, ok},
		{"dot segments refused", adminKey("/v1/embeddings"), access.Request{Method: "POST", Routes: []string{"/v1/embeddings/../chat/completions"}, RouteKnown: true, ModelsKnown: true}, forbidden},
		{"encoded slash refused", adminKey("/v1/embeddings"), access.Request{Method: "POST", Routes: []string{"/v1/embeddings%2F..%2Fchat"}, RouteKnown: true, ModelsKnown: true}, forbidden},
		{"unknown route with a route limit", adminKey("/v1/embeddings"), access.Request{Method: "GET", ModelsKnown: true}, forbidden},

		// 2. Keygate's own routes: only route limits
		{"management route ignores budgets", personal(auth.Access{Budgets: []auth.Budget{budget("key", 5, 1)}}), access.Request{Method: "GET", Routes: []string{"/key/info"}, RouteKnown: true, Management: true}, ok},
		{"management route ignores models", personal(auth.Access{KeyModels: []string{"a"}}), access.Request{Method: "POST", Routes: []string{"/key/generate"}, RouteKnown: true, Management: true}, ok},

		// 3. budgets
		{"key budget used up", personal(auth.Access{Budgets: []auth.Budget{budget("key", 1, 1)}}), llm("m"), budgetExceeded},
		{"key budget left", personal(auth.Access{Budgets: []auth.Budget{budget("key", 0.5, 1)}}), llm("m"), ok},
		{"budget period over: reset pending", personal(auth.Access{Budgets: []auth.Budget{{Scope: "key", Spend: 5, Max: 1, ResetDue: true}}}), llm("m"), ok},
		{"estimated cost beyond what is left", personal(auth.Access{Budgets: []auth.Budget{budget("key", 0.5, 1)}}), access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true, Models: []string{"m"}, ModelsKnown: true, Cost: 0.6}, budgetExceeded},
		{"estimated cost within what is left", personal(auth.Access{Budgets: []auth.Budget{budget("key", 0.5, 1)}}), access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true, Models: []string{"m"}, ModelsKnown: true, Cost: 0.4}, ok},
		{"owner's budget (personal key)", personal(auth.Access{Budgets: []auth.Budget{budget("user", 2, 1)}}), llm("m"), budgetExceeded},
		// LiteLLM's comparisons: key and member budgets end at spend == max,
		// user and team budgets only beyond it.
		{"key budget spent exactly", personal(auth.Access{Budgets: []auth.Budget{budget("key", 1, 1)}}), llm("m"), budgetExceeded},
		{"member budget spent exactly", teamKey(auth.Access{Budgets: []auth.Budget{budget("team member", 1, 1)}}), llm("m"), budgetExceeded},
		{"user budget spent exactly", personal(auth.Access{Budgets: []auth.Budget{budget("user", 1, 1)}}), llm("m"), ok},
		{"team budget spent exactly", teamKey(auth.Access{Budgets: []auth.Budget{budget("team", 1, 1)}}), llm("m"), ok},
		{"team budget spent exactly, request would cost more", teamKey(auth.Access{Budgets: []auth.Budget{budget("team", 1, 1)}}),
			access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true, Models: []string{"m"}, ModelsKnown: true, Cost: 0.01}, budgetExceeded},
		{"team's budget (team key)", teamKey(auth.Access{Budgets: []auth.Budget{budget("team", 2, 1)}}), llm("m"), budgetExceeded},
		{"member's budget in the team", teamKey(auth.Access{Budgets: []auth.Budget{budget("team member", 2, 1)}}), llm("m"), budgetExceeded},

		// 3a. the upstream's own admin routes, and key types
		{"admin route: proxy admin", adminKey(), access.Request{Method: "POST", Routes: []string{"/key/generate"}, RouteKnown: true}, ok},
		{"admin route: internal user", personal(auth.Access{}), access.Request{Method: "POST", Routes: []string{"/key/generate"}, RouteKnown: true}, forbidden},
		{"admin route: claimed by an untrusted header still narrows", personal(auth.Access{}), access.Request{Method: "GET", Routes: []string{"/v1/models", "/config/update"}, RouteKnown: true}, forbidden},
		{"admin route: admin viewer reads", withRole(personal(auth.Access{}), "proxy_admin_viewer"), access.Request{Method: "GET", Routes: []string{"/global/spend"}, RouteKnown: true}, ok},
		{"admin route: admin viewer writes", withRole(personal(auth.Access{}), "proxy_admin_viewer"), access.Request{Method: "POST", Routes: []string{"/user/new"}, RouteKnown: true}, forbidden},
		{"admin route: an admin's llm_api key", withType(adminKey(), "llm_api"), access.Request{Method: "POST", Routes: []string{"/key/generate"}, RouteKnown: true}, forbidden},
		{"llm route: service key", withType(personal(auth.Access{}), "service"), llm("m"), forbidden},
		{"llm route: management key", withType(adminKey(), "management"), llm("m"), forbidden},
		{"llm route: read_only key calls a model", withType(personal(auth.Access{}), "read_only"), llm("m"), forbidden},
		{"llm route: read_only key lists models", withType(personal(auth.Access{}), "read_only"), access.Request{Method: "GET", Routes: []string{"/v1/models"}, RouteKnown: true, ModelsKnown: true}, ok},
		{"llm route: scim key", withType(personal(auth.Access{}), "scim"), llm("m"), forbidden},
		{"llm route: llm_api key", withType(personal(auth.Access{}), "llm_api"), llm("m"), ok},

		// 4. models
		{"key list allows", personal(auth.Access{KeyModels: []string{"a"}}), llm("a"), ok},
		{"key list refuses", personal(auth.Access{KeyModels: []string{"a"}}), llm("b"), forbidden},
		{"owner list refuses (personal key)", personal(auth.Access{UserModels: []string{"a"}}), llm("b"), forbidden},
		{"team list refuses (team key)", teamKey(auth.Access{TeamModels: []string{"a"}}), llm("b"), forbidden},
		{"every named model must pass", personal(auth.Access{KeyModels: []string{"a"}}), llm("a", "b"), forbidden},
		{"restricted, model unknown", personal(auth.Access{KeyModels: []string{"a"}}), access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true}, forbidden},
		{"unrestricted, model unknown", personal(auth.Access{}), access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true}, ok},
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

func TestRouteClasses(t *testing.T) {
	for _, r := range []string{"/v1/chat/completions", "/chat/completions", "/v1/embeddings", "/v1/models", "/models/x:generateContent",
		"/v1beta/models/gemini-pro:generateContent", "/openai/deployments/m/chat/completions", "/engines/m/completions",
		"/v1/messages", "/anthropic/v1/messages", "/bedrock/model/x/invoke", "/model/info", "/v1/files/f", "/v1/audio/speech"} {
		require.True(t, access.LLMRoute(r), r)
	}
	for _, r := range []string{"/key/generate", "/user/new", "/team/update", "/model/new", "/config/update", "/global/spend",
		"/health", "/spend/logs", "/", "", "/v1/key/generate", "/metrics"} {
		require.False(t, access.LLMRoute(r), r)
	}
	require.Equal(t, []string{"/v1/chat%2Fcompletions", "/v1/chat/completions"}, access.RouteVariants("/v1/chat%2Fcompletions"))
	require.Equal(t, []string{"/a/../key/generate", "/key/generate"}, access.RouteVariants("/a/../key/generate"))
	require.Equal(t, []string{"/v1/models"}, access.RouteVariants("/v1/models"))
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
		{"multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"x\"; name=\"model\"\r\n\r\ngpt-5\r\n--B--\r\n", nil, false},
		{"multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-5\r\n--B--\r\n", []string{"gpt-5"}, true},
		// A form-declared body that is also JSON counts both ways: LiteLLM
		// reads it as JSON when the header's case differs.
		{"application/x-www-form-urlencoded", `{"a":"&model=gpt-5&","model":"gpt-4o"}`, []string{"gpt-5", "gpt-4o"}, true},
		{"application/x-www-FORM-urlencoded", `{"model":"expensive","x":"&model=cheap&"}`, []string{"cheap", "expensive"}, true},
		{"text/form-ish", `model=a`, []string{"a"}, true},
		// A body behind a UTF-8 byte-order mark still looks like JSON to
		// some parsers: it is read as JSON too (an outside test hid a model
		// behind one while the form reading found an allowed one).
		{"application/x-www-FORM-urlencoded", "\xEF\xBB\xBF{\"model\":\"gpt-4o\",\"y\":\"&model=cheap&\"}", []string{"cheap", "gpt-4o"}, true},
		// A part's name counts whatever its disposition type (Starlette
		// keeps attachment and inline fields).
		{"multipart/form-data; boundary=BB", "--BB\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ncheap\r\n--BB\r\nContent-Disposition: attachment; name=\"model\"\r\n\r\nexpensive\r\n--BB--\r\n",
			[]string{"cheap", "expensive"}, true},
	}
	for _, c := range cases {
		models, known := access.ModelsInBody([]string{c.ct}, []byte(c.body))
		require.Equal(t, c.known, known, "%s %q", c.ct, c.body)
		require.Equal(t, c.models, models, "%s %q", c.ct, c.body)
	}
	// Every Content-Type header counts (servers differ on which one wins).
	models, known := access.ModelsInBody([]string{"application/x-www-form-urlencoded", "application/json"}, []byte(`{"model":"expensive","x":"&model=cheap&"}`))
	require.True(t, known)
	require.ElementsMatch(t, []string{"cheap", "expensive"}, models)
	require.Equal(t, []string{"cheap", "gpt-4o"}, access.ModelsInURL("/v1/realtime", url.Values{"model": {"cheap"}, "deployment": {"gpt-4o"}}),
		"an Azure-style realtime ?deployment= names a model too")
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
	require.Equal(t, access.ReasonModelUnset, reason(personal(auth.Access{KeyModels: []string{"a"}}), access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}, RouteKnown: true}))
}

// TestMethodClaimsOnlyNarrow: methods named without being believed, and a
// method that may be a forward-auth subrequest's own, make a request
// model-bearing (and not a read) whenever any of them would; they never
// make it less so.
func TestMethodClaimsOnlyNarrow(t *testing.T) {
	chat, models := []string{"/v1/chat/completions"}, []string{"/v1/models"}
	for _, c := range []struct {
		name string
		r    access.Request
		want bool
	}{
		{"GET on chat, believed", access.Request{Method: "GET", Routes: chat}, false},
		{"a claimed POST", access.Request{Method: "GET", Routes: chat, MethodClaims: []string{"POST"}}, true},
		{"a claimed post (any case)", access.Request{Method: "GET", Routes: chat, MethodClaims: []string{"post"}}, true},
		{"a claimed GET changes nothing", access.Request{Method: "POST", Routes: chat, MethodClaims: []string{"GET"}}, true},
		{"unsure GET on chat", access.Request{Method: "GET", Routes: chat, MethodUnsure: true}, true},
		{"unsure GET on embeddings", access.Request{Method: "GET", Routes: []string{"/v1/embeddings"}, MethodUnsure: true}, true},
		{"unsure HEAD on chat", access.Request{Method: "HEAD", Routes: chat, MethodUnsure: true}, true},
		{"unsure GET on models", access.Request{Method: "GET", Routes: models, MethodUnsure: true}, false},
		{"claimed POST on models", access.Request{Method: "GET", Routes: models, MethodClaims: []string{"POST"}}, false},
		{"no route, GET believed", access.Request{Method: "GET"}, false},
		{"no route, unsure: a GET is a GET", access.Request{Method: "GET", MethodUnsure: true}, false},
		{"no route, unsure POST", access.Request{Method: "POST", MethodUnsure: true}, true},
		{"no route, claimed POST", access.Request{Method: "GET", MethodClaims: []string{"POST"}}, true},
	} {
		require.Equal(t, c.want, c.r.ModelBearing(), c.name)
	}

	ro := withType(personal(auth.Access{}), rbac.KeyTypeReadOnly)
	get := access.Request{Method: "GET", Routes: models, RouteKnown: true, ModelsKnown: true}
	require.NoError(t, access.Decide(ro, get))
	claimed := get
	claimed.MethodClaims = []string{"POST"}
	require.Error(t, access.Decide(ro, claimed), "a claimed POST is not a read")
	unsure := get
	unsure.MethodUnsure = true
	require.NoError(t, access.Decide(ro, unsure), "an unsure GET on a route without a body is still a read")
	unsure.Routes = chat
	require.Error(t, access.Decide(ro, unsure), "an unsure GET on chat may be a model call")
}

// TestRestrictedCredentialsMayNotUpload: files and batches run the models
// an uploaded JSONL names, which Keygate never sees, so a credential
// limited to some models may read them but not create them.
func TestRestrictedCredentialsMayNotUpload(t *testing.T) {
	restricted, free := personal(auth.Access{KeyModels: []string{"gpt-4o"}}), personal(auth.Access{})
	req := func(method, route string) access.Request {
		return access.Request{Method: method, Routes: []string{route}, RouteKnown: true, Models: []string{"gpt-4o"}, ModelsKnown: true}
	}
	for _, c := range []struct {
		r       access.Request
		refused bool
	}{
		{req("POST", "/v1/files"), true},
		{req("POST", "/files"), true},
		{req("POST", "/v1/batches"), true},
		{req("POST", "/v1/batches/"), true},
		{req("POST", "/openai/v1/batches"), true},
		// Anthropic's message batches name a model in each nested request
		// (an outside test had one forwarded with a model the key lacks).
		{req("POST", "/v1/messages/batches"), true},
		{req("POST", "/anthropic/v1/messages/batches"), true},
		{req("GET", "/v1/messages/batches"), false},
		{req("POST", "/v1/messages"), false},
		{req("GET", "/v1/files"), false},
		{req("GET", "/v1/batches"), false},
		{req("GET", "/v1/files/f1/content"), false},
		{req("POST", "/v1/batches/b1/cancel"), false},
		{req("POST", "/v1/chat/completions"), false},
		{access.Request{Method: "GET", Routes: []string{"/v1/batches"}, RouteKnown: true, ModelsKnown: true, MethodClaims: []string{"POST"}}, true},
		{access.Request{Method: "GET", Routes: []string{"/v1/batches"}, RouteKnown: true, ModelsKnown: true, MethodUnsure: true}, true},
	} {
		err := access.Decide(restricted, c.r)
		if c.refused {
			require.Error(t, err, "%+v", c.r)
			require.Contains(t, err.Error(), "uploaded file")
		} else {
			require.NoError(t, err, "%+v", c.r)
		}
		require.NoError(t, access.Decide(free, c.r), "%+v (unrestricted)", c.r)
	}
}

// TestRunsAndAssistantsNeedTheirModel: a run without a model uses its
// assistant's, which on a shared upstream key may be anyone's, so a
// credential limited to some models must name an allowed one.
func TestRunsAndAssistantsNeedTheirModel(t *testing.T) {
	restricted, free := personal(auth.Access{KeyModels: []string{"cheap"}}), personal(auth.Access{})
	req := func(route string, models ...string) access.Request {
		r := access.Request{Method: "POST", Routes: []string{route}, RouteKnown: true, Models: models}
		// As /auth/verify and forwarding read a request: a model-bearing
		// route without a model leaves the model unknown.
		r.ModelsKnown = len(models) > 0 || !r.ModelBearing()
		return r
	}
	for _, route := range []string{"/v1/threads/t1/runs", "/v1/threads/runs", "/v1/assistants", "/openai/v1/threads/t1/runs"} {
		require.Error(t, access.Decide(restricted, req(route)), route)
		require.NoError(t, access.Decide(restricted, req(route, "cheap")), route)
		require.Error(t, access.Decide(restricted, req(route, "gpt-4o")), route)
		require.NoError(t, access.Decide(free, req(route)), route)
	}
	require.NoError(t, access.Decide(restricted, req("/v1/threads/t1/runs/r1/cancel")), "continuing a run names no model")
}

// TestPassThroughWritesNeedTheirModel: a write through a provider's
// pass-through prefix invokes a model named the provider's way, so it is a
// model-bearing request: a credential limited to some models needs one
// Keygate can read (an outside test called a Vertex AI endpoint and a
// Bedrock agent with a key limited to another model). Reads and the
// OpenAI-shaped prefixes go by the usual rules. (The API test
// TestPassThroughThroughVerify checks the answer.)
func TestPassThroughWritesNeedTheirModel(t *testing.T) {
	for route, want := range map[string]bool{
		"/vertex_ai/v1/projects/p/locations/l/endpoints/123:predict": true,
		"/bedrock/agents/a1/agentAliases/x/sessions/s/text":          true,
		"/anthropic/v1/complete":                                     true,
		"/cohere/v1/chat":                                            true,
		"/openai/v1/batches/b1/cancel":                               false,
		"/v1/batches/b1/cancel":                                      false,
	} {
		require.Equal(t, want, access.ModelBearing("POST", route), route)
		require.False(t, access.ModelBearing("GET", route), route)
	}
}

// TestEndpointWithTrailingJunk: an endpoint with junk after it in its last
// segment (a matrix parameter an upstream or an intermediary may strip, an
// extension, a space) is still that endpoint (an outside test had
// /v1/chat/completions;x forwarded with no model for a model-limited key).
func TestEndpointWithTrailingJunk(t *testing.T) {
	for route, want := range map[string]bool{
		"/v1/chat/completions;x":    true,
		"/v1/chat/completions;":     true,
		"/v1/chat/completions.json": true,
		"/v1/chat/completions~":     true,
		"/v1/chat/completions ":     true,
		"/v1/messages;x":            true,
		"/v1/embeddings;a=b":        true,
		"/v1/chat/completionsX":     false, // another word
		"/v1/chat/completions/abc":  false, // a stored completion
		"/v1/messages/batches":      false, // an upload route, below
		"/v1/batches/b1/cancel;x":   false,
	} {
		require.Equal(t, want, access.ModelBearing("POST", route), route)
	}
	for route, want := range map[string]bool{
		"/v1/messages/batches;x": true,
		"/v1/batches.json":       true,
		"/files;x":               true,
		"/v1/files":              true,
		"/v1/files/f1/content":   false,
		"/v1/batches/b1/cancel":  false,
	} {
		require.Equal(t, want, access.UploadRoute(route), route)
	}
}

// TestHiddenModelRoutes: writes that run a model the request does not name
// where Keygate reads it are refused to model-limited credentials (an
// outside test ran realtime client secrets with a nested session.model,
// and continued runs, videos and fine-tuning jobs); reads and unrestricted
// credentials are not affected.
func TestHiddenModelRoutes(t *testing.T) {
	restricted, free := personal(auth.Access{KeyModels: []string{"cheap"}}), personal(auth.Access{})
	for _, route := range []string{"/v1/realtime/client_secrets", "/realtime/client_secrets", "/openai/v1/realtime/client_secrets",
		"/v1/realtime/sessions", "/v1/realtime/transcription_sessions", "/v1/realtime/translations/client_secrets",
		"/v1/threads/t/runs/r/submit_tool_outputs", "/v1/videos/v1/remix", "/v1/fine_tuning/jobs/j/resume",
		"/v1/responses/compact", "/v1/responses/input_tokens"} {
		r := access.Request{Method: "POST", Routes: []string{route}, RouteKnown: true, Models: []string{"cheap"}, ModelsKnown: true}
		err := access.Decide(restricted, r)
		require.Error(t, err, route)
		require.Contains(t, err.Error(), "does not read", route)
		require.NoError(t, access.Decide(free, r), route)
		r.Method = "GET"
		require.NoError(t, access.Decide(restricted, r), route+" (read)")
	}
	// The realtime WebSocket itself takes ?model= and is checked as before.
	require.False(t, access.HiddenModelRoute("/v1/realtime"))
}

// TestAdminWrite: which verified requests are re-checked against the
// database before Keygate vouches for them (writes to the upstream's
// admin API).
func TestAdminWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    access.Request
		want bool
	}{
		{"chat call", access.Request{Method: "POST", Routes: []string{"/v1/chat/completions"}}, false},
		{"admin write", access.Request{Method: "POST", Routes: []string{"/key/generate"}}, true},
		{"admin delete", access.Request{Method: "DELETE", Routes: []string{"/team/delete"}}, true},
		{"admin read", access.Request{Method: "GET", Routes: []string{"/key/list"}}, false},
		{"a read claimed to be a write", access.Request{Method: "GET", MethodClaims: []string{"POST"}, Routes: []string{"/key/generate"}}, true},
		{"LLM and admin variants", access.Request{Method: "POST", Routes: []string{"/v1/models", "/key/generate"}}, true},
		{"Keygate's own route", access.Request{Method: "POST", Routes: []string{"/key/generate"}, Management: true}, false},
		{"no route", access.Request{Method: "POST"}, false},
	} {
		if got := access.AdminWrite(tc.r); got != tc.want {
			t.Errorf("%s: AdminWrite = %v, want %v", tc.name, got, tc.want)
		}
	}
}
