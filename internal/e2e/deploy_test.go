package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/auth"
)

// The Traefik and Envoy examples are not run here (neither is a Debian
// package); these tests tie all three examples to the code instead, so a
// new identity or credential header cannot be added to Keygate without
// the proxies being told to copy, strip or forward it.

func identityHeaders() []string {
	return []string{api.HeaderUserID, api.HeaderUserRole, api.HeaderKeyID, api.HeaderTeamID, api.HeaderKeyAlias}
}

func readDeploy(t *testing.T, parts ...string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(append([]string{"..", "..", "deploy"}, parts...)...))
	require.NoError(t, err)
	return string(raw)
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func TestNginxExampleCoversEveryHeader(t *testing.T) {
	t.Parallel()
	conf := readDeploy(t, "nginx", "keygate.conf")
	for _, h := range identityHeaders() {
		v := "$keygate_" + strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(h), "x-keygate-"), "-", "_")
		up := "$upstream_http_" + strings.ReplaceAll(strings.ToLower(h), "-", "_")
		require.Regexp(t, `auth_request_set\s+`+regexp.QuoteMeta(v)+`\s+`+regexp.QuoteMeta(up)+`;`, conf, "capture %s", h)
		require.Regexp(t, `proxy_set_header\s+`+regexp.QuoteMeta(h)+`\s+`+regexp.QuoteMeta(v)+`;`, conf, "copy %s upstream", h)
	}
	njsConf, js := readDeploy(t, "nginx", "keygate-njs.conf"), readDeploy(t, "nginx", "keygate.js")
	for _, h := range identityHeaders() {
		v := "keygate_" + strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(h), "x-keygate-"), "-", "_")
		require.Regexp(t, `js_var\s+\$`+v+`;`, njsConf, "declare %s", v)
		require.Regexp(t, `proxy_set_header\s+`+regexp.QuoteMeta(h)+`\s+\$`+v+`;`, njsConf, "copy %s upstream", h)
		require.Contains(t, js, fmt.Sprintf("'%s': '%s'", h, v), "keygate.js fills %s", v)
	}
	// auth_request asks with GET whatever the client used: without the
	// client's method from a trusted proxy, Keygate treats every route that
	// takes a model in its body as a model call.
	for name, c := range map[string]string{"keygate.conf": conf, "keygate-njs.conf": njsConf} {
		require.Regexp(t, `proxy_set_header\s+X-Original-Method\s+\$request_method;`, c, "%s sends the client's method", name)
		require.Regexp(t, `proxy_set_header\s+X-Original-URI\s+\$request_uri;`, c, "%s sends the client's route", name)
	}
	for _, h := range auth.CredentialHeaders() {
		require.Regexp(t, `(?i)proxy_set_header\s+`+regexp.QuoteMeta(h)+`\s+"";`, conf, "strip %s upstream", h)
		require.Regexp(t, `(?i)proxy_set_header\s+`+regexp.QuoteMeta(h)+`\s+"";`, njsConf, "strip %s upstream (njs)", h)
	}
}

