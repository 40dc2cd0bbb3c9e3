package access

import (
	"net/url"
	"path"
	"strings"
)

// routeGroups are the names LiteLLM accepts in a key's allowed_routes in
// place of routes (its LiteLLMRoutes enum), with the routes each stands
// for. Entries use the same forms as allowed_routes: exact, "{param}"
// segments, and a trailing "*" for a prefix.
func routeGroups() map[string][]string {
	openai := []string{
		"/chat/completions", "/v1/chat/completions", "/engines/{model}/chat/completions",
		"/openai/deployments/{model}/chat/completions", "/completions", "/v1/completions",
		"/engines/{model}/completions", "/openai/deployments/{model}/completions",
		"/embeddings", "/v1/embeddings", "/engines/{model}/embeddings", "/openai/deployments/{model}/embeddings",
		"/images/*", "/v1/images/*", "/audio/*", "/v1/audio/*", "/moderations", "/v1/moderations",
		"/batches*", "/v1/batches*", "/files*", "/v1/files*", "/fine_tuning/*", "/v1/fine_tuning/*",
		"/assistants*", "/v1/assistants*", "/threads*", "/v1/threads*", "/models", "/v1/models",
		"/models/*", "/v1/models/*", "/rerank", "/v1/rerank", "/v2/rerank", "/realtime", "/v1/realtime",
		"/responses*", "/v1/responses*", "/vector_stores*", "/v1/vector_stores*", "/search*", "/v1/search*",
		"/ocr", "/v1/ocr", "/videos*", "/v1/videos*", "/containers*", "/v1/containers*",
		"/utils/token_counter",
	}
	anthropic := []string{"/v1/messages", "/v1/messages/count_tokens", "/v1/skills*"}
	google := []string{"/v1beta/models/*", "/models/*", "/v1beta/interactions*", "/interactions*"}
	passthrough := []string{"/bedrock*", "/vertex-ai*", "/vertex_ai*", "/cohere*", "/gemini*", "/anthropic*",
		"/azure*", "/openai/*", "/openai_passthrough*", "/mistral*", "/vllm*", "/assemblyai*"}
	info := []string{"/key/info", "/key/health", "/team/info", "/team/list", "/v2/team/list", "/user/info",
		"/v2/user/info", "/v2/key/info", "/model/info", "/v1/model/info", "/v2/model/info", "/model_group/info",
		"/health", "/key/list", "/models", "/v1/models", "/sso/get/ui_settings"}
	management := []string{"/user/*", "/team/*", "/key/*", "/invitation/*", "/model/*", "/v2/team/list",
		"/v2/user/info", "/v2/key/info", "/audit", "/sso/explain", "/onboarding/*"}
	spend := []string{"/spend/*", "/global/spend*", "/user/daily/activity*", "/team/daily/activity*"}
	llm := append(append(append(append([]string{}, openai...), anthropic...), google...), passthrough...)
	return map[string][]string{
		"openai_routes": openai, "anthropic_routes": anthropic, "google_routes": google,
		"mapped_pass_through_routes": passthrough, "llm_api_routes": llm, "info_routes": info,
		"management_routes": management, "spend_tracking_routes": spend, "global_spend_tracking_routes": spend,
	}
}

// LLMRoute reports whether route (a clean path) is one of the upstream's
// LLM routes — model calls, model information, files and batches for
// them, and LiteLLM's provider pass-through routes (its llm_api_routes and
// model info routes). Anything else on the upstream is its own
// administration API (LiteLLM's /key/*, /user/*, /team/*, /model/new,
// /config/*, /global/spend, /health, ...).
func LLMRoute(route string) bool {
	seg, rest := firstSegment(route)
	if seg == "v1" || seg == "v2" || seg == "v1beta" {
		seg, rest = firstSegment(rest)
	}
	switch seg {
	case "chat", "completions", "embeddings", "images", "audio", "moderations", "batches", "files", "fine_tuning",
		"assistants", "threads", "models", "rerank", "realtime", "responses", "vector_stores", "vector_store", "search",
		"ocr", "videos", "containers", "messages", "skills", "interactions", "engines", "model_group":
		return true
	case "openai", "openai_passthrough", "bedrock", "vertex-ai", "vertex_ai", "cohere", "gemini", "anthropic", "azure",
		"azure_ai", "mistral", "vllm", "assemblyai", "eu.assemblyai", "cursor", "milvus":
		return true // provider pass-through (and Azure-style /openai/deployments/...)
	case "model":
		return rest == "/info"
	case "utils":
		return rest == "/token_counter"
	}
	return false
}

