package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInputIsASCIMErrorAndChangesNothing: every malformed request gets
// SCIM's error schema with the right status and scimType, and the
// database is exactly as before.
func TestBadInputIsASCIMErrorAndChangesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("victim@example.com", map[string]any{"displayName": "Victim"})
		gid := e.ok(e.scim(http.MethodPost, "/Groups", group("victims", id)), http.StatusCreated)["id"].(string)
		userSchema := []string{"urn:ietf:params:scim:schemas:core:2.0:User"}
		cases := []struct {
			name     string
			method   string
			path     string
			body     any
			status   int
			scimType string
		}{
			{"malformed filter", http.MethodGet, "/Users?" + filterQ(`userName eq`), nil, 400, "invalidFilter"},
			{"filter with trailing garbage", http.MethodGet, "/Users?" + filterQ(`userName eq "a" garbage`), nil, 400, "invalidFilter"},
			{"filter on an unknown attribute", http.MethodGet, "/Users?" + filterQ(`favoriteColor eq "blue"`), nil, 400, "invalidFilter"},
			{"filter on an unfilterable attribute", http.MethodGet, "/Users?" + filterQ(`name.givenName eq "Ada"`), nil, 400, "invalidFilter"},
			{"filter with a foreign schema", http.MethodGet, "/Users?" + filterQ(`urn:example:x:1.0:User:foo eq "1"`), nil, 400, "invalidFilter"},
			{"filter comparing a boolean with text", http.MethodGet, "/Users?" + filterQ(`active eq "maybe"`), nil, 400, "invalidFilter"},
			{"filter with a bad date", http.MethodGet, "/Users?" + filterQ(`meta.lastModified gt "yesterday"`), nil, 400, "invalidFilter"},
			{"filter with a number for text", http.MethodGet, "/Users?" + filterQ(`userName eq 5`), nil, 400, "invalidFilter"},
			{"filter too long", http.MethodGet, "/Users?" + filterQ(`userName eq "`+strings.Repeat("a", 1100)+`"`), nil, 400, "invalidFilter"},
			{"filter nested too deeply", http.MethodGet, "/Users?" + filterQ(strings.Repeat("(", 70)+`userName pr`+strings.Repeat(")", 70)), nil, 400, "invalidFilter"},
			{"group filter on members with co", http.MethodGet, "/Groups?" + filterQ(`members co "x"`), nil, 400, "invalidFilter"},
			{"count not a number", http.MethodGet, "/Users?count=lots", nil, 400, "invalidValue"},
			{"wrong schema: a Group posted to /Users", http.MethodPost, "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"userName": "g@example.com"}, 400, "invalidSyntax"},
			{"no schemas", http.MethodPost, "/Users", map[string]any{"userName": "n@example.com"}, 400, "invalidSyntax"},
			{"schemas not a list", http.MethodPost, "/Users", map[string]any{"schemas": "urn:ietf:params:scim:schemas:core:2.0:User", "userName": "n@example.com"}, 400, "invalidSyntax"},
			{"a User posted to /Groups", http.MethodPost, "/Groups", user("x@example.com", nil), 400, "invalidSyntax"},
			{"malformed JSON", http.MethodPost, "/Users", `{"schemas": [`, 400, "invalidSyntax"},
			{"two JSON values", http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@example.com"} {}`, 400, "invalidSyntax"},
			{"a JSON array", http.MethodPost, "/Users", `[]`, 400, "invalidSyntax"},
			{"empty body", http.MethodPost, "/Users", ``, 400, "invalidSyntax"},
			{"userName missing", http.MethodPost, "/Users", map[string]any{"schemas": userSchema}, 400, "invalidValue"},
			{"userName not an e-mail", http.MethodPost, "/Users", user("ada", nil), 400, "invalidValue"},
			{"userName a number", http.MethodPost, "/Users", map[string]any{"schemas": userSchema, "userName": 7}, 400, "invalidValue"},
			{"active of the wrong type", http.MethodPost, "/Users", user("t@example.com", map[string]any{"active": 1}), 400, "invalidValue"},
			{"a bad e-mail in emails", http.MethodPost, "/Users", user("t@example.com", map[string]any{"emails": []any{map[string]any{"value": "not mail"}}}), 400, "invalidValue"},
			{"name not an object", http.MethodPost, "/Users", user("t@example.com", map[string]any{"name": "Ada"}), 400, "invalidValue"},
			{"control characters", http.MethodPost, "/Users", user("t@example.com", map[string]any{"displayName": "a\x00b"}), 400, "invalidValue"},
			{"duplicate userName", http.MethodPost, "/Users", user("VICTIM@example.com", nil), 409, "uniqueness"},
			{"PATCH with the wrong schema", http.MethodPatch, "/Users/" + id, map[string]any{"schemas": userSchema,
				"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "x"}}}, 400, "invalidSyntax"},
			{"PATCH without operations", http.MethodPatch, "/Users/" + id, patch(), 400, "invalidSyntax"},
			{"PATCH with an unknown op", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "merge", "path": "displayName", "value": "x"}), 400, "invalidSyntax"},
			{"PATCH of an unknown attribute", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "favoriteColor", "value": "x"}), 400, "invalidPath"},
			{"PATCH with a malformed path", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "emails[type eq", "value": "x"}), 400, "invalidPath"},
			{"PATCH of a foreign schema", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "urn:example:x:1.0:User:foo", "value": "x"}), 400, "invalidPath"},
			{"PATCH of id", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "id", "value": "other"}), 400, "mutability"},
			{"PATCH of groups", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "add", "path": "groups", "value": []any{map[string]any{"value": gid}}}), 400, "mutability"},
			{"remove without a path", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "remove", "value": map[string]any{"displayName": "x"}}), 400, "noTarget"},
			{"replace of a missing e-mail", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": `emails[value eq "nobody@example.com"].type`, "value": "home"}), 400, "noTarget"},
			{"a failing op after a good one", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "replace", "path": "displayName", "value": "Changed"},
				map[string]any{"op": "replace", "path": "nope", "value": "x"}), 400, "invalidPath"},
			{"PATCH making userName invalid", http.MethodPatch, "/Users/" + id, patch(map[string]any{"op": "remove", "path": "userName"}), 400, "invalidValue"},
			{"group without displayName", http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}}, 400, "invalidValue"},
			{"group member without value", http.MethodPatch, "/Groups/" + gid, patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"display": "x"}}}), 400, "invalidValue"},
			{"group member add by filter", http.MethodPatch, "/Groups/" + gid, patch(map[string]any{"op": "add", "path": `members[value eq "x"]`, "value": "x"}), 400, "invalidPath"},
			{"text/plain body", http.MethodPost, "/Users", "text", 400, "invalidSyntax"},
			{"unknown user", http.MethodGet, "/Users/no-such-user", nil, 404, ""},
			{"PUT unknown user", http.MethodPut, "/Users/no-such-user", user("nobody@example.com", nil), 404, ""},
			{"DELETE unknown group", http.MethodDelete, "/Groups/no-such-group", nil, 404, ""},
			{"unknown endpoint", http.MethodGet, "/Bulk", nil, 404, ""},
			{"wrong method", http.MethodPost, "/Users/" + id, user("x@example.com", nil), 405, ""},
			{"1 MB body", http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"big@example.com","displayName":"` +
				strings.Repeat("x", 1<<20) + `"}`, 413, ""},
		}
		for _, tc := range cases {
			before := e.snapshot()
			var r response
			if tc.name == "text/plain body" {
				r = e.doContentType(tc.method, "/scim/v2"+tc.path, "text/plain", tc.body.(string))
			} else {
				r = e.scim(tc.method, tc.path, tc.body)
			}
			requireSCIMError(t, r, tc.status, tc.scimType)
			require.Equal(t, before, e.snapshot(), "%s changed the database", tc.name)
		}
	})
}