func TestTraefikExampleCoversEveryHeader(t *testing.T) {
	t.Parallel()
	var cfg struct {
		HTTP struct {
			Middlewares map[string]struct {
				ForwardAuth *struct {
					Address             string   `yaml:"address"`
					AuthRequestHeaders  []string `yaml:"authRequestHeaders"`
					AuthResponseHeaders []string `yaml:"authResponseHeaders"`
					ForwardBody         bool     `yaml:"forwardBody"`
				} `yaml:"forwardAuth"`
				Headers *struct {
					CustomRequestHeaders map[string]string `yaml:"customRequestHeaders"`
				} `yaml:"headers"`
			} `yaml:"middlewares"`
			Routers map[string]struct {
				Middlewares []string `yaml:"middlewares"`
			} `yaml:"routers"`
		} `yaml:"http"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readDeploy(t, "traefik", "keygate.yml")), &cfg))
	fa := cfg.HTTP.Middlewares["keygate-auth"].ForwardAuth
	require.NotNil(t, fa)
	require.True(t, strings.HasSuffix(fa.Address, "/auth/verify"), fa.Address)
	require.ElementsMatch(t, identityHeaders(), fa.AuthResponseHeaders)
	for _, h := range append(auth.CredentialHeaders(), "Content-Type") {
		require.Contains(t, fa.AuthRequestHeaders, h)
	}
	// The model comes from the body; a client's model header must not pass
	// through a proxy Keygate trusts.
	require.NotContains(t, fa.AuthRequestHeaders, api.HeaderModel)
	require.True(t, fa.ForwardBody)
	strip := cfg.HTTP.Middlewares["keygate-strip-credentials"].Headers
	require.NotNil(t, strip)
	for _, h := range auth.CredentialHeaders() {
		v, ok := strip.CustomRequestHeaders[h]
		require.True(t, ok && v == "", "strip %s upstream", h)
	}
	require.Equal(t, []string{"keygate-auth", "keygate-strip-credentials"}, cfg.HTTP.Routers["llm"].Middlewares,
		"authenticate first, then strip the credential")
}

func TestEnvoyExampleCoversEveryHeader(t *testing.T) {
	t.Parallel()
	var doc any
	require.NoError(t, yaml.Unmarshal([]byte(readDeploy(t, "envoy", "envoy.yaml")), &doc))
	authz := findTyped(doc, "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz")
	require.NotNil(t, authz, "no ext_authz filter")
	require.Equal(t, false, dig(authz, "failure_mode_allow"))
	require.Equal(t, "/auth/verify?path=", dig(authz, "http_service", "path_prefix"))
	require.ElementsMatch(t, lower(identityHeaders()), exacts(dig(authz, "http_service", "authorization_response", "allowed_upstream_headers", "patterns")))
	sent := exacts(dig(authz, "http_service", "authorization_request", "allowed_headers", "patterns"))
	for _, h := range lower(append(auth.CredentialHeaders(), "Content-Type")) {
		require.Contains(t, sent, h)
	}
	require.NotContains(t, sent, strings.ToLower(api.HeaderModel))
	require.Equal(t, false, dig(authz, "with_request_body", "allow_partial_message"), "a cut-off body leaves the model unknown")
	mut := findTyped(doc, "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation")
	require.NotNil(t, mut, "no header_mutation filter dropping client-sent identity headers")
	var removed []string
	for _, m := range asList(dig(mut, "mutations", "request_mutations")) {
		removed = append(removed, fmt.Sprint(dig(m, "remove")))
	}
	require.ElementsMatch(t, lower(identityHeaders()), removed)
	var stripped []string
	for _, h := range asList(findKey(doc, "request_headers_to_remove")) {
		stripped = append(stripped, fmt.Sprint(h))
	}
	require.ElementsMatch(t, lower(auth.CredentialHeaders()), stripped)
}

// findTyped returns the typed_config whose @type names typeName.
func findTyped(v any, typeName string) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		if x["@type"] == "type.googleapis.com/"+typeName {
			return x
		}
		for _, c := range x {
			if r := findTyped(c, typeName); r != nil {
				return r
			}
		}
	case []any:
		for _, c := range x {
			if r := findTyped(c, typeName); r != nil {
				return r
			}
		}
	}
	return nil
}

// findKey returns the first value stored under key anywhere in v.
func findKey(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x[key]; ok {
			return r
		}
		for _, c := range x {
			if r := findKey(c, key); r != nil {
				return r
			}
		}
	case []any:
		for _, c := range x {
			if r := findKey(c, key); r != nil {
				return r
			}
		}
	}
	return nil
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func exacts(patterns any) []string {
	var out []string
	for _, p := range asList(patterns) {
		if e, ok := dig(p, "exact").(string); ok {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}