// firstSegment splits "/a/b/c" into "a" and "/b/c".
func firstSegment(route string) (string, string) {
	route = strings.TrimPrefix(route, "/")
	if i := strings.IndexByte(route, '/'); i >= 0 {
		return route[:i], route[i:]
	}
	return route, ""
}

// RouteVariants returns the forms in which an upstream may read a raw
// request path: as given, and percent-decoded and cleaned of dot segments
// and doubled slashes (as most servers route it). Every variant must pass
// the decision, and models are read from each.
func RouteVariants(raw string) []string {
	out := []string{raw}
	dec, err := url.PathUnescape(raw)
	if err != nil {
		dec = raw
	}
	c := path.Clean("/" + strings.ReplaceAll(dec, "\\", "/"))
	if c != raw {
		out = append(out, c)
	}
	return out
}

// RouteGroup reports whether name is a route group allowed_routes accepts.
func RouteGroup(name string) bool {
	_, ok := routeGroups()[name]
	return ok
}

// RouteAllowed reports whether a key limited to allowed (LiteLLM's
// allowed_routes) may call route, a request path. An empty list allows
// every route. Each entry is a route group name, a route with "{param}"
// segments, a prefix ending in "*", or a route that also allows the routes
// below it ("/embeddings" allows "/embeddings/x", not "/embeddingsx").
//
// route must be clean (no dot segments, no doubled slashes, no percent
// encoding left): a route that is not is refused, because an upstream
// could resolve it to a route the limit does not allow.
func RouteAllowed(allowed []string, route string) bool {
	if len(allowed) == 0 {
		return true
	}
	if !CleanRoute(route) {
		return false
	}
	groups := routeGroups()
	for _, a := range allowed {
		if members, ok := groups[a]; ok {
			for _, m := range members {
				if routeMatches(m, route) {
					return true
				}
			}
			continue
		}
		if routeMatches(a, route) || (!strings.ContainsAny(a, "*{") && strings.HasPrefix(route, strings.TrimSuffix(a, "/")+"/")) {
			return true
		}
	}
	return false
}

// routeMatches matches one pattern: a trailing '*' is a prefix, a
// "{param}" segment matches one non-empty segment (a "{x:path}" one any
// run without ':'), anything else must be equal.
func routeMatches(pattern, route string) bool {
	if strings.HasSuffix(pattern, "*") {
		return strings.HasPrefix(route, strings.TrimSuffix(pattern, "*"))
	}
	if !strings.Contains(pattern, "{") {
		return pattern == route
	}
	ps, rs := strings.Split(pattern, "/"), strings.Split(route, "/")
	if len(ps) != len(rs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if rs[i] == "" {
				return false
			}
			continue
		}
		if p != rs[i] {
			return false
		}
	}
	return true
}

// CleanRoute reports whether route is an absolute path in canonical form:
// no ".." or "." segments, no empty segments, no percent escapes.
func CleanRoute(route string) bool {
	if !strings.HasPrefix(route, "/") || strings.ContainsAny(route, "%\\") {
		return false
	}
	c := path.Clean(route)
	if strings.HasSuffix(route, "/") && c != "/" {
		c += "/"
	}
	return c == route
}

// UploadRoute reports whether route creates files or batches
// (/v1/files, /v1/batches, Anthropic's /v1/messages/batches, also under a
// provider prefix such as /openai/v1/files): a batch runs the models its
// uploaded JSONL (or, for Anthropic, each of its nested requests) names,
// which Keygate does not read, so a credential limited to some models may
// not write there.
func UploadRoute(route string) bool {
	route = strings.TrimSuffix(route, "/")
	for _, s := range []string{"files", "batches", "messages/batches"} {
		if endsWithEndpoint(route, "/v1/"+s) || strings.HasPrefix(route, "/"+s) && endsWithEndpoint(route, "/"+s) {
			return true
		}
	}
	return false
}

// providerPassThrough are LiteLLM's pass-through prefixes to providers
// whose APIs are not OpenAI's shape: a write there invokes a model named
// in the provider's own way (a path segment, an endpoint id, an agent), so
// a credential limited to some models needs one Keygate can read (an
// outside test called Vertex AI endpoints and Bedrock agents with a key
// limited to another model). The OpenAI-shaped prefixes (/openai, /azure)
// go by the suffix rules.
var providerPassThrough = map[string]bool{"bedrock": true, "vertex-ai": true, "vertex_ai": true, "cohere": true, "gemini": true,
	"anthropic": true, "azure_ai": true, "mistral": true, "vllm": true, "assemblyai": true, "eu.assemblyai": true,
	"cursor": true, "milvus": true}