func (e *env) doContentType(method, path, ct, body string) response {
	e.t.Helper()
	r := e.rawRequest(method, path, body)
	r.Header.Set("Content-Type", ct)
	r.Header.Set("Authorization", "Bearer "+e.token)
	return e.serve(r)
}

// TestNULIsASCIMErrorNeverADatabaseError: a NUL (written as the JSON
// escape \u0000, which the edge text check cannot see in the raw query or
// body) in a filter value or any string of a body is a SCIM 400 on both
// databases — PostgreSQL refuses NUL in text mid-query (a 500 before) —
// and a NUL in the path is SCIM's error schema too, not LiteLLM's.
func TestNULIsASCIMErrorNeverADatabaseError(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		id := e.create("nul@example.com", map[string]any{"displayName": "Nul"})
		gid := e.ok(e.scim(http.MethodPost, "/Groups", group("nuls", id)), http.StatusCreated)["id"].(string)
		for _, f := range []string{`userName eq "\u0000"`, `userName co "a\u0000"`, `userName sw "\u0000"`, `userName ew "\u0000"`,
			`userName ne "\u0000"`, `externalId eq "\u0000"`, `id eq "\u0000"`, `emails.value eq "\u0000"`, `emails co "\u0000"`,
			`emails[value eq "\u0000"]`, `displayName co "\u0000"`, `not (userName eq "\u0000")`, `userName eq "x" or externalId eq "\u0000"`} {
			before := e.snapshot()
			requireSCIMError(t, e.scim(http.MethodGet, "/Users?"+filterQ(f), nil), 400, "invalidFilter")
			require.Equal(t, before, e.snapshot(), f)
		}
		for _, f := range []string{`displayName eq "\u0000"`, `displayName co "\u0000"`, `externalId eq "\u0000"`, `id eq "\u0000"`,
			`members.value eq "\u0000"`, `members eq "\u0000"`, `members[value eq "\u0000"]`} {
			requireSCIMError(t, e.scim(http.MethodGet, "/Groups?"+filterQ(f), nil), 400, "invalidFilter")
		}
		nul := "a\x00b"
		userSchema := []string{"urn:ietf:params:scim:schemas:core:2.0:User"}
		for name, body := range map[string]any{
			"userName":              user("a\x00@example.com", nil),
			"externalId":            user("n1@example.com", map[string]any{"externalId": nul}),
			"name.givenName":        user("n2@example.com", map[string]any{"name": map[string]any{"givenName": nul}}),
			"name.familyName":       user("n3@example.com", map[string]any{"name": map[string]any{"familyName": nul}}),
			"name.formatted":        user("n4@example.com", map[string]any{"name": map[string]any{"formatted": nul}}),
			"emails.value":          user("n5@example.com", map[string]any{"emails": []any{map[string]any{"value": "x\x00@example.com"}}}),
			"emails.type":           user("n6@example.com", map[string]any{"emails": []any{map[string]any{"value": "n6@example.com", "type": nul}}}),
			"title":                 user("n7@example.com", map[string]any{"title": nul}),
			"an attribute name":     user("n8@example.com", map[string]any{"x\x00y": "z"}),
			"a schema URN":          map[string]any{"schemas": []string{userSchema[0], "urn:x\x00"}, "userName": "n9@example.com"},
			"enterprise department": user("n10@example.com", map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": nul}}),
		} {
			before := e.snapshot()
			r := e.scim(http.MethodPost, "/Users", body)
			require.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", name, r.Body.String())
			requireSCIMError(t, r, 400, r.JSON(t)["scimType"].(string))
			require.Contains(t, []any{"invalidValue", "invalidSyntax"}, r.JSON(t)["scimType"], name)
			require.Equal(t, before, e.snapshot(), name)
			r = e.scim(http.MethodPut, "/Users/"+id, body)
			require.Equal(t, http.StatusBadRequest, r.Code, "PUT %s: %s", name, r.Body.String())
			require.Equal(t, before, e.snapshot(), name)
		}
		for name, op := range map[string]map[string]any{
			"replace displayName":     {"op": "replace", "path": "displayName", "value": nul},
			"replace externalId":      {"op": "replace", "path": "externalId", "value": nul},
			"replace userName":        {"op": "replace", "path": "userName", "value": "a\x00@example.com"},
			"replace name.givenName":  {"op": "replace", "path": "name.givenName", "value": nul},
			"add emails":              {"op": "add", "path": "emails", "value": []any{map[string]any{"value": "y\x00@example.com"}}},
			"replace without path":    {"op": "replace", "value": map[string]any{"displayName": nul}},
			"a path filter":           {"op": "replace", "path": `emails[value eq "\u0000"].type`, "value": "home"},
			"a NUL in the path":       {"op": "replace", "path": "display\x00Name", "value": "x"},
			"a NUL in the op":         {"op": "rep\x00lace", "path": "displayName", "value": "x"},
			"remove by a path filter": {"op": "remove", "path": `emails[value eq "\u0000"]`},
		} {
			before := e.snapshot()
			r := e.scim(http.MethodPatch, "/Users/"+id, patch(op))
			require.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", name, r.Body.String())
			require.Equal(t, before, e.snapshot(), name)
		}
		for name, body := range map[string]any{
			"displayName":                   group("g\x00"),
			"externalId":                    map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "g1", "externalId": nul},
			"member":                        group("g2", "u\x00"),
			"patch member":                  patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "u\x00"}}}),
			"patch remove member by filter": patch(map[string]any{"op": "remove", "path": `members[value eq "\u0000"]`}),
			"patch displayName":             patch(map[string]any{"op": "replace", "path": "displayName", "value": nul}),
		} {
			before := e.snapshot()
			method, path := http.MethodPost, "/Groups"
			if strings.HasPrefix(name, "patch") {
				method, path = http.MethodPatch, "/Groups/"+gid
			}
			r := e.scim(method, path, body)
			require.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", name, r.Body.String())
			require.Equal(t, before, e.snapshot(), name)
		}
		for _, p := range []string{"/Users/%00", "/Groups/%00", "/Users?filter=%00", "/Users/a%00b", "/Users/%FF"} {
			requireSCIMError(t, e.scim(http.MethodGet, p, nil), 400, "invalidValue")
		}
		requireSCIMError(t, e.scim(http.MethodDelete, "/Users/%00", nil), 400, "invalidValue")
	})
}
