package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store/gormstore"
)

// openAPIApp builds the real application, so the route table checked is
// the one served, including routes that feature packages add.
func openAPIApp(t *testing.T) *app.App {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	a, err := app.New(t.Context(), app.Options{Store: st, Logger: log, MasterKeyHash: sha256.Sum256([]byte("sk-openapi-test")),
		Secret: "openapi-test-secret-0123456789", Issuer: "http://keygate.test"})
	require.NoError(t, err)
	return a
}

// ginParam matches Gin's ":name" and "*name" path segments.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath converts a Gin route path to OpenAPI's template syntax.
func openAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		Responses       map[string]json.RawMessage `json:"responses"`
		Parameters      map[string]json.RawMessage `json:"parameters"`
		RequestBodies   map[string]json.RawMessage `json:"requestBodies"`
	} `json:"components"`
}

// pathItemFields are the keys of an OpenAPI path item that are not HTTP
// methods.
var pathItemFields = map[string]bool{"summary": true, "description": true, "parameters": true, "servers": true, "$ref": true}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(api.OpenAPIDocument(), &doc), "api/openapi.json is not valid JSON")
	return doc
}

// TestOpenAPIDescribesEveryRoute keeps api/openapi.json true: every
// registered route is described and every described operation is
// registered. HTML pages under /ui/ are not part of the JSON API and are
// not described.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	registered := map[string]bool{}
	var missing, wrongPerm []string
	for _, rt := range openAPIApp(t).API().Routes() {
		if strings.HasPrefix(rt.Path, "/ui/") {
			continue
		}
		p, m := openAPIPath(rt.Path), strings.ToLower(rt.Method)
		registered[m+" "+p] = true
		raw, ok := doc.Paths[p][m]
		if !ok {
			missing = append(missing, rt.Method+" "+p)
			continue
		}
		var op struct {
			Perm string `json:"x-keygate-permission"`
		}
		require.NoError(t, json.Unmarshal(raw, &op), "%s %s", rt.Method, p)
		want := string(rt.Perm)
		if rt.Public {
			want = "public"
		}
		if op.Perm != want {
			wrongPerm = append(wrongPerm, fmt.Sprintf("%s %s: x-keygate-permission is %q, the route requires %q", rt.Method, p, op.Perm, want))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes registered but not described in api/openapi.json (add an operation with operationId, summary, "+
			"x-keygate-permission and responses under \"paths\" for each):\n  %s", strings.Join(missing, "\n  "))
	}
	sort.Strings(wrongPerm)
	if len(wrongPerm) > 0 {
		t.Errorf("api/openapi.json disagrees with the route table about permissions:\n  %s", strings.Join(wrongPerm, "\n  "))
	}

	var extra []string
	for p, item := range doc.Paths {
		for m := range item {
			if pathItemFields[m] {
				continue
			}
			if !registered[m+" "+p] {
				extra = append(extra, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("api/openapi.json describes operations that no route serves; remove them or register the route:\n  %s",
			strings.Join(extra, "\n  "))
	}
}

// TestOpenAPIDocumentIsWellFormed checks the parts of OpenAPI 3.0 a
// client generator relies on: the version, each operation's responses and
// operationId, declared path parameters, and that every $ref resolves.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	require.Regexp(t, `^3\.0\.\d+$`, doc.OpenAPI)
	require.NotEmpty(t, doc.Info.Title)
	require.NotEmpty(t, doc.Info.Version)
	require.Contains(t, doc.Info.Description, "/ui/")
	require.Contains(t, doc.Components.SecuritySchemes, "bearer")
	require.Contains(t, doc.Components.Schemas, "Error")

	ids := map[string]string{}
	for p, item := range doc.Paths {
		params := ginParam.FindAllString(p, -1)
		require.Empty(t, params, "path %s must use {name}, not Gin syntax", p)
		for m, raw := range item {
			if pathItemFields[m] {
				continue
			}
			var op struct {
				OperationID string                     `json:"operationId"`
				Summary     string                     `json:"summary"`
				Responses   map[string]json.RawMessage `json:"responses"`
				Parameters  []struct {
					Ref  string `json:"$ref"`
					Name string `json:"name"`
					In   string `json:"in"`
				} `json:"parameters"`
			}
			require.NoError(t, json.Unmarshal(raw, &op), "%s %s", m, p)
			where := strings.ToUpper(m) + " " + p
			require.NotEmpty(t, op.OperationID, "%s: operationId", where)
			require.NotEmpty(t, op.Summary, "%s: summary", where)
			require.NotEmpty(t, op.Responses, "%s: responses", where)
			if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q is used by %s and %s", op.OperationID, prev, where)
			}
			ids[op.OperationID] = where
			for _, name := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
				found := false
				for _, prm := range op.Parameters {
					found = found || (prm.In == "path" && prm.Name == name[1])
				}
				require.True(t, found, "%s: path parameter %q is not declared", where, name[1])
			}
		}
	}

	var all any
	require.NoError(t, json.Unmarshal(api.OpenAPIDocument(), &all))
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				require.True(t, resolves(all, ref), "$ref %s does not resolve", ref)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(all)
}

func resolves(root any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	cur := root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	openAPIApp(t).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.JSONEq(t, string(api.OpenAPIDocument()), rec.Body.String())
}