// urlModelProviders are the pass-through providers whose APIs take the
// model from the path, never from a "model" field in the body: there a
// body naming an allowed model is a decoy the provider ignores (an
// outside test had a Bedrock agent call pass with {"model":"<allowed>"}).
var urlModelProviders = map[string]bool{"bedrock": true, "vertex-ai": true, "vertex_ai": true, "gemini": true,
	"assemblyai": true, "eu.assemblyai": true, "cursor": true, "milvus": true}

// URLModelOnly reports whether only a model in route's path (ModelsInURL)
// establishes which model a request there uses.
func URLModelOnly(route string) bool {
	seg, _ := firstSegment(route)
	return urlModelProviders[seg]
}

// hiddenModelSuffixes are endpoints that run a model the request does not
// name where Keygate reads it: it comes from an earlier call (a run's
// tool outputs, a video's remix, a fine-tuning job resumed, a response
// compacted) or from a nested field.
var hiddenModelSuffixes = []string{"/submit_tool_outputs", "/remix", "/resume", "/compact", "/input_tokens"}

// HiddenModelRoute reports whether a write to route runs a model the
// request does not name where Keygate reads it: realtime's session,
// client-secret, transcription and call routes (the model is nested in
// session.model or the ephemeral token; an outside test got
// {"session":{"model":<any>}} past a key limited to another model) and
// hiddenModelSuffixes. A credential limited to some models may not write
// there.
func HiddenModelRoute(route string) bool {
	if strings.Contains(route, "/realtime/") {
		return true
	}
	for _, s := range hiddenModelSuffixes {
		if endsWithEndpoint(route, s) {
			return true
		}
	}
	return false
}

// modelSuffixes are the inference endpoints whose requests name a model.
var modelSuffixes = []string{
	"/chat/completions", "/completions", "/embeddings", "/images/generations", "/images/edits", "/images/variations",
	"/audio/transcriptions", "/audio/translations", "/audio/speech", "/moderations", "/responses", "/rerank",
	"/v1/messages", "/v1/messages/count_tokens", "/fine_tuning/jobs", "/videos", "/ocr",
	// Google's Interactions API: a body may run an agent instead of
	// naming a model.
	"/interactions",
	// Assistants and runs: a run without a model uses its assistant's,
	// which may be anyone's on a shared upstream key.
	"/assistants", "/runs",
}

// ModelBearing reports whether a request to route with method names (or
// must name) the model it uses, so that a credential limited to some
// models has to have the model established. An unknown route ("") counts
// as model-bearing unless the method is one that carries no body: failing
// closed when the proxy did not say which route was called.
func ModelBearing(method, route string) bool {
	if route == "" {
		switch strings.ToUpper(method) {
		case "GET", "HEAD", "OPTIONS", "DELETE":
			return false
		}
		return true
	}
	route = strings.TrimSuffix(route, "/")
	if strings.HasSuffix(route, "/realtime") || strings.Contains(route, ":generateContent") ||
		strings.Contains(route, ":streamGenerateContent") || strings.Contains(route, ":countTokens") {
		return true
	}
	if m := strings.ToUpper(method); m != "POST" && m != "" && m != "PUT" && m != "PATCH" {
		return false
	}
	if seg, _ := firstSegment(route); providerPassThrough[seg] {
		return true
	}
	for _, s := range modelSuffixes {
		if endsWithEndpoint(route, s) {
			return true
		}
	}
	return false
}

// endsWithEndpoint reports whether route ends with endpoint, or with
// endpoint and trailing junk in its last segment that an upstream or an
// intermediary may drop: a matrix parameter (";x", which Tomcat, Jetty and
// Spring strip), an extension (".json"), a space or "~". An outside test
// had /v1/chat/completions;x forwarded, with no model, for a key limited
// to some models. A letter or digit after it makes another word
// (/completionsX is not /completions).
func endsWithEndpoint(route, endpoint string) bool {
	i := strings.LastIndex(route, endpoint)
	if i < 0 {
		return false
	}
	rest := route[i+len(endpoint):]
	if rest == "" {
		return true
	}
	c := rest[0]
	alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	return !alnum && c != '/' && !strings.Contains(rest, "/")
}
